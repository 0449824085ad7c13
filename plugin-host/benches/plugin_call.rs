//! Per-call cost of plugins on a 1 KB ION event: a header-adding plugin and
//! a JSON-rewriting one (parse, redact, re-serialize), with a reused (warm)
//! instance, and with a fresh instance per call for comparison.
//!
//! `cargo bench -p changewire-plugin-host --bench plugin_call` (or `make
//! bench-plugins`) prints criterion's estimates, then p50 and p99 from a
//! plain loop of timed calls. Needs the plugins built by
//! `changewire-plugin-artifacts` (a dev-dependency).
#![allow(missing_docs)] // criterion's macros generate undocumented items
#![allow(clippy::unwrap_used)] // a benchmark: panicking on setup failure is the point

use std::hint::black_box;
use std::time::{Duration, Instant};

use changewire_plugin_artifacts as artifacts;
use changewire_plugin_host::{Plugin, PluginHost, PluginInput, PluginLimits};
use criterion::{Criterion, criterion_group};

/// An ION `update` event of about 1 KB.
fn body_1k() -> String {
    let body = serde_json::json!({
        "event_id": 123456, "subscription_id": 42, "resource": "runs", "action": "update",
        "transaction_id": 987654, "occurred_at": "2026-11-23T10:00:00.000Z",
        "data": {
            "id": 7, "etag": "W/\"5f2c1a9e\"",
            "old": {"status": "in_progress", "email": "ada@example.com", "phone": "+1 555 0100",
                    "notes": "x".repeat(280), "qty": 10, "tags": ["a", "b", "c"]},
            "new": {"status": "complete", "email": "ada.l@example.com", "phone": "+1 555 0101",
                    "notes": "y".repeat(280), "qty": 12, "tags": ["a", "b", "c", "d"],
                    "completed_by": {"id": 99, "name": "Grace Hopper"}}
        }
    })
    .to_string();
    assert!((900..1200).contains(&body.len()), "{} bytes", body.len());
    body
}

struct Case {
    name: &'static str,
    plugin: Plugin,
    config: &'static str,
}

fn cases(host: &PluginHost) -> Vec<Case> {
    let load = |path: &str| host.compile(&std::fs::read(path).unwrap()).unwrap();
    vec![
        Case {
            name: "add-header",
            plugin: load(artifacts::ADD_HEADER),
            config: r#"{"headers":{"x-team":"payments"}}"#,
        },
        Case {
            name: "redact-fields (json rewrite)",
            plugin: load(artifacts::REDACT_FIELDS),
            config: r#"{"fields":["email","phone"]}"#,
        },
    ]
}

fn input<'a>(body: &'a str, config: &'a str) -> PluginInput<'a> {
    PluginInput {
        resource: "runs",
        action: "update",
        body,
        receiver_id: 1,
        receiver_name: "bench",
        config,
    }
}

fn bench(c: &mut Criterion) {
    let body = body_1k();
    let warm = PluginHost::new(PluginLimits::default()).unwrap();
    // No warm instances kept: every call instantiates.
    let fresh = PluginHost::new(PluginLimits {
        max_warm_instances: 0,
        ..PluginLimits::default()
    })
    .unwrap();
    for (label, host) in [("reused", &warm), ("fresh", &fresh)] {
        let mut group = c.benchmark_group(format!("plugin_call/{label}"));
        for case in cases(host) {
            let input = input(&body, case.config);
            case.plugin.call(&input).unwrap();
            group.bench_function(case.name, |b| {
                b.iter(|| case.plugin.call(black_box(&input)).unwrap())
            });
        }
        group.finish();
    }
}

/// p50/p99 of single calls, timed one by one.
fn percentiles() {
    let body = body_1k();
    let warm = PluginHost::new(PluginLimits::default()).unwrap();
    let fresh = PluginHost::new(PluginLimits {
        max_warm_instances: 0,
        ..PluginLimits::default()
    })
    .unwrap();
    println!(
        "per-call latency, 1 KB body ({} bytes), single thread:",
        body.len()
    );
    for (label, host, n) in [("reused", &warm, 20_000), ("fresh", &fresh, 5_000)] {
        for case in cases(host) {
            let input = input(&body, case.config);
            for _ in 0..1000 {
                case.plugin.call(&input).unwrap();
            }
            let mut samples: Vec<Duration> = (0..n)
                .map(|_| {
                    let t = Instant::now();
                    black_box(case.plugin.call(black_box(&input)).unwrap());
                    t.elapsed()
                })
                .collect();
            samples.sort();
            let p = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
            println!(
                "  {label:6} {:30} p50 {:>8.2?}  p99 {:>8.2?}  (n={n})",
                case.name,
                p(0.50),
                p(0.99)
            );
        }
    }
}

criterion_group!(benches, bench);

fn main() {
    // `cargo test --benches` runs this binary without `--bench`: keep it quick.
    if std::env::args().any(|a| a == "--bench") {
        percentiles();
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
