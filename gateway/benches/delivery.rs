//! End-to-end benchmarks, printed as JSON (figures go in BENCHMARKS.md).
//!
//! ```text
//! cargo build --release -p changewire-gateway          # the binary, for `rss`
//! cargo bench -p changewire-gateway --bench delivery -- all
//! cargo bench -p changewire-gateway --bench delivery -- throughput [--changes N]
//! cargo bench -p changewire-gateway --bench delivery -- ingest [--events N] [--connections C]
//! ```
//!
//! Helpers shared with `scaling` (sink, `runs` writer, child process) are in
//! `common/mod.rs`.
//!
//! Scenarios (each on a fresh PostgreSQL database that is both the store and
//! the captured database, with a fast loopback sink):
//!
//! * `sink`: the sink's direct capacity — concurrent keep-alive POSTs of the
//!   same 1 KB bodies, no gateway — the ceiling the others are compared to;
//! * `throughput`: commit N changes as fast as possible; deliveries/s end to
//!   end with 1 receiver and with 10-way fan-out;
//! * `latency`: 500 changes/s for 10 s (5 rows per transaction); commit →
//!   receiver p50/p99;
//! * `latency_5000`: the same at 5,000 changes/s for 5 s (10 rows per
//!   transaction);
//! * `capture`: capture + fan-out only (receivers paused): changes/s and
//!   deliveries written/s with 1 and 10 subscriptions, and commit → pending
//!   delivery p50/p99; the same latency for a captured SQLite file;
//! * `signing`: end-to-end deliveries/s with Standard Webhooks HMAC only and
//!   with HMAC + Ed25519 (`v1a`), back to back in `--pairs` pairs (3);
//! * `traces`: the release `changewire` binary as a child process, end to
//!   end without traces and with every span exported to an OTLP collector
//!   on loopback (which only counts them): deliveries/s and the gateway
//!   process's CPU per delivery, in `--pairs` pairs (3) whose order
//!   alternates (off → on, then on → off);
//! * `trigger`: single-row UPDATE transactions with and without the capture
//!   trigger (pgbench-style), as a ratio;
//! * `isolation`: a healthy receiver's p50/p99 at 200 changes/s, alone and
//!   beside a receiver that hangs for its whole timeout;
//! * `plugin`: throughput with an add-header plugin and with none;
//! * `ingest`: N events (`--events`, default changes/2) published through
//!   `POST /v1/events`, one per request by 48 keep-alive clients
//!   (`--connections`) and in lists of 100 by 4 clients: events
//!   accepted/s with the receiver paused, deliveries/s end to end with 1
//!   receiver, each as a ratio to the capture path in the same run
//!   (`capture` with 1 subscription, `throughput` with 1 receiver);
//! * `rss`: the `changewire` binary's peak RSS while 1,000,000 deliveries
//!   are pending for a receiver that never answers.
//!
//! Every load is bounded in count and time and sent only to 127.0.0.1.

#![allow(missing_docs)] // a benchmark binary
#![allow(clippy::unwrap_used)] // a benchmark: panicking on setup failure is the point

#[path = "common/mod.rs"]
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use changewire_test_support::gateway::{ADMIN_TOKEN, TestGateway};
use changewire_test_support::pg::TestDatabase;
use common::{
    PAYLOAD, app_db, arg, bench_args, binary_missing, clk_tck, cpu_ticks, gateway_process, now_ns,
    percentile, record, run_bench, start_sink, update_tps, wait_count, write_backlog, write_rows,
};
use serde_json::{Value, json};
use sqlx::Connection;

fn body_1kb(i: i64) -> String {
    json!({"event_id": i, "subscription_id": 1, "resource": "runs", "action": "create", "transaction_id": i,
           "occurred_at": "2026-11-23T10:00:00.000Z",
           "data": {"id": i, "etag": "e", "old": null, "new": {"id": i, "status": "queued", "payload": "x".repeat(PAYLOAD), "t": now_ns()}}})
    .to_string()
}

