//! Panics; the SDK's panic hook reports the message before the trap.

use changewire_plugin_sdk::{Event, Outcome, Plugin, Result, export_plugin};

struct Panic;

impl Plugin for Panic {
    fn transform(event: Event) -> Result<Outcome> {
        panic!(
            "hostile plugin panicked on purpose ({} bytes of body)",
            event.body.len()
        );
    }
}

export_plugin!(Panic);
