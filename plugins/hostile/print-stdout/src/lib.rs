//! Prints to stdout. Every Rust component imports `wasi:cli/stdout`; the host
//! accepts the import but stubs it, so the call traps naming it.

use changewire_plugin_sdk::{Event, Outcome, Plugin, Result, export_plugin};

struct PrintStdout;

impl Plugin for PrintStdout {
    fn transform(event: Event) -> Result<Outcome> {
        println!("got {} bytes", event.body.len());
        Ok(Outcome::unchanged())
    }
}

export_plugin!(PrintStdout);
