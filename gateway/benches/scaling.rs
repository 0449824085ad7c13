//! How the cost grows (issue 8), printed as JSON (figures go in SCALING.md).
//!
//! ```text
//! cargo build --release -p changewire-gateway          # the gateway under test
//! cargo bench -p changewire-gateway --bench scaling -- all      # or: make bench-scaling
//! cargo bench -p changewire-gateway --bench scaling -- fanout --receivers 1,10 --deliveries 5000
//! ```
//!
//! The gateway runs as its own process, `target/release/changewire serve`
//! (without it every scenario prints `{"skipped": …}`), on a fresh
//! PostgreSQL database per run that is both its store and the captured
//! database (`RUNS` = the `runs` table), delivering to a loopback sink in
//! this process. Receivers are registered through the GraphQL API of a
//! first gateway process, stopped before the measured ones start (its
//! backends exit and flush their statistics, so the setup's row writes stay
//! out of the window).
//!
//! Scenarios, each run measured over a window (from the first commit until
//! the sink has everything, unless said otherwise):
//!
//! * `fanout`: 1, 10, 100, 1,000 receivers (`--receivers 1,10,100,1000`)
//!   subscribed to RUNS/CREATE, `--deliveries` (30,000) / receivers changes
//!   committed in transactions of 500 ~1 KB rows;
//! * `payload`: 1 receiver, `--payload-changes` (10,000) ~1 KB rows and
//!   `--large-changes` (2,000) rows of `--large-kb` (64) KB;
//! * `backlog`: `--backlogs 10000,100000,1000000` pending deliveries of ~1 KB
//!   written with SQL before the gateway starts; measured from the first
//!   delivery for `--window` (8) seconds or until drained;
//! * `slow_receiver`: 10 receivers, `--slow-changes` (2,000) changes; once
//!   all healthy, once with one answering after `--slow-ms` (1,000) ms; the 9
//!   healthy receivers' deliveries/s and commit → arrival p50/p99, and ratios;
//! * `steady`: 1 receiver, `--rate` (500) changes/s one per transaction for
//!   `--seconds` (10), on a fresh store and on one already holding
//!   `--histories` (0,1000000) finished deliveries with their attempts
//!   (stamped yesterday, in a partition of the past week),
//!   `--passes` (2) runs each: PostgreSQL CPU per delivery under a trickle;
//!   `--modes triggers,logical` (default `triggers`) runs it for each
//!   capture mode (the logical one on a server with `wal_level = logical`:
//!   `CHANGEWIRE_TEST_PG_LOGICAL`, see `tests/support`);
//! * `processes`: 1 receiver, `--process-changes` (20,000) changes delivered
//!   by 1 and by 2 gateway processes sharing the database.
//!
//! For every run: deliveries/s at the sink; CPU seconds of the gateway
//! process(es) and of every `postgres` process on the machine (utime + stime
//! from `/proc`, before and after the window; backends that exit in between
//! are lost and counted as such, backends that start in between count from
//! zero; the benchmark's own writer connection is reported apart), each per
//! 1,000 deliveries; row writes per delivery (`n_tup_ins + n_tup_upd +
//! n_tup_del` of `pg_stat_user_tables` in the run's database, by table, the
//! application's own `runs` apart; read while no gateway writes, at the
//! window's start or, for `backlog`, before the gateway starts, and after the
//! gateways stopped, over every delivery in between) and WAL bytes per
//! delivery (the whole cluster's). Then a `summary` table.
//!
//! Every load is bounded in count and time and sent only to 127.0.0.1.

#![allow(missing_docs)] // a benchmark binary
#![allow(clippy::unwrap_used)] // a benchmark: panicking on setup failure is the point

#[path = "common/mod.rs"]
mod common;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use changewire_e2e::GatewayProcess;
use common::{
    PAYLOAD, Sink, app_db, app_db_logical, arg, arg_list, bench_args, binary_missing, clk_tck,
    cpu_ticks, gateway_process, now_ns, postgres_ticks, record, release_binary, round, run_bench,
    start_sink, start_sink_aside, wait_count, write_backlog, write_rows_on,
};
use futures_util::StreamExt as _;
use serde_json::{Value, json};
use sqlx::{Connection, PgConnection};

