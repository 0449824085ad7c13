//! Reads the wall clock, so the component imports `wasi:clocks/wall-clock`:
//! the host must refuse it at upload, naming that import.

use changewire_plugin_sdk::{Event, Outcome, Plugin, Result, export_plugin};

struct ForbiddenImport;

impl Plugin for ForbiddenImport {
    fn transform(_event: Event) -> Result<Outcome> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|e| e.to_string())?;
        Ok(Outcome::unchanged().with_header("x-now", now.as_secs().to_string()))
    }
}

export_plugin!(ForbiddenImport);