/// `conns` keep-alive connections POSTing `body(i)` to `url` (with
/// `authorization`, if given) until `total` requests were sent or `deadline`
/// passed; returns how many were answered with a 2xx status.
async fn post_loop(
    url: String,
    authorization: Option<String>,
    conns: usize,
    total: Option<i64>,
    deadline: Instant,
    body: fn(i64) -> String,
) -> u64 {
    use http_body_util::{BodyExt, Full};
    use hyper_util::client::legacy::Client;
    use hyper_util::client::legacy::connect::HttpConnector;
    use hyper_util::rt::TokioExecutor;
    let client: Client<HttpConnector, Full<Bytes>> = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(conns)
        .build(HttpConnector::new());
    let ok = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for c in 0..conns {
        let (client, url, auth, ok) = (
            client.clone(),
            url.clone(),
            authorization.clone(),
            ok.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut i = c as i64 + 1;
            while Instant::now() < deadline && total.is_none_or(|t| i <= t) {
                let mut req = hyper::Request::post(&url).header("content-type", "application/json");
                if let Some(auth) = &auth {
                    req = req.header("authorization", auth);
                }
                let req = req.body(Full::new(Bytes::from(body(i)))).unwrap();
                if let Ok(resp) = client.request(req).await {
                    if resp.status().is_success() {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    let _ = resp.into_body().collect().await;
                }
                i += conns as i64;
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    ok.load(Ordering::Relaxed)
}

/// The sink's direct capacity: `conns` keep-alive connections POSTing 1 KB for `secs`.
async fn sink_capacity(conns: usize, secs: u64) -> Value {
    let (addr, sink) = start_sink(false).await;
    let deadline = Instant::now() + Duration::from_secs(secs);
    post_loop(
        format!("http://{addr}/direct"),
        None,
        conns,
        None,
        deadline,
        body_1kb,
    )
    .await;
    let n = sink.count.load(Ordering::Relaxed);
    json!({"connections": conns, "seconds": secs, "requests": n, "requests_per_sec": n / secs})
}

/// A `POST /v1/events` body: the same row as the capture benchmarks write.
fn event_1kb(i: i64) -> String {
    json!({"resource": "RUNS", "action": "CREATE", "id": i,
           "new": {"id": i, "status": "queued", "payload": "x".repeat(PAYLOAD), "t": now_ns()}})
    .to_string()
}

/// Events per request when publishing lists.
const LIST: i64 = 100;

/// Request `i` of a list-publishing producer: events `(i-1)·LIST+1 ..= i·LIST`.
fn events_1kb_list(i: i64) -> String {
    let events: Vec<String> = ((i - 1) * LIST + 1..=i * LIST).map(event_1kb).collect();
    format!("[{}]", events.join(","))
}

/// Publishes `events` through `POST /v1/events` from `conns` keep-alive
/// clients, one event per request or (`lists`) [`LIST`] per request;
/// returns (events accepted, seconds).
async fn publish_events(gw: &TestGateway, events: i64, conns: usize, lists: bool) -> (u64, f64) {
    let began = Instant::now();
    let (requests, body, per_request): (i64, fn(i64) -> String, u64) = if lists {
        (events / LIST, events_1kb_list, LIST as u64)
    } else {
        (events, event_1kb, 1)
    };
    let accepted = post_loop(
        format!("{}/v1/events", gw.base()),
        Some(format!("Bearer {ADMIN_TOKEN}")),
        conns,
        Some(requests),
        began + Duration::from_secs(600),
        body,
    )
    .await;
    (accepted * per_request, began.elapsed().as_secs_f64())
}

/// Ingest through `POST /v1/events` against the capture path, in one run,
/// one event per request (`conns` clients) and lists of [`LIST`] events (4
/// clients): events accepted/s with the receiver paused (vs `capture`), and
/// deliveries/s end to end with 1 receiver (vs `throughput`).
async fn ingest(events: i64, conns: usize) -> Value {
    let capture_path = capture(events, 1, None).await;
    let throughput_path = throughput(events, 1, None).await;
    let mut out = json!({"events": events, "connections": conns,
                         "capture_1_sub": capture_path, "throughput_1": throughput_path});
    for (key, lists, conns) in [("single", false, conns), ("lists_of_100", true, 4)] {
        let run = ingest_run(events, conns, lists).await;
        let ratio = |a: &Value, b: &Value| {
            common::round(
                a.as_f64().unwrap_or(0.0) / b.as_f64().unwrap_or(1.0).max(1e-9),
                2,
            )
        };
        out[key] = json!({
            "connections": conns, "events_per_request": if lists { LIST } else { 1 },
            "accepted_vs_captured_ratio": ratio(&run["publish_only"]["events_accepted_per_sec"], &out["capture_1_sub"]["changes_per_sec"]),
            "deliveries_vs_capture_path_ratio": ratio(&run["end_to_end"]["deliveries_per_sec"], &out["throughput_1"]["deliveries_per_sec"]),
            "run": run,
        });
    }
    out
}

/// One way of publishing, measured twice: events accepted/s with the
/// receiver paused (vs `capture`), and deliveries/s end to end with one
/// receiver (vs `throughput`).
async fn ingest_run(events: i64, conns: usize, lists: bool) -> Value {
    let db = app_db().await;
    let gw = gateway(&db, "").await;
    register_paused(&gw, "https://hooks.example.com/r").await;
    let (accepted, publish_secs) = publish_events(&gw, events, conns, lists).await;
    drop(gw);
    drop(db);

    let db = app_db().await;
    let (addr, sink) = start_sink(false).await;
    let gw = gateway(&db, "").await;
    register(
        &gw,
        &format!("http://{addr}/r"),
        json!({"maxConcurrency": 64}),
    )
    .await;
    let began = Instant::now();
    let (e2e_accepted, e2e_publish_secs) = publish_events(&gw, events, conns, lists).await;
    wait_count(&sink, e2e_accepted, Duration::from_secs(600)).await;
    let total = began.elapsed().as_secs_f64();
    let (p50, p99) = sink.latency_ms();
    json!({
        "publish_only": {"accepted": accepted, "seconds": publish_secs,
                         "events_accepted_per_sec": (accepted as f64 / publish_secs).round()},
        "end_to_end": {"accepted": e2e_accepted, "publish_seconds": e2e_publish_secs, "seconds": total,
                       "deliveries_per_sec": (e2e_accepted as f64 / total).round(),
                       "latency_ms_p50": p50, "latency_ms_p99": p99},
    })
}

async fn gateway(db: &TestDatabase, extra: &str) -> TestGateway {
    let toml = format!(
        "capture = \"{url}\"\n{extra}\n[resources]\nRUNS = \"runs\"\n[log]\nlevel = \"error\"\n[capture_options]\nsweep_interval_ms = 200\n",
        url = db.url
    );
    TestGateway::start_with_store(db.url.clone(), None, tempfile::tempdir().unwrap(), &toml).await
}

async fn register(gw: &TestGateway, url: &str, extra: Value) -> String {
    gw.receiver_with(url, &[("RUNS", "CREATE")], extra).await.0
}

/// Registers a receiver for RUNS/CREATE and pauses it: its deliveries are
/// written and wait, nothing is sent (capture-only scenarios).
async fn register_paused(gw: &TestGateway, url: &str) {
    let id = register(gw, url, json!({})).await;
    let etag = gw
        .graphql(
            "query($id: ID!) { webhookReceiver(id: $id) { _etag } }",
            json!({"id": id}),
        )
        .await["webhookReceiver"]["_etag"]
        .clone();
    gw.graphql("mutation($i: PauseWebhookReceiverInput!) { pauseWebhookReceiver(input: $i) { webhookReceiver { paused } } }", json!({"i": {"id": id, "etag": etag}})).await;
}

/// Commit `changes` as fast as possible; deliveries/s end to end.
async fn throughput(changes: i64, fanout: usize, plugin: Option<&str>) -> Value {
    throughput_with(changes, fanout, plugin, json!({})).await
}

/// [`throughput`] with receivers created with `extra` settings.
async fn throughput_with(changes: i64, fanout: usize, plugin: Option<&str>, extra: Value) -> Value {
    let db = app_db().await;
    let (addr, sink) = start_sink(false).await;
    let gw = gateway(&db, "").await;
    for r in 0..fanout {
        let mut input = json!({"maxConcurrency": 64});
        if let (Some(obj), Some(more)) = (input.as_object_mut(), extra.as_object()) {
            obj.extend(more.clone());
        }
        let id = register(&gw, &format!("http://{addr}/r{r}"), input).await;
        if let Some(path) = plugin {
            use base64::Engine as _;
            let wasm =
                base64::engine::general_purpose::STANDARD.encode(std::fs::read(path).unwrap());
            gw.graphql(
                "mutation($i: AttachWebhookPluginInput!) { attachWebhookPlugin(input: $i) { plugin { sha256 } } }",
                json!({"i": {"receiverId": id, "wasm": wasm, "config": {"headers": {"x-team": "bench"}}}}),
            )
            .await;
        }
    }
    let began = Instant::now();
    write_rows(&db.url, 1, changes, 500, None).await;
    let committed = began.elapsed();
    let expected = changes as u64 * fanout as u64;
    wait_count(&sink, expected, Duration::from_secs(600)).await;
    let total = began.elapsed();
    let mut lat = sink.latencies_us.lock().unwrap().clone();
    drop(gw);
    json!({
        "changes": changes, "fanout": fanout, "plugin": plugin.map(|p| p.rsplit('/').next().unwrap_or(p)),
        "deliveries": expected, "seconds": total.as_secs_f64(), "commit_seconds": committed.as_secs_f64(),
        "deliveries_per_sec": (expected as f64 / total.as_secs_f64()).round(),
        "changes_per_sec": (changes as f64 / total.as_secs_f64()).round(),
        "latency_ms_p50": percentile(&mut lat, 0.5) as f64 / 1000.0, "latency_ms_p99": percentile(&mut lat, 0.99) as f64 / 1000.0,
    })
}

/// A steady rate for `secs`, rows committed `batch` per transaction;
/// commit → receiver percentiles.
async fn latency(rate: u64, secs: u64, batch: i64) -> Value {
    let db = app_db().await;
    let (addr, sink) = start_sink(false).await;
    let gw = gateway(&db, "").await;
    register(&gw, &format!("http://{addr}/r"), json!({})).await;
    let n = (rate * secs) as i64;
    write_rows(&db.url, 1, n, batch, Some(rate)).await;
    wait_count(&sink, n as u64, Duration::from_secs(60)).await;
    let mut lat = sink.latencies_us.lock().unwrap().clone();
    drop(gw);
    json!({"rate_per_sec": rate, "seconds": secs, "changes": n,
           "latency_ms_p50": percentile(&mut lat, 0.5) as f64 / 1000.0, "latency_ms_p99": percentile(&mut lat, 0.99) as f64 / 1000.0,
           "latency_ms_max": lat.last().copied().unwrap_or(0) as f64 / 1000.0})
}

/// Capture + fan-out only: receivers paused, so deliveries are written, not sent.
async fn capture(changes: i64, subscriptions: usize, paced: Option<u64>) -> Value {
    let db = app_db().await;
    let gw = gateway(&db, "").await;
    for r in 0..subscriptions {
        register_paused(&gw, &format!("https://hooks.example.com/r{r}")).await;
    }
    let began = Instant::now();
    write_rows(
        &db.url,
        1,
        changes,
        if paced.is_some() { 5 } else { 500 },
        paced,
    )
    .await;
    let expected = changes * subscriptions as i64;
    wait_written(&gw, expected, began, Duration::from_secs(600)).await;
    let total = began.elapsed();
    let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
    // Commit → pending delivery: the row's commit timestamp vs the delivery's creation.
    let lat: Vec<i64> = sqlx::query_scalar(
        "SELECT (d.created_at * 1000 - r.t / 1000) FROM changewire.deliveries d JOIN changewire.changes c ON c.id = d.change_id \
         JOIN runs r ON r.id::text = c.row_id",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let mut lat: Vec<u64> = lat.into_iter().map(|v| v.max(0) as u64).collect();
    drop(gw);
    json!({"changes": changes, "subscriptions": subscriptions, "paced_rate": paced, "seconds": total.as_secs_f64(),
           "changes_per_sec": (changes as f64 / total.as_secs_f64()).round(),
           "deliveries_written_per_sec": (expected as f64 / total.as_secs_f64()).round(),
           "commit_to_pending_ms_p50": percentile(&mut lat, 0.5) as f64 / 1000.0,
           "commit_to_pending_ms_p99": percentile(&mut lat, 0.99) as f64 / 1000.0})
}

/// Waits until the gateway's store holds `expected` deliveries (any status),
/// for at most `limit` after `began`.
async fn wait_written(gw: &TestGateway, expected: i64, began: Instant, limit: Duration) {
    loop {
        let counts = gw.gw().store.delivery_status_counts().await.unwrap();
        let n: i64 = counts.iter().map(|(_, n)| n).sum();
        if n >= expected {
            return;
        }
        assert!(
            began.elapsed() < limit,
            "{n} of {expected} deliveries written"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Opens (creating if need be) a SQLite file.
async fn sqlite_connect(path: &std::path::Path) -> sqlx::SqliteConnection {
    use sqlx::ConnectOptions;
    use std::str::FromStr;
    sqlx::sqlite::SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))
        .unwrap()
        .create_if_missing(true)
        .connect()
        .await
        .unwrap()
}

/// SQLite capture: another connection writes `changes` rows to an app's
/// SQLite file at `rate`/s (5 per transaction); commit → pending delivery.
async fn sqlite_capture(changes: i64, rate: u64) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let app_path = dir.path().join("app.db");
    let store_path = dir.path().join("store.db");
    let mut app = sqlite_connect(&app_path).await;
    sqlx::raw_sql(
        "CREATE TABLE runs (id INTEGER PRIMARY KEY, status TEXT NOT NULL, payload TEXT, t INTEGER)",
    )
    .execute(&mut app)
    .await
    .unwrap();
    let toml = format!(
        "capture = \"sqlite://{}\"\n[resources]\nRUNS = \"runs\"\n[log]\nlevel = \"error\"\n",
        app_path.display()
    );
    let gw = TestGateway::start_with_store(
        format!("sqlite://{}", store_path.display()),
        None,
        tempfile::tempdir().unwrap(),
        &toml,
    )
    .await;
    register_paused(&gw, "https://hooks.example.com/r").await;
    let payload = "x".repeat(PAYLOAD);
    let began = Instant::now();
    let mut i = 0;
    while i < changes {
        let mut tx = sqlx::Connection::begin(&mut app).await.unwrap();
        let t = now_ns();
        for id in i + 1..=(i + 5).min(changes) {
            sqlx::query("INSERT INTO runs (id, status, payload, t) VALUES ($1, 'queued', $2, $3)")
                .bind(id)
                .bind(&payload)
                .bind(t)
                .execute(&mut *tx)
                .await
                .unwrap();
        }
        tx.commit().await.unwrap();
        i = (i + 5).min(changes);
        let due = began + Duration::from_secs_f64(i as f64 / rate as f64);
        tokio::time::sleep_until(due.into()).await;
    }
    wait_written(&gw, changes, began, Duration::from_secs(120)).await;
    let mut store = sqlite_connect(&store_path).await;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "ATTACH DATABASE '{}' AS app",
        app_path.display()
    )))
    .execute(&mut store)
    .await
    .unwrap();
    let lat: Vec<i64> = sqlx::query_scalar(
        "SELECT (d.created_at * 1000 - r.t / 1000) FROM deliveries d JOIN changes c ON c.id = d.change_id \
         JOIN app.runs r ON CAST(r.id AS TEXT) = c.row_id",
    )
    .fetch_all(&mut store)
    .await
    .unwrap();
    assert_eq!(
        lat.len() as i64,
        changes,
        "every change joined to its delivery"
    );
    let mut lat: Vec<u64> = lat.into_iter().map(|v| v.max(0) as u64).collect();
    drop(gw);
    json!({"changes": changes, "paced_rate": rate,
           "commit_to_pending_ms_p50": percentile(&mut lat, 0.5) as f64 / 1000.0,
           "commit_to_pending_ms_p99": percentile(&mut lat, 0.99) as f64 / 1000.0})
}

/// Single-row UPDATE transactions with and without the capture trigger,
/// alternating (without, with, without, with) to even out noise: on
/// pgbench_accounts-shaped rows (~100 bytes) and on the 1 KB rows of the
/// other benchmarks.
async fn trigger_overhead(secs: u64) -> Value {
    let db = app_db().await;
    let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
    sqlx::raw_sql(
        "CREATE TABLE accounts (aid INTEGER PRIMARY KEY, bid INTEGER NOT NULL, abalance INTEGER NOT NULL, filler CHAR(84));
         INSERT INTO accounts SELECT g, g / 10000 + 1, 0, '' FROM generate_series(1, 100000) g;",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    // VACUUM refuses to run in the implicit transaction of a multi-statement string.
    sqlx::raw_sql("VACUUM ANALYZE accounts")
        .execute(&mut conn)
        .await
        .unwrap();
    write_rows(&db.url, 1, 10_000, 1000, None).await;
    let small = "UPDATE accounts SET abalance = abalance + $2 WHERE aid = $1";
    let large = "UPDATE runs SET t = $2, status = CASE WHEN status = 'a' THEN 'b' ELSE 'a' END WHERE id = $1";
    let toml = format!(
        "store = \"{url}\"\ncapture = \"{url}\"\n[resources]\nACCOUNTS = \"accounts\"\nRUNS = \"runs\"\n",
        url = db.url
    );
    let config = changewire_gateway::Config::from_toml(&toml).unwrap();
    let mut measured = serde_json::Map::new();
    for (label, sql, rows) in [
        ("pgbench_accounts_rows", small, 100_000),
        ("one_kb_rows", large, 10_000),
    ] {
        let (mut without, mut with) = (0.0, 0.0);
        for _ in 0..2 {
            changewire_gateway::testing::uninstall_capture(&config, false)
                .await
                .unwrap();
            without += update_tps(&db.url, sql, 4, secs, rows).await;
            changewire_gateway::testing::PgCapture::setup(&db.url, &config)
                .await
                .unwrap();
            with += update_tps(&db.url, sql, 4, secs, rows).await;
        }
        let (without, with) = (without / 2.0, with / 2.0);
        measured.insert(
            label.into(),
            json!({"tps_without_trigger": without.round(), "tps_with_trigger": with.round(),
                   "overhead_percent": ((1.0 - with / without) * 1000.0).round() / 10.0}),
        );
    }
    measured.insert("clients".into(), json!(4));
    measured.insert("seconds_per_run".into(), json!(secs));
    Value::Object(measured)
}

async fn isolation(rate: u64, secs: u64) -> Value {
    let mut runs = Vec::new();
    for with_hanging in [false, true] {
        let db = app_db().await;
        let (addr, sink) = start_sink(false).await;
        let gw = gateway(&db, "").await;
        register(&gw, &format!("http://{addr}/healthy"), json!({})).await;
        let hanging = if with_hanging {
            let (haddr, hsink) = start_sink(true).await;
            register(
                &gw,
                &format!("http://{haddr}/hanging"),
                json!({"timeoutMs": 5000, "maxConcurrency": 16}),
            )
            .await;
            Some(hsink)
        } else {
            None
        };
        let n = (rate * secs) as i64;
        write_rows(&db.url, 1, n, 2, Some(rate)).await;
        wait_count(&sink, n as u64, Duration::from_secs(60)).await;
        let mut lat = sink.latencies_us.lock().unwrap().clone();
        runs.push(
            json!({"hanging_receiver": with_hanging, "healthy_deliveries": n,
            "hanging_requests_started": hanging.map(|h| h.count.load(Ordering::Relaxed)),
            "healthy_latency_ms_p50": percentile(&mut lat, 0.5) as f64 / 1000.0,
            "healthy_latency_ms_p99": percentile(&mut lat, 0.99) as f64 / 1000.0}),
        );
        drop(gw);
    }
    let ratio = |key: &str| {
        runs[1][key].as_f64().unwrap_or(0.0) / runs[0][key].as_f64().unwrap_or(1.0).max(1e-9)
    };
    json!({"rate_per_sec": rate, "seconds": secs, "runs": runs,
           "p50_ratio": (ratio("healthy_latency_ms_p50") * 100.0).round() / 100.0,
           "p99_ratio": (ratio("healthy_latency_ms_p99") * 100.0).round() / 100.0})
}

async fn rss(pending: i64) -> Value {
    if let Some(skipped) = binary_missing() {
        return skipped;
    }
    let db = TestDatabase::create().await;
    let (haddr, _hsink) = start_sink(true).await;
    // Set up the store with a receiver, then write the pending deliveries directly.
    let setup = write_backlog(
        &db.url,
        &format!("http://{haddr}/never"),
        json!({"timeoutMs": 60000, "maxConcurrency": 16}),
        pending,
        0,
    )
    .await;
    let mut child = gateway_process(
        &db.url,
        false,
        &[("CHANGEWIRE_DELIVERY__POLL_INTERVAL_MS", "200".into())],
    )
    .await;
    let pid = child.pid();
    let mut peak_kb = 0u64;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
            for line in status.lines() {
                if let Some(v) = line.strip_prefix("VmHWM:") {
                    peak_kb = v
                        .trim()
                        .trim_end_matches(" kB")
                        .trim()
                        .parse()
                        .unwrap_or(peak_kb);
                }
            }
        }
    }
    child.kill9();
    let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
    let still_pending: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM changewire.deliveries WHERE status = 'pending'")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    json!({"pending_deliveries": still_pending, "setup_seconds": setup.as_secs_f64(), "observed_seconds": 20,
           "peak_rss_mb": (peak_kb as f64 / 1024.0 * 10.0).round() / 10.0})
}

