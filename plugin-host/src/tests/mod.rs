//! Tests of the plugin host against real plugins: every example and every
//! hostile fixture in `plugins/`, built from source by
//! `changewire-plugin-artifacts`.
//!
//! - `fixtures`: one test per plugin, named after it; the `foreach_plugin!`
//!   check there fails the build when a plugin has none.
//! - `runtime`: isolation, concurrency, capacity, metrics, the disk cache.

mod fixtures;
mod runtime;

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use serde_json::Value;

use super::*;

/// A realistic ION webhook body.
const BODY: &str = r#"{"event_id":1,"subscription_id":2,"resource":"runs","action":"update","transaction_id":3,"occurred_at":"2026-11-23T10:00:00.000Z","data":{"id":7,"etag":"e","old":{"status":"in_progress"},"new":{"status":"complete"}}}"#;

fn input(config: &str) -> PluginInput<'_> {
    input_with(BODY, config)
}

fn input_with<'a>(body: &'a str, config: &'a str) -> PluginInput<'a> {
    PluginInput {
        resource: "runs",
        action: "update",
        body,
        receiver_id: 42,
        receiver_name: "ops",
        config,
    }
}

fn read(path: &str) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

/// One host for the whole test binary: default limits, except a time limit
/// of 5 s, so that on a loaded machine (tests run in parallel, in debug) the
/// clock never decides an outcome another limit is meant to. The tests of the
/// time limit itself build their own host.
fn host() -> &'static PluginHost {
    static HOST: OnceLock<PluginHost> = OnceLock::new();
    HOST.get_or_init(|| {
        PluginHost::new(PluginLimits {
            time_limit_ms: 5_000,
            ..PluginLimits::default()
        })
        .expect("test host")
    })
}

/// Each plugin compiled once on the shared host (compiling is the slow part
/// of these tests). Tests that count instances compile their own.
fn plugin(path: &'static str) -> Plugin {
    static PLUGINS: OnceLock<Mutex<HashMap<&'static str, Plugin>>> = OnceLock::new();
    let mut plugins = PLUGINS
        .get_or_init(Default::default)
        .lock()
        .expect("not poisoned");
    plugins
        .entry(path)
        .or_insert_with(|| {
            host()
                .compile(&read(path))
                .unwrap_or_else(|e| panic!("{path}: {e}"))
        })
        .clone()
}

fn deliver_body(outcome: PluginOutcome) -> Value {
    match outcome {
        PluginOutcome::Deliver {
            body: Some(body), ..
        } => serde_json::from_str(&body).expect("the host validated it as JSON"),
        other => panic!("expected a new body, got {other:?}"),
    }
}

fn header(outcome: &PluginOutcome, name: &str) -> Option<String> {
    match outcome {
        PluginOutcome::Deliver { headers, .. } => headers
            .iter()
            .find(|h| h.name == name)
            .map(|h| h.value.clone()),
        PluginOutcome::Drop { .. } => None,
    }
}
