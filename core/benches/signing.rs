//! Sign and verify throughput on typical ION bodies (1 KB and 64 KB of `data`):
//! ION, Standard Webhooks HMAC (`v1`) and Ed25519 (`v1a`).
//!
//! `cargo bench -p changewire-core --bench signing`; figures in BENCHMARKS.md.

#![allow(missing_docs)] // criterion's macros generate undocumented items
#![allow(clippy::unwrap_used)] // a benchmark: panicking on setup failure is the point

use changewire_core::{ion, json::Value, standard};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;

/// An ION-shaped body whose `data` serializes to about `target` bytes.
fn body_of_size(target: usize) -> Vec<u8> {
    let mut new = serde_json::Map::new();
    let mut old = serde_json::Map::new();
    let mut i = 0;
    let fields = [
        "status",
        "serial_number",
        "quantity",
        "location",
        "notes",
        "completed_at",
    ];
    while serde_json::to_vec(&new).map(|v| v.len()).unwrap_or(0)
        + serde_json::to_vec(&old).map(|v| v.len()).unwrap_or(0)
        < target
    {
        let name = format!("{}_{i}", fields[i % fields.len()]);
        match i % 4 {
            0 => {
                new.insert(name.clone(), serde_json::json!("complete"));
                old.insert(name, serde_json::json!("in_progress"));
            }
            1 => {
                new.insert(name.clone(), serde_json::json!(i * 37));
                old.insert(name, serde_json::Value::Null);
            }
            2 => {
                new.insert(
                    name,
                    serde_json::json!({"lot": "L-2026-11", "qty": 12.5, "ok": true}),
                );
            }
            _ => {
                new.insert(
                    name,
                    serde_json::json!("Torque verified at 12.5 Nm — operator initials: ÅJ"),
                );
            }
        }
        i += 1;
    }
    let body = serde_json::json!({
        "event_id": 123456, "subscription_id": 42, "resource": "run_steps", "action": "update",
        "transaction_id": 9876543, "occurred_at": "2026-04-26T19:33:42.108Z",
        "data": {"id": 1234, "etag": "abc123", "old": old, "new": new}
    });
    serde_json::to_vec(&body).expect("serializable")
}

/// The body `sdk-python/bench/bench_verify.py` verifies (991 bytes), so the
/// Python figures can be split into core time and binding overhead.
const PYTHON_BENCH_BODY: &str = r#"{"event_id": 5182912, "subscription_id": 362, "resource": "run_step", "action": "update", "transaction_id": 60068168, "occurred_at": "2026-04-26T19:33:42.108Z", "data": {"id": 508241, "etag": "54702d7d9f3e", "old": {"status": "in_progress", "assigned_to_id": 2912, "location_id": 26, "duration_seconds": 3748.5, "passed": null, "notes": "Torque check pending on fixture B", "serial_number": "SN-774113", "completed_at": null, "attributes": {"lot": "L-2026-11", "qty": 12, "inspected": false}}, "new": {"status": "complete", "assigned_to_id": 3310, "location_id": 142, "duration_seconds": 4012.25, "passed": true, "notes": "Torque verified: 12.5 Nm on all 8 fasteners (fixture B)", "serial_number": "SN-866021", "completed_at": "2026-04-26T19:33:42.108Z", "attributes": {"lot": "L-2026-11", "qty": 12, "inspected": true, "inspector": "Zoë Müller"}}, "record_url": "https://app.example.net/runs/508241", "related": {"run_id": 77120, "procedure": "Final assembly, rev C", "station": "A-07"}}}"#;

fn bench(c: &mut Criterion) {
    let url = "https://hooks.example.com/ion-events";
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    {
        let body = PYTHON_BENCH_BODY.as_bytes();
        let signature = ion::sign_body(secret, url, body).unwrap();
        let mut group = c.benchmark_group("ion_python_bench_body");
        group.throughput(Throughput::Elements(1));
        group.bench_function(BenchmarkId::new("verify_raw_body", body.len()), |b| {
            b.iter(|| ion::verify_body(secret, url, black_box(body), black_box(&signature)))
        });
        group.bench_function(BenchmarkId::new("parse_only", body.len()), |b| {
            b.iter(|| Value::parse(black_box(body)).map(|v| matches!(v, Value::Object(_))))
        });
        group.finish();
    }
    let key = standard::SigningKey::from_secret(secret).expect("valid secret");
    let ed_key = standard::Ed25519SigningKey::from_seed([42; 32]);
    let ed_public = ed_key.public_key();
    for (label, size) in [("1KB", 1024), ("64KB", 64 * 1024)] {
        let body = body_of_size(size);
        let signature = ion::sign_body(secret, url, &body).expect("signs");
        let mut group = c.benchmark_group(format!("ion_{label}"));
        group.throughput(Throughput::Elements(1));
        group.bench_function(BenchmarkId::new("verify_raw_body", body.len()), |b| {
            b.iter(|| ion::verify_body(secret, url, black_box(&body), black_box(&signature)))
        });
        group.bench_function(BenchmarkId::new("sign_raw_body", body.len()), |b| {
            b.iter(|| ion::sign_body(secret, url, black_box(&body)))
        });
        group.bench_function(BenchmarkId::new("parse_only", body.len()), |b| {
            b.iter(|| Value::parse(black_box(&body)).map(|v| matches!(v, Value::Object(_))))
        });
        group.finish();
        let mut group = c.benchmark_group(format!("standard_{label}"));
        group.throughput(Throughput::Elements(1));
        let sig = key.sign("123456", 1_764_000_000, &body);
        group.bench_function(BenchmarkId::new("verify", body.len()), |b| {
            b.iter(|| {
                standard::verify(
                    &key,
                    "123456",
                    "1764000000",
                    black_box(&sig),
                    black_box(&body),
                    1_764_000_000,
                    300,
                )
            })
        });
        group.bench_function(BenchmarkId::new("sign", body.len()), |b| {
            b.iter(|| key.sign(black_box("123456"), 1_764_000_000, black_box(&body)))
        });
        // Per delivery the gateway signs once; each receiver verifies once.
        let ed_sig = ed_key.sign("123456", 1_764_000_000, &body);
        group.bench_function(BenchmarkId::new("ed25519_sign", body.len()), |b| {
            b.iter(|| ed_key.sign(black_box("123456"), 1_764_000_000, black_box(&body)))
        });
        group.bench_function(BenchmarkId::new("ed25519_verify", body.len()), |b| {
            b.iter(|| {
                ed_public.verify(
                    "123456",
                    "1764000000",
                    black_box(&ed_sig),
                    black_box(&body),
                    1_764_000_000,
                    300,
                )
            })
        });
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