/// How long stats and processes get to settle before a window opens and
/// after the gateways stopped (backends flush table statistics at most once
/// a second, and on exit).
const SETTLE: Duration = Duration::from_millis(1500);

/// Row writes by table in the current database, and the WAL position.
async fn db_counters(conn: &mut PgConnection) -> (BTreeMap<String, i64>, u64) {
    sqlx::query("SELECT pg_stat_clear_snapshot()")
        .execute(&mut *conn)
        .await
        .unwrap();
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT schemaname || '.' || relname, (n_tup_ins + n_tup_upd + n_tup_del)::bigint FROM pg_stat_user_tables",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    let lsn: String = sqlx::query_scalar("SELECT pg_current_wal_lsn()::text")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    let (hi, lo) = lsn.split_once('/').unwrap_or(("0", "0"));
    let wal =
        (u64::from_str_radix(hi, 16).unwrap_or(0) << 32) + u64::from_str_radix(lo, 16).unwrap_or(0);
    (rows.into_iter().collect(), wal)
}

/// What each `postgres` process is, for the CPU breakdown: its backend type,
/// and for a client backend the start of the last statement it ran (a
/// gateway pool runs one kind of statement).
async fn process_labels(conn: &mut PgConnection) -> HashMap<u32, String> {
    let rows: Vec<(i32, String, String)> = sqlx::query_as(
        "SELECT pid, coalesce(backend_type, ''), \
         CASE WHEN backend_type = 'client backend' THEN regexp_replace(left(query, 48), '\\s+', ' ', 'g') ELSE '' END \
         FROM pg_stat_activity",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap_or_default();
    rows.into_iter()
        .map(|(pid, kind, query)| {
            let label = if query.is_empty() {
                kind
            } else {
                format!("{kind}: {query}")
            };
            (pid as u32, label)
        })
        .collect()
}

/// The counters at the start of a measured window.
struct Window {
    began: Instant,
    delivered: u64,
    gateway: Vec<u64>,
    postgres: HashMap<u32, u64>,
    db: DbStart,
}

/// The database counters where row writes start being counted (while no
/// gateway writes: before they start, or while they wait for work), and
/// the deliveries at the sink then.
struct DbStart {
    tables: BTreeMap<String, i64>,
    wal: u64,
    delivered: u64,
}

async fn db_start(stats: &mut PgConnection, sink: &Sink) -> DbStart {
    let (tables, wal) = db_counters(stats).await;
    DbStart {
        tables,
        wal,
        delivered: sink.total(),
    }
}

/// The CPU counters at the end of a window.
struct WindowEnd {
    seconds: f64,
    delivered: u64,
    gateway: Vec<u64>,
    postgres: HashMap<u32, u64>,
}

/// Each gateway process's CPU ticks.
fn gateway_ticks(gws: &[GatewayProcess]) -> Vec<u64> {
    gws.iter()
        .map(|g| cpu_ticks(g.pid()).unwrap_or(0))
        .collect()
}

fn open_window(db: DbStart, gws: &[GatewayProcess], sink: &Sink) -> Window {
    Window {
        began: Instant::now(),
        delivered: sink.total(),
        gateway: gateway_ticks(gws),
        postgres: postgres_ticks(),
        db,
    }
}

fn close_window(w: &Window, gws: &[GatewayProcess], sink: &Sink) -> WindowEnd {
    WindowEnd {
        seconds: w.began.elapsed().as_secs_f64(),
        delivered: sink.total(),
        gateway: gateway_ticks(gws),
        postgres: postgres_ticks(),
    }
}

/// Stops the gateways (SIGTERM; in-flight attempts finish) and the writer,
/// lets statistics settle, and reports the window.
async fn report(
    w: Window,
    end: WindowEnd,
    gws: Vec<GatewayProcess>,
    writer: Option<(PgConnection, u32)>,
    stats: &mut PgConnection,
    sink: &Sink,
) -> Value {
    let processes = gws.len();
    let labels = process_labels(stats).await;
    for mut gw in gws {
        if gw.sigterm(Duration::from_secs(20)).is_none() {
            gw.kill9();
        }
    }
    let writer_pid = match writer {
        Some((conn, pid)) => {
            let _ = conn.close().await;
            Some(pid)
        }
        None => None,
    };
    tokio::time::sleep(SETTLE).await;
    let (tables, wal) = db_counters(stats).await;
    let written_n = (sink.total() - w.db.delivered).max(1);
    let written = written_n as f64;

    let tck = clk_tck();
    let delivered = end.delivered - w.delivered;
    let per_1k = |ticks: u64| round(ticks as f64 / tck / delivered.max(1) as f64 * 1000.0, 4);
    let by_process: Vec<u64> = (end.gateway.iter().zip(&w.gateway))
        .map(|(b, a)| b.saturating_sub(*a))
        .collect();
    let gateway: u64 = by_process.iter().sum();
    let by_process: Vec<f64> = by_process
        .iter()
        .map(|t| round(*t as f64 / tck, 2))
        .collect();
    let delta = |pid: &u32, t: &u64| t.saturating_sub(w.postgres.get(pid).copied().unwrap_or(0));
    let postgres: u64 = end.postgres.iter().map(|(p, t)| delta(p, t)).sum();
    let app_writer: u64 = writer_pid
        .and_then(|p| end.postgres.get(&p).map(|t| delta(&p, t)))
        .unwrap_or(0);
    let mut by_kind: BTreeMap<String, u64> = BTreeMap::new();
    for (pid, t) in &end.postgres {
        if Some(*pid) == writer_pid {
            continue;
        }
        let label = labels
            .get(pid)
            .cloned()
            .unwrap_or_else(|| "(gone or unnamed)".into());
        *by_kind.entry(label).or_default() += delta(pid, t);
    }
    let by_kind: serde_json::Map<String, Value> = by_kind
        .into_iter()
        .filter(|(_, t)| *t > 0)
        .map(|(k, t)| {
            (
                k,
                json!(round(t as f64 / tck / delivered.max(1) as f64 * 1000.0, 4)),
            )
        })
        .collect();
    let exited = w
        .postgres
        .keys()
        .filter(|p| !end.postgres.contains_key(p))
        .count();

    let mut by_table = serde_json::Map::new();
    let (mut total, mut app) = (0i64, 0i64);
    for (name, n) in &tables {
        let d = n - w.db.tables.get(name).copied().unwrap_or(0);
        total += d;
        if name == "public.runs" {
            app += d;
        }
        if d != 0 {
            by_table.insert(name.clone(), json!(round(d as f64 / written, 3)));
        }
    }
    let timed = !sink.latencies_us.lock().unwrap().is_empty();
    let (p50, p99) = sink.latency_ms();
    let (p50, p99) = (timed.then_some(p50), timed.then_some(p99));
    json!({
        "gateway_processes": processes,
        "deliveries": delivered, "seconds": round(end.seconds, 3),
        "deliveries_per_sec": (delivered as f64 / end.seconds).round(),
        "gateway_cpu_seconds": round(gateway as f64 / tck, 2),
        "gateway_cpu_seconds_by_process": by_process,
        "postgres_cpu_seconds": round(postgres as f64 / tck, 2),
        "postgres_cpu_seconds_app_writer": round(app_writer as f64 / tck, 2),
        "gateway_cpu_s_per_1k_deliveries": per_1k(gateway),
        "postgres_cpu_s_per_1k_deliveries": per_1k(postgres),
        "postgres_cpu_s_per_1k_deliveries_without_app_writer": per_1k(postgres - app_writer),
        "postgres_cpu_s_per_1k_deliveries_by_process": by_kind,
        "postgres_processes_seen": end.postgres.len(),
        "postgres_processes_exited_uncounted": exited,
        "deliveries_for_writes": written_n,
        "db_writes_per_delivery": round(total as f64 / written, 3),
        "db_writes_per_delivery_app_rows": round(app as f64 / written, 3),
        "db_writes_per_delivery_by_table": by_table,
        "wal_bytes_per_delivery": (wal.saturating_sub(w.db.wal) as f64 / written).round(),
        "latency_ms_p50": p50, "latency_ms_p99": p99,
    })
}

/// Registers `n` receivers (`http://addr/r0`…) for RUNS/CREATE, 16 at a time.
async fn register_receivers(gw: &GatewayProcess, addr: SocketAddr, n: usize, receiver: &Value) {
    futures_util::stream::iter(0..n)
        .map(|r| {
            let url = format!("http://{addr}/r{r}");
            async move { gw.register(&url, "RUNS", "CREATE", receiver.clone()).await }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
}

/// Starts `processes` gateways on a fresh database, registers `receivers`
/// receivers on the sink, commits `changes` rows with `payload` bytes each,
/// and measures until the sink's `count` reaches `expect`.
async fn drain(
    (addr, sink): (SocketAddr, Arc<Sink>),
    processes: usize,
    receivers: usize,
    receiver: Value,
    changes: i64,
    payload: usize,
    expect: u64,
) -> Value {
    if let Some(skipped) = binary_missing() {
        return skipped;
    }
    let db = app_db().await;
    // Register through a gateway of its own, stopped again: its backends
    // exit and flush their table statistics, so none of the setup's writes
    // land in the window.
    let mut setup_gw = gateway_process(&db.url, true, &[]).await;
    let setup = Instant::now();
    register_receivers(&setup_gw, addr, receivers, &receiver).await;
    let registration = setup.elapsed().as_secs_f64();
    if setup_gw.sigterm(Duration::from_secs(20)).is_none() {
        setup_gw.kill9();
    }
    let mut gws = Vec::new();
    for _ in 0..processes {
        gws.push(gateway_process(&db.url, true, &[]).await);
    }
    let mut writer = PgConnection::connect(&db.url).await.unwrap();
    let writer_pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut writer)
        .await
        .unwrap();
    let mut stats = PgConnection::connect(&db.url).await.unwrap();
    tokio::time::sleep(SETTLE).await;
    let db0 = db_start(&mut stats, &sink).await;
    let w = open_window(db0, &gws, &sink);
    let batch = if payload > 8192 { 50 } else { 500 };
    write_rows_on(&mut writer, 1, changes, batch, None, payload).await;
    let committed = w.began.elapsed().as_secs_f64();
    wait_count(&sink, expect, Duration::from_secs(600)).await;
    let end = close_window(&w, &gws, &sink);
    let mut out = report(
        w,
        end,
        gws,
        Some((writer, writer_pid as u32)),
        &mut stats,
        &sink,
    )
    .await;
    let body = sink.bytes.load(std::sync::atomic::Ordering::Relaxed)
        / sink.count.load(std::sync::atomic::Ordering::Relaxed).max(1);
    out["receivers"] = json!(receivers);
    out["changes"] = json!(changes);
    out["mean_body_bytes"] = json!(body);
    out["commit_seconds"] = json!(round(committed, 3));
    out["registration_seconds"] = json!(round(registration, 3));
    out
}

async fn fanout(receivers: usize, deliveries: i64) -> Value {
    let changes = (deliveries / receivers as i64).max(1);
    let expect = changes as u64 * receivers as u64;
    drain(
        start_sink(false).await,
        1,
        receivers,
        json!({}),
        changes,
        PAYLOAD,
        expect,
    )
    .await
}

async fn payload(changes: i64, bytes: usize) -> Value {
    let receiver = json!({"maxConcurrency": 64});
    drain(
        start_sink(false).await,
        1,
        1,
        receiver,
        changes,
        bytes,
        changes as u64,
    )
    .await
}

async fn processes(processes: usize, changes: i64) -> Value {
    let receiver = json!({"maxConcurrency": 64});
    drain(
        start_sink(false).await,
        processes,
        1,
        receiver,
        changes,
        PAYLOAD,
        changes as u64,
    )
    .await
}

/// 10 receivers, the last (`/r9`) answering after `slow_ms`: the 9 others'
/// deliveries/s and latency.
async fn slow_receiver(changes: i64, slow_ms: u64) -> Value {
    let sink = start_sink_aside("/r9", Duration::from_millis(slow_ms)).await;
    let aside = sink.1.clone();
    let mut out = drain(sink, 1, 10, json!({}), changes, PAYLOAD, changes as u64 * 9).await;
    if out.get("skipped").is_none() {
        let healthy = changes as f64 * 9.0;
        let seconds = out["seconds"].as_f64().unwrap_or(1.0);
        out["slow_ms"] = json!(slow_ms);
        out["healthy_deliveries"] = json!(healthy);
        out["healthy_deliveries_per_sec"] = json!((healthy / seconds).round());
        out["tenth_receiver_answered"] =
            json!(aside.aside_count.load(std::sync::atomic::Ordering::Relaxed));
    }
    out
}

/// `pending` deliveries written before the gateway starts; measured from
/// the first delivery for `window` or until drained.
async fn backlog(pending: i64, window: Duration) -> Value {
    if let Some(skipped) = binary_missing() {
        return skipped;
    }
    let db = app_db().await;
    let (addr, sink) = start_sink(false).await;
    let began = Instant::now();
    write_backlog(
        &db.url,
        &format!("http://{addr}/r0"),
        json!({"maxConcurrency": 64}),
        pending,
        PAYLOAD,
    )
    .await;
    let mut stats = PgConnection::connect(&db.url).await.unwrap();
    sqlx::raw_sql("ANALYZE changewire.changes; ANALYZE changewire.deliveries")
        .execute(&mut stats)
        .await
        .unwrap();
    let setup = began.elapsed().as_secs_f64();
    tokio::time::sleep(SETTLE).await;
    // Row writes are counted from before the gateway starts (the window
    // opens while it is busy, with statistics not yet flushed), CPU from the
    // first delivery.
    let db0 = db_start(&mut stats, &sink).await;
    let gws = vec![gateway_process(&db.url, true, &[]).await];
    let started = Instant::now();
    while sink.total() == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no delivery in 120 s"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let to_first = started.elapsed().as_secs_f64();
    let w = open_window(db0, &gws, &sink);
    while sink.total() < pending as u64 && w.began.elapsed() < window {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let end = close_window(&w, &gws, &sink);
    let drained = end.delivered >= pending as u64;
    let mut out = report(w, end, gws, None, &mut stats, &sink).await;
    out["backlog"] = json!(pending);
    out["setup_seconds"] = json!(round(setup, 1));
    out["start_to_first_delivery_seconds"] = json!(round(to_first, 3));
    out["drained_in_window"] = json!(drained);
    out
}

/// A steady `rate` changes/s, one row per transaction, for `secs` seconds,
/// to one receiver, on a fresh store or on one that already holds `history`
/// finished deliveries (written with SQL before the gateway starts, the way
/// a past burst leaves them); PostgreSQL CPU per delivery is the figure.
async fn steady(rate: u64, secs: u64, history: i64, mode: &str) -> Value {
    if let Some(skipped) = binary_missing() {
        return skipped;
    }
    let (db, env) = if mode == "logical" {
        let env = vec![("CHANGEWIRE_CAPTURE_OPTIONS__MODE", "logical".to_string())];
        (app_db_logical().await, env)
    } else {
        (app_db().await, Vec::new())
    };
    let (addr, sink) = start_sink(false).await;
    let mut setup_gw = gateway_process(&db.url, true, &env).await;
    register_receivers(&setup_gw, addr, 1, &json!({})).await;
    if setup_gw.sigterm(Duration::from_secs(20)).is_none() {
        setup_gw.kill9();
    }
    let mut stats = PgConnection::connect(&db.url).await.unwrap();
    if history > 0 {
        // The history is yesterday's, in a partition of the past week (the
        // gateway makes day partitions from today on): where a past burst
        // lies on a store that has run for a while.
        let today = (now_ns() / 1_000_000).div_euclid(86_400_000) * 86_400_000;
        let week_ago = today - 7 * 86_400_000;
        let now_ms = today - 86_400_000;
        for table in ["changes", "deliveries", "attempts"] {
            let fillfactor = if table == "deliveries" {
                " WITH (fillfactor = 85)"
            } else {
                ""
            };
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "CREATE TABLE changewire.{table}_past_week PARTITION OF changewire.{table} \
                 FOR VALUES FROM ({week_ago}) TO ({today}){fillfactor}"
            )))
            .execute(&mut stats)
            .await
            .unwrap();
        }
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "INSERT INTO changewire.changes (source, source_key, resource, action, row_id, transaction_id, occurred_at, new, created_at)
             SELECT 'history', g::text, 'RUNS', 'CREATE', g::text, g, {now_ms}, '{{\"id\": ' || g || '}}', {now_ms} FROM generate_series(1, {history}) g;
             INSERT INTO changewire.deliveries (change_id, subscription_id, receiver_id, status, attempts, next_attempt_at, created_at, updated_at, completed_at)
             SELECT id, 1, (SELECT min(id) FROM changewire.receivers), 'succeeded', 1, {now_ms}, {now_ms}, {now_ms}, {now_ms}
             FROM changewire.changes WHERE source = 'history';
             INSERT INTO changewire.attempts (delivery_id, attempt, started_at, duration_ms, request_url, request_headers, response_status, outcome)
             SELECT id, 1, {now_ms}, 1, 'http://127.0.0.1/', '{{}}', 200, 'succeeded' FROM changewire.deliveries;"
        )))
        .execute(&mut stats)
        .await
        .unwrap();
        if mode == "logical" {
            // The history's few GB of WAL are the setup's, not the trickle's:
            // the measured gateway makes a new slot past them.
            sqlx::raw_sql(
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = current_database()",
            )
            .execute(&mut stats)
            .await
            .unwrap();
        }
    }
    let gws = vec![gateway_process(&db.url, true, &env).await];
    let mut writer = PgConnection::connect(&db.url).await.unwrap();
    let writer_pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut writer)
        .await
        .unwrap();
    tokio::time::sleep(SETTLE).await;
    let db0 = db_start(&mut stats, &sink).await;
    let w = open_window(db0, &gws, &sink);
    let changes = (rate * secs) as i64;
    write_rows_on(&mut writer, 1, changes, 1, Some(rate), PAYLOAD).await;
    wait_count(&sink, changes as u64, Duration::from_secs(120)).await;
    let end = close_window(&w, &gws, &sink);
    let mut out = report(
        w,
        end,
        gws,
        Some((writer, writer_pid as u32)),
        &mut stats,
        &sink,
    )
    .await;
    out["rate_per_sec"] = json!(rate);
    out["history_deliveries"] = json!(history);
    out["capture_mode"] = json!(mode);
    out
}

