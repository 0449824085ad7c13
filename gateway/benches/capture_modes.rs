//! The two PostgreSQL capture modes side by side, in one run, on one
//! server (which needs `wal_level = logical`), printed as JSON (figures go
//! in BENCHMARKS.md):
//!
//! ```text
//! cargo bench -p changewire-gateway --bench capture_modes -- all
//! cargo bench -p changewire-gateway --bench capture_modes -- latency|throughput|app
//! ```
//!
//! The server is `CHANGEWIRE_TEST_PG_LOGICAL`, else the local one if it has
//! `wal_level = logical`, else a throwaway cluster (fsync off: pass a real
//! server for figures). Each run is a fresh database that is both the store
//! and the captured database (`runs`, `REPLICA IDENTITY FULL` in both modes,
//! so the application's tables are the same), with an in-process gateway
//! and a loopback sink:
//!
//! * `latency`: commit → receiver p50/p99 at 500 changes/s (5 rows per
//!   transaction, 10 s) and 5,000 changes/s (10 rows per transaction, 5 s);
//! * `throughput`: `--changes` (20,000) committed as fast as possible in
//!   transactions of 500, deliveries/s end to end to 1 receiver and with
//!   10-way fan-out (a fifth of the changes);
//! * `app`: the application's single-row UPDATE transactions/s (4 clients,
//!   5 s per run) on ~100-byte and ~1 KB rows: without capture; with each
//!   mode installed (what it adds to the application's transactions); with
//!   a gateway importing (triggers) or streaming (logical) beside it on the
//!   same cores; each twice; ratios to without.
//!
//! Every load is bounded in count and time and sent only to 127.0.0.1.

#![allow(missing_docs)] // a benchmark binary
#![allow(clippy::unwrap_used)] // a benchmark: panicking on setup failure is the point

#[path = "common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use changewire_test_support::gateway::TestGateway;
use changewire_test_support::pg::TestDatabase;
use common::{
    arg, bench_args, percentile, record, round, run_bench, start_sink, update_tps, wait_count,
    write_rows,
};
use serde_json::{Value, json};
use sqlx::Connection;

const SCHEMA: &str = "CREATE TABLE runs (id BIGINT PRIMARY KEY, status TEXT NOT NULL, payload TEXT, t BIGINT); \
                      ALTER TABLE runs REPLICA IDENTITY FULL;";

const MODES: [&str; 2] = ["triggers", "logical"];

async fn app_db() -> TestDatabase {
    let db = TestDatabase::create_logical().await;
    let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
    sqlx::raw_sql(SCHEMA).execute(&mut conn).await.unwrap();
    db
}

async fn gateway(db: &TestDatabase, mode: &str) -> TestGateway {
    let toml = format!(
        "capture = \"{url}\"\n[resources]\nRUNS = \"runs\"\n[log]\nlevel = \"error\"\n\
         [capture_options]\nmode = \"{mode}\"\nsweep_interval_ms = 200\n",
        url = db.url
    );
    TestGateway::start_with_store(db.url.clone(), None, tempfile::tempdir().unwrap(), &toml).await
}

async fn latency(mode: &str, rate: u64, secs: u64, batch: i64) -> Value {
    let db = app_db().await;
    let (addr, sink) = start_sink(false).await;
    let gw = gateway(&db, mode).await;
    gw.receiver_with(
        &format!("http://{addr}/r"),
        &[("RUNS", "CREATE")],
        json!({}),
    )
    .await;
    let n = (rate * secs) as i64;
    write_rows(&db.url, 1, n, batch, Some(rate)).await;
    wait_count(&sink, n as u64, Duration::from_secs(60)).await;
    let mut lat = sink.latencies_us.lock().unwrap().clone();
    drop(gw);
    json!({"mode": mode, "rate_per_sec": rate, "rows_per_transaction": batch, "changes": n,
           "latency_ms_p50": percentile(&mut lat, 0.5) as f64 / 1000.0,
           "latency_ms_p99": percentile(&mut lat, 0.99) as f64 / 1000.0})
}

async fn throughput(mode: &str, changes: i64, fanout: usize) -> Value {
    let db = app_db().await;
    let (addr, sink) = start_sink(false).await;
    let gw = gateway(&db, mode).await;
    for r in 0..fanout {
        gw.receiver_with(
            &format!("http://{addr}/r{r}"),
            &[("RUNS", "CREATE")],
            json!({"maxConcurrency": 64}),
        )
        .await;
    }
    let began = Instant::now();
    write_rows(&db.url, 1, changes, 500, None).await;
    let expected = changes as u64 * fanout as u64;
    wait_count(&sink, expected, Duration::from_secs(600)).await;
    let secs = began.elapsed().as_secs_f64();
    drop(gw);
    json!({"mode": mode, "changes": changes, "fanout": fanout, "deliveries": expected,
           "deliveries_per_sec": (expected as f64 / secs).round()})
}

