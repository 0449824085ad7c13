//! Executes the wasm `unreachable` instruction directly: a trap with no
//! panic message.

use changewire_plugin_sdk::{Event, Outcome, Plugin, Result, export_plugin};

struct Unreachable;

impl Plugin for Unreachable {
    fn transform(_event: Event) -> Result<Outcome> {
        #[cfg(target_family = "wasm")]
        core::arch::wasm32::unreachable();
        #[cfg(not(target_family = "wasm"))]
        std::process::abort();
    }
}

export_plugin!(Unreachable);