/// One run of the `changewire` binary (capture and store on a fresh
/// database, one receiver): `changes` committed at once, deliveries/s and
/// the gateway process's CPU per delivery; with `traced`, every span is
/// exported to a counting collector on loopback.
async fn traces_run(changes: i64, traced: bool) -> Value {
    let db = app_db().await;
    let (addr, sink) = start_sink(false).await;
    let collector = changewire_test_support::otlp::OtlpCollector::counting().await;
    let mut extra = Vec::new();
    if traced {
        extra.push(("CHANGEWIRE_TELEMETRY__OTLP_ENDPOINT", collector.url()));
    }
    let mut gw = gateway_process(&db.url, true, &extra).await;
    gw.register(
        &format!("http://{addr}/r"),
        "RUNS",
        "CREATE",
        json!({"maxConcurrency": 64}),
    )
    .await;
    let ticks_before = cpu_ticks(gw.pid()).unwrap_or(0);
    let began = Instant::now();
    write_rows(&db.url, 1, changes, 500, None).await;
    wait_count(&sink, changes as u64, Duration::from_secs(600)).await;
    let seconds = began.elapsed().as_secs_f64();
    let ticks = cpu_ticks(gw.pid())
        .unwrap_or(0)
        .saturating_sub(ticks_before);
    // The last spans wait for the exporter's next flush (every 100 ms).
    let expected_spans = if traced { 2 * changes as u64 } else { 0 };
    let waited = Instant::now();
    while collector.span_count() < expected_spans && waited.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if gw.sigterm(Duration::from_secs(20)).is_none() {
        gw.kill9();
    }
    json!({
        "traced": traced, "deliveries": changes, "seconds": seconds,
        "deliveries_per_sec": (changes as f64 / seconds).round(),
        "gateway_cpu_us_per_delivery": (ticks as f64 / clk_tck() / changes as f64 * 1e7).round() / 10.0,
        "spans_expected": expected_spans, "spans_received": collector.span_count(),
    })
}