/// The application's single-row UPDATE transactions/s under each setup:
///
/// * `none`: no capture (the tables' default replica identity);
/// * `triggers`, `logical`: capture installed, no gateway running: what
///   the mode adds to the application's own transactions (the trigger's
///   two row writes; `REPLICA IDENTITY FULL`'s old row in the WAL);
/// * `triggers_importing`, `logical_streaming`: a gateway running beside
///   (importing the log; decoding the slot), on the same two cores.
///
/// On pgbench_accounts-shaped rows (~100 bytes) and on 1 KB rows, each
/// setup twice (alternating), on a fresh database per run.
async fn app_overhead(secs: u64) -> Value {
    const SETUPS: [&str; 5] = [
        "none",
        "triggers",
        "logical",
        "triggers_importing",
        "logical_streaming",
    ];
    let small = "UPDATE accounts SET abalance = abalance + $2 WHERE aid = $1";
    let large = "UPDATE runs SET t = $2, status = CASE WHEN status = 'a' THEN 'b' ELSE 'a' END WHERE id = $1";
    let mut out = serde_json::Map::new();
    for (label, sql, rows) in [
        ("pgbench_accounts_rows", small, 100_000),
        ("one_kb_rows", large, 10_000),
    ] {
        let mut sums = [0.0f64; SETUPS.len()];
        for _ in 0..2 {
            for (i, setup) in SETUPS.iter().enumerate() {
                let db = TestDatabase::create_logical().await;
                let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
                sqlx::raw_sql(
                    "CREATE TABLE runs (id BIGINT PRIMARY KEY, status TEXT NOT NULL, payload TEXT, t BIGINT);
                     CREATE TABLE accounts (aid INTEGER PRIMARY KEY, bid INTEGER NOT NULL, abalance INTEGER NOT NULL, filler CHAR(84));
                     INSERT INTO accounts SELECT g, g / 10000 + 1, 0, '' FROM generate_series(1, 100000) g;",
                )
                .execute(&mut conn)
                .await
                .unwrap();
                write_rows(&db.url, 1, 10_000, 1000, None).await;
                let mode = if setup.starts_with("logical") {
                    "logical"
                } else {
                    "triggers"
                };
                if mode == "logical" {
                    sqlx::raw_sql("ALTER TABLE runs REPLICA IDENTITY FULL; ALTER TABLE accounts REPLICA IDENTITY FULL;")
                        .execute(&mut conn)
                        .await
                        .unwrap();
                }
                sqlx::raw_sql("VACUUM ANALYZE accounts")
                    .execute(&mut conn)
                    .await
                    .unwrap();
                let gw = match *setup {
                    "none" => None,
                    _ => {
                        let toml = format!(
                            "capture = \"{url}\"\n[resources]\nRUNS = \"runs\"\nACCOUNTS = \"accounts\"\n[log]\nlevel = \"error\"\n\
                             [capture_options]\nmode = \"{mode}\"\n",
                            url = db.url
                        );
                        let mut gw = TestGateway::start_with_store(
                            db.url.clone(),
                            None,
                            tempfile::tempdir().unwrap(),
                            &toml,
                        )
                        .await;
                        if !setup.contains('_') {
                            // Installed, then the gateway goes.
                            gw.stop().await;
                        }
                        Some(gw)
                    }
                };
                sums[i] += update_tps(&db.url, sql, 4, secs, rows).await;
                drop(gw);
            }
        }
        let tps: Vec<f64> = sums.iter().map(|s| s / 2.0).collect();
        let mut row = serde_json::Map::new();
        let baseline = tps[0].max(1.0);
        for (setup, tps) in SETUPS.iter().zip(&tps) {
            row.insert(format!("tps_{setup}"), json!(tps.round()));
            if *setup != "none" {
                row.insert(format!("ratio_{setup}"), json!(round(tps / baseline, 3)));
            }
        }
        out.insert(label.into(), Value::Object(row));
    }
    out.insert("clients".into(), json!(4));
    out.insert("seconds_per_run".into(), json!(secs));
    Value::Object(out)
}

fn main() {
    let (args, what) = bench_args();
    let changes = arg(&args, "--changes", 20_000);
    run_bench(|mut out| async move {
        let all = what == "all";
        let server = tokio::task::spawn_blocking(changewire_test_support::pg::logical_server)
            .await
            .unwrap();
        record(&mut out, "server", json!(server));
        if all || what == "latency" {
            for mode in MODES {
                record(
                    &mut out,
                    &format!("latency_500_{mode}"),
                    latency(mode, 500, 10, 5).await,
                );
                record(
                    &mut out,
                    &format!("latency_5000_{mode}"),
                    latency(mode, 5_000, 5, 10).await,
                );
            }
        }
        if all || what == "throughput" {
            for mode in MODES {
                record(
                    &mut out,
                    &format!("throughput_1_{mode}"),
                    throughput(mode, changes, 1).await,
                );
                record(
                    &mut out,
                    &format!("throughput_fanout_10_{mode}"),
                    throughput(mode, changes / 5, 10).await,
                );
            }
        }
        if all || what == "app" {
            record(&mut out, "app_update_throughput", app_overhead(5).await);
        }
        out
    });
}
