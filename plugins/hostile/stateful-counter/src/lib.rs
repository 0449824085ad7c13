//! Counts calls in a static and reports the count in `x-call-count`, so a
//! test can see an instance being reused (and a fresh one starting at 1).
//! `{"fail_on": N}` makes call N trap, to show a trapped instance is replaced.

use std::sync::atomic::{AtomicU64, Ordering};

use changewire_plugin_sdk::{Event, Outcome, Plugin, Result, export_plugin, serde_json::Value};

static CALLS: AtomicU64 = AtomicU64::new(0);

struct StatefulCounter;

impl Plugin for StatefulCounter {
    fn transform(event: Event) -> Result<Outcome> {
        let n = CALLS.fetch_add(1, Ordering::Relaxed) + 1;
        let config: Value = event.config()?;
        if config.get("fail_on").and_then(Value::as_u64) == Some(n) {
            panic!("failing on call {n} as configured");
        }
        Ok(Outcome::unchanged().with_header("x-call-count", n.to_string()))
    }
}

export_plugin!(StatefulCounter);