/// `pairs` pairs of [`traces_run`], off → on then on → off alternately (so
/// drift over the run falls on both sides); each pair's ratios, on / off,
/// and their medians.
async fn traces_cost(changes: i64, pairs: i64) -> Value {
    if let Some(skipped) = binary_missing() {
        return skipped;
    }
    let mut rows = Vec::new();
    let (mut throughput, mut cpu) = (Vec::new(), Vec::new());
    for pair in 0..pairs {
        let (off, on) = if pair % 2 == 0 {
            let off = traces_run(changes, false).await;
            (off, traces_run(changes, true).await)
        } else {
            let on = traces_run(changes, true).await;
            (traces_run(changes, false).await, on)
        };
        let rate = |v: &Value| v["deliveries_per_sec"].as_f64().unwrap_or(0.0);
        let cost = |v: &Value| v["gateway_cpu_us_per_delivery"].as_f64().unwrap_or(0.0);
        let throughput_ratio = rate(&on) / rate(&off).max(1.0);
        let cpu_ratio = cost(&on) / cost(&off).max(0.1);
        throughput.push(throughput_ratio);
        cpu.push(cpu_ratio);
        rows.push(json!({"off": off, "on": on,
                         "throughput_ratio": (throughput_ratio * 1000.0).round() / 1000.0,
                         "gateway_cpu_ratio": (cpu_ratio * 1000.0).round() / 1000.0}));
    }
    let median = |v: &mut Vec<f64>| (common::median(v) * 1000.0).round() / 1000.0;
    json!({"changes_per_run": changes, "pairs": rows,
           "median_throughput_ratio": median(&mut throughput),
           "median_gateway_cpu_ratio": median(&mut cpu)})
}

