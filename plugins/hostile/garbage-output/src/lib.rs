//! Returns output the host must refuse; `{"kind": ...}` picks which.

use changewire_plugin_sdk::{Event, Outcome, Plugin, Result, export_plugin, serde_json::Value};

struct GarbageOutput;

impl Plugin for GarbageOutput {
    fn transform(event: Event) -> Result<Outcome> {
        let config: Value = event.config()?;
        let kind = config
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("not-json");
        let header = |name: &str, value: &str| Outcome::unchanged().with_header(name, value);
        Ok(match kind {
            "not-json" => Outcome::deliver_body("this is not JSON {"),
            "crlf-value" => header("x-ok", "a\r\nx-injected: 1"),
            "bad-name" => header("x y", "1"),
            "content-type" => header("Content-Type", "text/plain"),
            "signature" => header("X-ION-Signature", "forged"),
            "webhook-signature" => header("webhook-signature", "v1,forged"),
            "authorization" => header("authorization", "Bearer stolen"),
            "host" => header("host", "evil.example"),
            "content-length" => header("content-length", "0"),
            other => return Err(format!("unknown kind {other}").into()),
        })
    }
}

export_plugin!(GarbageOutput);