/// One row of the summary table.
fn summary_row(run: &str, v: &Value) -> Value {
    json!({
        "run": run,
        "deliveries_per_sec": v["deliveries_per_sec"],
        "gateway_cpu_s_per_1k": v["gateway_cpu_s_per_1k_deliveries"],
        "postgres_cpu_s_per_1k": v["postgres_cpu_s_per_1k_deliveries"],
        "postgres_cpu_s_per_1k_without_app_writer": v["postgres_cpu_s_per_1k_deliveries_without_app_writer"],
        "db_writes_per_delivery": v["db_writes_per_delivery"],
        "app_rows_per_delivery": v["db_writes_per_delivery_app_rows"],
        "wal_bytes_per_delivery": v["wal_bytes_per_delivery"],
    })
}

/// Records a run and adds it to the summary.
fn keep(
    out: &mut serde_json::Map<String, Value>,
    summary: &mut Vec<Value>,
    key: &str,
    value: Value,
) {
    if value.get("skipped").is_none() {
        summary.push(summary_row(key, &value));
    }
    record(out, key, value);
}

/// `b / a` of a key in two runs.
fn ratio(a: &Value, b: &Value, key: &str) -> f64 {
    round(
        b[key].as_f64().unwrap_or(0.0) / a[key].as_f64().unwrap_or(1.0).max(1e-9),
        2,
    )
}

