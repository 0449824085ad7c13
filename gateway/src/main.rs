//! The `changewire` binary: parse the command line, run, map errors to an exit code.

use std::process::ExitCode;

fn main() -> ExitCode {
    changewire_gateway::run()
}
