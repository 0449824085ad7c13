//! Returns a JSON body of `{"bytes": N}` bytes (default 100 MB): with the
//! default limits it runs out of memory building it; with a larger memory
//! cap the host refuses the output as too large.

use changewire_plugin_sdk::{Event, Outcome, Plugin, Result, export_plugin, serde_json::Value};

struct HugeOutput;

impl Plugin for HugeOutput {
    fn transform(event: Event) -> Result<Outcome> {
        let config: Value = event.config()?;
        let bytes = config
            .get("bytes")
            .and_then(Value::as_u64)
            .unwrap_or(100_000_000);
        let len = usize::try_from(bytes)
            .map_err(|_| "bytes out of range")?
            .max(2);
        let mut body = String::with_capacity(len);
        body.push('"');
        body.extend(std::iter::repeat_n('x', len - 2));
        body.push('"');
        Ok(Outcome::deliver_body(body))
    }
}

export_plugin!(HugeOutput);