fn main() {
    let (args, what) = bench_args();
    run_bench(|mut out| async move {
        let all = what == "all";
        let mut summary = Vec::new();
        record(
            &mut out,
            "setup",
            json!({"binary": release_binary().display().to_string(), "clk_tck": clk_tck(),
                   "gateway": "changewire serve (own process), store = capture = a fresh database, delivery poll 20 ms, other settings default",
                   "postgres_cpu": "every process named postgres on the machine, so other activity on the server counts too",
                   "wal": "the whole cluster's WAL"}),
        );
        if all || what == "fanout" {
            let deliveries = arg(&args, "--deliveries", 30_000);
            for r in arg_list(&args, "--receivers", &[1, 10, 100, 1000]) {
                let run = fanout(r.max(1) as usize, deliveries).await;
                keep(&mut out, &mut summary, &format!("fanout_{r}"), run);
            }
        }
        if all || what == "payload" {
            let small = payload(arg(&args, "--payload-changes", 10_000), PAYLOAD).await;
            keep(&mut out, &mut summary, "payload_1kb", small);
            let kb = arg(&args, "--large-kb", 64);
            let bytes = (kb as usize * 1024).saturating_sub(300);
            let large = payload(arg(&args, "--large-changes", 2_000), bytes).await;
            keep(&mut out, &mut summary, &format!("payload_{kb}kb"), large);
        }
        if all || what == "backlog" {
            let window = Duration::from_secs(arg(&args, "--window", 8) as u64);
            for n in arg_list(&args, "--backlogs", &[10_000, 100_000, 1_000_000]) {
                let run = backlog(n, window).await;
                keep(&mut out, &mut summary, &format!("backlog_{n}"), run);
            }
        }
        if all || what == "steady" {
            let rate = arg(&args, "--rate", 500) as u64;
            let secs = arg(&args, "--seconds", 10) as u64;
            let modes: Vec<&str> = match args
                .iter()
                .position(|a| a == "--modes")
                .and_then(|i| args.get(i + 1))
            {
                Some(list) => list.split(',').collect(),
                None => vec!["triggers"],
            };
            for mode in modes {
                for history in arg_list(&args, "--histories", &[0, 1_000_000]) {
                    // Back to back, as the issue measured: the second run on the
                    // same kind of store shows whether the cost grows.
                    for pass in 1..=arg(&args, "--passes", 2) {
                        let run = steady(rate, secs, history, mode).await;
                        keep(
                            &mut out,
                            &mut summary,
                            &format!("steady_{rate}_{mode}_history_{history}_pass_{pass}"),
                            run,
                        );
                    }
                }
            }
        }
        if all || what == "slow_receiver" {
            let changes = arg(&args, "--slow-changes", 2_000);
            let slow_ms = arg(&args, "--slow-ms", 1_000) as u64;
            let healthy = slow_receiver(changes, 0).await;
            let slow = slow_receiver(changes, slow_ms).await;
            if slow.get("skipped").is_none() {
                summary.push(summary_row("slow_receiver_all_healthy", &healthy));
                summary.push(summary_row("slow_receiver_one_slow", &slow));
            }
            let value = json!({
                "healthy_deliveries_per_sec_ratio": ratio(&healthy, &slow, "healthy_deliveries_per_sec"),
                "healthy_p50_ratio": ratio(&healthy, &slow, "latency_ms_p50"),
                "healthy_p99_ratio": ratio(&healthy, &slow, "latency_ms_p99"),
                "all_healthy": healthy, "one_slow": slow,
            });
            record(&mut out, "slow_receiver", value);
        }
        if all || what == "processes" {
            let changes = arg(&args, "--process-changes", 20_000);
            let one = processes(1, changes).await;
            let two = processes(2, changes).await;
            if two.get("skipped").is_none() {
                summary.push(summary_row("processes_1", &one));
                summary.push(summary_row("processes_2", &two));
            }
            let value = json!({
                "deliveries_per_sec_ratio": ratio(&one, &two, "deliveries_per_sec"),
                "gateway_cpu_per_1k_ratio": ratio(&one, &two, "gateway_cpu_s_per_1k_deliveries"),
                "postgres_cpu_per_1k_ratio": ratio(&one, &two, "postgres_cpu_s_per_1k_deliveries"),
                "one_process": one, "two_processes": two,
            });
            record(&mut out, "processes", value);
        }
        record(&mut out, "summary", Value::Array(summary));
        out
    });
}
