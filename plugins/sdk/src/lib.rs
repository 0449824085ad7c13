//! # changewire-plugin-sdk
//!
//! Write a [changewire] webhook plugin in Rust: a WebAssembly component that
//! the gateway calls just before it signs and sends a webhook, and that
//! answers *deliver* (possibly with a new body and extra headers), *drop*, or
//! an error.
//!
//! ```
//! use changewire_plugin_sdk::{export_plugin, Event, Outcome, Plugin, Result};
//!
//! /// Deliver only runs whose status became `complete`.
//! struct OnlyComplete;
//!
//! impl Plugin for OnlyComplete {
//!     fn transform(event: Event) -> Result<Outcome> {
//!         let body = event.json()?;
//!         if body.pointer("/data/new/status").and_then(|s| s.as_str()) == Some("complete") {
//!             Ok(Outcome::unchanged())
//!         } else {
//!             Ok(Outcome::drop("status did not become complete"))
//!         }
//!     }
//! }
//!
//! export_plugin!(OnlyComplete);
//!
//! // A plugin is plain Rust: test it natively with `cargo test`.
//! let event = Event::new("runs", "update", r#"{"data":{"new":{"status":"complete"}}}"#);
//! assert_eq!(OnlyComplete::transform(event)?, Outcome::unchanged());
//! # Ok::<(), changewire_plugin_sdk::Error>(())
//! ```
//!
//! Build it with `cargo build --target wasm32-wasip2 --release` (crate type
//! `cdylib`); the `.wasm` in `target/wasm32-wasip2/release/` is what you
//! attach to a receiver. `plugins/README.md` walks through writing, testing,
//! attaching, the limits a call runs under, and what state a plugin may keep.
//!
//! ## What a plugin can and cannot do
//!
//! A plugin gets the event and returns an [`Outcome`]. It has no filesystem,
//! network, clock, randomness or environment: calling them (through `std::fs`,
//! `std::time::SystemTime`, `println!`, …) traps and fails the delivery. Use
//! [`log`] (or [`log_info!`] and friends) for diagnostics. `HashMap` works
//! (its seed is fixed, not random). If the plugin panics, the SDK reports the
//! panic message to the gateway, which records it in the delivery's attempt.
//!
//! The interface is `plugins/wit/plugin.wit` (package
//! `changewire:plugin@0.1.0`); this crate is one way to implement it, any
//! language that builds components works.
//!
//! [changewire]: https://github.com/changewire/changewire

#![deny(missing_docs)]

mod error;
mod event;
mod log;
mod outcome;
pub mod path;

pub use error::{Error, Result};
pub use event::Event;
pub use log::{Level, log};
pub use outcome::{Header, Outcome};
/// The `serde_json` this crate uses, so plugins need not depend on it.
pub use serde_json;
/// `serde_json::json!`, re-exported for building bodies.
pub use serde_json::json;

/// Bindings generated from `plugins/wit/plugin.wit`. Not public API: use
/// [`Plugin`] and [`export_plugin!`].
#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "plugin",
        pub_export_macro: true,
        export_macro_name: "__export_plugin_world",
        default_bindings_module: "changewire_plugin_sdk::bindings",
    });
}

/// A webhook plugin: one function from an event to an outcome.
///
/// Implement it on a unit struct and name that struct in [`export_plugin!`].
/// `transform` is called once per delivery. It may run in any of several
/// instances of the plugin, each of which the gateway may discard at any
/// time, so it must not rely on state kept between calls (caching something
/// derived purely from the input, such as parsed configuration, is fine).
pub trait Plugin {
    /// Decide what to do with one event.
    ///
    /// Return `Ok(Outcome::unchanged())` to send the webhook as is,
    /// [`Outcome::deliver_json`] to send a new body, [`Outcome::drop`] to
    /// not send it (recorded as `filtered`), or `Err` to fail the delivery
    /// with that message.
    fn transform(event: Event) -> Result<Outcome>;
}

/// Export a [`Plugin`] implementation as the component's entry point.
///
/// Use it once per plugin crate, at the crate root:
///
/// ```ignore
/// export_plugin!(MyPlugin);
/// ```
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        #[doc(hidden)]
        struct __ChangewirePluginExport;

        impl $crate::bindings::exports::changewire::plugin::transformer::Guest
            for __ChangewirePluginExport
        {
            fn transform(
                event: $crate::bindings::changewire::plugin::types::Event,
            ) -> ::core::result::Result<
                $crate::bindings::changewire::plugin::types::Outcome,
                ::std::string::String,
            > {
                $crate::__private::run::<$plugin>(event)
            }
        }

        $crate::bindings::__export_plugin_world!(
            __ChangewirePluginExport with_types_in $crate::bindings
        );
    };
}

/// Support code for [`export_plugin!`]; not public API.
#[doc(hidden)]
pub mod __private {
    use crate::bindings::changewire::plugin::types as wit;
    use crate::{Event, Plugin};

    /// Run one call: install the panic hook once, convert the WIT types,
    /// call the plugin, convert back.
    pub fn run<P: Plugin>(event: wit::Event) -> Result<wit::Outcome, String> {
        crate::log::install_panic_hook();
        P::transform(Event::from(event))
            .map(Into::into)
            .map_err(|e| e.to_string())
    }
}