fn main() {
    let (args, what) = bench_args();
    let changes = arg(&args, "--changes", 20_000);
    run_bench(|mut out| async move {
        let all = what == "all";
        if all || what == "sink" {
            record(&mut out, "sink_direct", sink_capacity(64, 5).await);
        }
        if all || what == "throughput" {
            record(&mut out, "throughput_1", throughput(changes, 1, None).await);
            record(
                &mut out,
                "throughput_fanout_10",
                throughput(changes / 5, 10, None).await,
            );
        }
        if all || what == "latency" {
            record(&mut out, "latency_500_per_sec", latency(500, 10, 5).await);
        }
        if all || what == "latency_5000" {
            record(
                &mut out,
                "latency_5000_per_sec",
                latency(5_000, 5, 10).await,
            );
        }
        if all || what == "capture" {
            record(&mut out, "capture_1_sub", capture(changes, 1, None).await);
            record(
                &mut out,
                "capture_10_subs",
                capture(changes / 2, 10, None).await,
            );
            record(
                &mut out,
                "capture_latency_500_per_sec",
                capture(5_000, 1, Some(500)).await,
            );
            record(
                &mut out,
                "sqlite_capture_latency_500_per_sec",
                sqlite_capture(5_000, 500).await,
            );
        }
        if all || what == "trigger" {
            record(&mut out, "trigger_overhead", trigger_overhead(5).await);
        }
        if all || what == "isolation" {
            record(&mut out, "isolation", isolation(200, 10).await);
        }
        if all || what == "plugin" {
            let add_header = changewire_plugin_artifacts::ADD_HEADER;
            let without = throughput(changes / 2, 1, None).await;
            let with = throughput(changes / 2, 1, Some(add_header)).await;
            let ratio = with["deliveries_per_sec"].as_f64().unwrap_or(0.0)
                / without["deliveries_per_sec"].as_f64().unwrap_or(1.0);
            record(
                &mut out,
                "plugin_throughput",
                json!({"without": without, "with_add_header": with, "ratio": (ratio * 100.0).round() / 100.0}),
            );
        }
        if all || what == "signing" {
            // Each pair runs back to back: HMAC only, then HMAC + Ed25519.
            let mut pairs = Vec::new();
            for _ in 0..arg(&args, "--pairs", 3) {
                let hmac = throughput_with(
                    changes / 2,
                    1,
                    None,
                    json!({"signatureSchemes": ["STANDARD"]}),
                )
                .await;
                let both = throughput_with(
                    changes / 2,
                    1,
                    None,
                    json!({"signatureSchemes": ["STANDARD", "ED25519"]}),
                )
                .await;
                let ratio = both["deliveries_per_sec"].as_f64().unwrap_or(0.0)
                    / hmac["deliveries_per_sec"].as_f64().unwrap_or(1.0);
                pairs.push(json!({"standard": hmac["deliveries_per_sec"], "standard_and_ed25519": both["deliveries_per_sec"],
                                  "ratio": (ratio * 100.0).round() / 100.0}));
            }
            record(&mut out, "signing_throughput", json!({"pairs": pairs}));
        }
        if all || what == "traces" {
            let pairs = arg(&args, "--pairs", 3);
            record(
                &mut out,
                "traces_cost",
                traces_cost(changes / 2, pairs).await,
            );
        }
        if all || what == "ingest" {
            let events = arg(&args, "--events", changes / 2);
            let conns = arg(&args, "--connections", 48) as usize;
            record(&mut out, "ingest", ingest(events, conns).await);
        }
        if all || what == "rss" {
            record(
                &mut out,
                "rss_1m_pending",
                rss(arg(&args, "--pending", 1_000_000)).await,
            );
        }
        out
    });
}
