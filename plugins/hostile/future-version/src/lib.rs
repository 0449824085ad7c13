//! Built against `changewire:plugin@0.1.1` (its own copy of the WIT, which
//! adds a function): the host, which knows 0.1.0, must load and call it.
//! Written without the SDK, as a plugin in another language would be.

#[allow(missing_docs)] // generated from the fixture's WIT
mod bindings {
    wit_bindgen::generate!({ path: "wit", world: "plugin" });
}

use bindings::changewire::plugin::types::{Deliver, Event, Header, Outcome};
use bindings::exports::changewire::plugin::transformer::Guest;

struct FutureVersion;

impl Guest for FutureVersion {
    fn transform(_event: Event) -> Result<Outcome, String> {
        Ok(Outcome::Deliver(Deliver {
            body: None,
            headers: vec![Header {
                name: "x-built-against".to_owned(),
                value: Self::describe(),
            }],
        }))
    }

    fn describe() -> String {
        "changewire:plugin@0.1.1".to_owned()
    }
}

bindings::export!(FutureVersion with_types_in bindings);
