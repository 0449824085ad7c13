//! Helpers shared by the end-to-end benchmarks (`delivery`, `scaling`,
//! `console_live`): the counting sink, the `runs` application table and its
//! writer, the `changewire` binary as a child process, a backlog written
//! straight into the store, CPU ticks from `/proc`, percentiles, arguments
//! and output.
//!
//! Every load goes to 127.0.0.1 and every loop is bounded in count and time.

#![allow(dead_code)] // each benchmark uses a subset

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use changewire_e2e::GatewayProcess;
use changewire_test_support::gateway::TestGateway;
use changewire_test_support::pg::TestDatabase;
use serde_json::{Value, json};
use sqlx::Connection;

/// Bytes of the `payload` column that make a ~1 KB delivery body.
pub(crate) const PAYLOAD: usize = 700;

pub(crate) fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// A sink that counts requests and records commit→arrival latency (from
/// `"t": <ns>` in the body). Requests to the `aside` path, if set, are
/// answered after its delay and counted in `aside_count` only (neither in
/// `count` nor in the latencies).
#[derive(Default)]
pub(crate) struct Sink {
    pub(crate) count: AtomicU64,
    pub(crate) bytes: AtomicU64,
    pub(crate) latencies_us: Mutex<Vec<u64>>,
    pub(crate) hang: AtomicBool,
    pub(crate) aside: OnceLock<(String, Duration)>,
    pub(crate) aside_count: AtomicU64,
}

impl Sink {
    /// Every request answered or hanging, `aside` ones included.
    pub(crate) fn total(&self) -> u64 {
        self.count.load(Ordering::Relaxed) + self.aside_count.load(Ordering::Relaxed)
    }

    /// (p50, p99) of the recorded latencies, in milliseconds.
    pub(crate) fn latency_ms(&self) -> (f64, f64) {
        let mut lat = self.latencies_us.lock().unwrap().clone();
        (
            percentile(&mut lat, 0.5) as f64 / 1000.0,
            percentile(&mut lat, 0.99) as f64 / 1000.0,
        )
    }
}

fn extract_t(body: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(body).ok()?;
    let at = text.find("\"t\":")? + 4;
    let digits: String = text[at..]
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

async fn sink_handler(
    axum::extract::State(sink): axum::extract::State<Arc<Sink>>,
    uri: axum::http::Uri,
    body: Bytes,
) -> &'static str {
    if let Some((path, delay)) = sink.aside.get()
        && uri.path() == path
    {
        tokio::time::sleep(*delay).await;
        sink.aside_count.fetch_add(1, Ordering::Relaxed);
        return "ok";
    }
    if sink.hang.load(Ordering::Relaxed) {
        sink.count.fetch_add(1, Ordering::Relaxed);
        std::future::pending::<()>().await;
    }
    if let Some(t) = extract_t(&body) {
        let us = ((now_ns() - t).max(0) / 1000) as u64;
        if let Ok(mut l) = sink.latencies_us.lock() {
            l.push(us);
        }
    }
    sink.bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
    sink.count.fetch_add(1, Ordering::Relaxed);
    "ok"
}

/// A loopback sink that answers 200 at once (or never, with `hang`).
pub(crate) async fn start_sink(hang: bool) -> (SocketAddr, Arc<Sink>) {
    let sink = Sink::default();
    sink.hang.store(hang, Ordering::Relaxed);
    serve_sink(sink).await
}

/// A loopback sink where requests to `path` are answered after `delay`.
pub(crate) async fn start_sink_aside(path: &str, delay: Duration) -> (SocketAddr, Arc<Sink>) {
    let sink = Sink::default();
    let _ = sink.aside.set((path.to_string(), delay));
    serve_sink(sink).await
}

async fn serve_sink(sink: Sink) -> (SocketAddr, Arc<Sink>) {
    let sink = Arc::new(sink);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new()
        .fallback(axum::routing::post(sink_handler))
        .with_state(sink.clone());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, sink)
}

/// The median (of an even count, the mean of the middle two); 0 for none.
pub(crate) fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n == 0 {
        return 0.0;
    }
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

pub(crate) fn percentile(values: &mut [u64], p: f64) -> u64 {
    if values.is_empty() {
        return 0;
    }
    values.sort_unstable();
    let idx = ((values.len() as f64 - 1.0) * p).round() as usize;
    values[idx]
}

const SCHEMA: &str =
    "CREATE TABLE runs (id BIGINT PRIMARY KEY, status TEXT NOT NULL, payload TEXT, t BIGINT)";

/// A fresh database holding the application's `runs` table.
pub(crate) async fn app_db() -> TestDatabase {
    let db = TestDatabase::create().await;
    let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
    sqlx::raw_sql(SCHEMA).execute(&mut conn).await.unwrap();
    db
}

/// As [`app_db`], on a server with `wal_level = logical`, with `runs` set
/// up for the logical capture mode (`REPLICA IDENTITY FULL`).
pub(crate) async fn app_db_logical() -> TestDatabase {
    let db = TestDatabase::create_logical().await;
    let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
    sqlx::raw_sql(SCHEMA).execute(&mut conn).await.unwrap();
    sqlx::raw_sql("ALTER TABLE runs REPLICA IDENTITY FULL")
        .execute(&mut conn)
        .await
        .unwrap();
    db
}

/// Inserts `n` ~1 KB rows in transactions of `batch`, optionally paced to `rate` rows/s.
pub(crate) async fn write_rows(url: &str, start: i64, n: i64, batch: i64, rate: Option<u64>) {
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    write_rows_on(&mut conn, start, n, batch, rate, PAYLOAD).await;
}

/// As [`write_rows`], on a given connection, with `payload` bytes in each row.
pub(crate) async fn write_rows_on(
    conn: &mut sqlx::PgConnection,
    start: i64,
    n: i64,
    batch: i64,
    rate: Option<u64>,
    payload: usize,
) {
    let payload = "x".repeat(payload);
    let began = Instant::now();
    let mut i = 0;
    while i < n {
        let ids: Vec<i64> = (start + i..start + (i + batch).min(n)).collect();
        sqlx::query("INSERT INTO runs (id, status, payload, t) SELECT x, 'queued', $2, $3 FROM unnest($1::bigint[]) AS x")
            .bind(&ids)
            .bind(&payload)
            .bind(now_ns())
            .execute(&mut *conn)
            .await
            .unwrap();
        i += ids.len() as i64;
        if let Some(rate) = rate {
            let due = began + Duration::from_secs_f64(i as f64 / rate as f64);
            tokio::time::sleep_until(due.into()).await;
        }
    }
}

/// Waits until the sink has answered `target` requests (`count`), at most `limit`.
pub(crate) async fn wait_count(sink: &Sink, target: u64, limit: Duration) -> Duration {
    let began = Instant::now();
    while sink.count.load(Ordering::Relaxed) < target {
        assert!(
            began.elapsed() < limit,
            "only {} of {target} delivered in {limit:?}",
            sink.count.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    began.elapsed()
}

/// `target/release/changewire`, next to the benchmark's `deps/` folder.
pub(crate) fn release_binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent()
        .and_then(|d| d.parent())
        .unwrap()
        .join("changewire")
}

/// `{"skipped": …}` when the release binary has not been built.
pub(crate) fn binary_missing() -> Option<Value> {
    let bin = release_binary();
    (!bin.exists()).then(|| {
        json!({"skipped": format!("{} not built: cargo build --release -p changewire-gateway", bin.display())})
    })
}

/// `changewire serve` as a child process on `store` (admin token, loopback
/// delivery allowed, delivery polling every 20 ms: see `changewire_e2e`),
/// capturing the `runs` table of the same database as `RUNS` when `capture`
/// is set; `extra` are further `CHANGEWIRE_*` settings.
pub(crate) async fn gateway_process(
    store: &str,
    capture: bool,
    extra: &[(&str, String)],
) -> GatewayProcess {
    let mut env = vec![
        ("CHANGEWIRE_STORE", store.to_string()),
        ("CHANGEWIRE_LOG__LEVEL", "error".to_string()),
    ];
    if capture {
        env.push(("CHANGEWIRE_CAPTURE", store.to_string()));
        env.push(("CHANGEWIRE_RESOURCES", "RUNS=runs".to_string()));
    }
    env.extend(extra.iter().cloned());
    GatewayProcess::start(&env).await
}

/// Writes `pending` changes (with `payload` bytes of `new.payload`) and
/// their pending deliveries straight into the store at `db_url`, for one
/// receiver of `receiver_url` subscribed to RUNS/CREATE (registered by an
/// in-process gateway that is stopped again). Returns the setup time.
pub(crate) async fn write_backlog(
    db_url: &str,
    receiver_url: &str,
    receiver: Value,
    pending: i64,
    payload: usize,
) -> Duration {
    let mut gw = TestGateway::start_with_store(
        db_url.to_string(),
        None,
        tempfile::tempdir().unwrap(),
        "[log]\nlevel = \"error\"",
    )
    .await;
    let rid: i64 = gw
        .receiver_with(receiver_url, &[("RUNS", "CREATE")], receiver)
        .await
        .0
        .parse()
        .unwrap();
    gw.stop().await;
    let mut conn = sqlx::PgConnection::connect(db_url).await.unwrap();
    let began = Instant::now();
    let now_ms = now_ns() / 1_000_000;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "INSERT INTO changewire.changes (source, source_key, resource, action, row_id, transaction_id, occurred_at, new, created_at)
         SELECT 'bench', g::text, 'RUNS', 'CREATE', g::text, g, {now_ms}, '{{\"id\": ' || g || ', \"status\": \"queued\", \"payload\": \"{x}\"}}', {now_ms} FROM generate_series(1, {pending}) g;
         INSERT INTO changewire.deliveries (change_id, subscription_id, receiver_id, status, next_attempt_at, created_at, updated_at)
         SELECT id, 1, {rid}, 'pending', 0, {now_ms}, {now_ms} FROM changewire.changes WHERE source = 'bench';",
        x = "x".repeat(payload)
    )))
    .execute(&mut conn)
    .await
    .unwrap();
    let _ = conn.close().await;
    began.elapsed()
}

/// Clock ticks per second, the unit of `/proc/<pid>/stat`.
pub(crate) fn clk_tck() -> f64 {
    static TCK: OnceLock<f64> = OnceLock::new();
    *TCK.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// utime + stime of a process (all its threads), in clock ticks.
pub(crate) fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command start at field 3 (state);
    // utime and stime are fields 14 and 15.
    let fields: Vec<&str> = stat
        .get(stat.rfind(')')? + 1..)?
        .split_whitespace()
        .collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// Every `postgres` process on the machine and its CPU ticks.
pub(crate) fn postgres_ticks() -> HashMap<u32, u64> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return HashMap::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim() == "postgres")
        })
        .filter_map(|pid| Some((pid, cpu_ticks(pid)?)))
        .collect()
}

/// Busy clock ticks of the whole machine (every CPU: all but idle and
/// iowait), from `/proc/stat`.
pub(crate) fn machine_busy_ticks() -> u64 {
    std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|stat| {
            let fields: Vec<u64> = stat
                .lines()
                .next()?
                .split_whitespace()
                .skip(1)
                .take(8)
                .filter_map(|v| v.parse().ok())
                .collect();
            // user nice system idle iowait irq softirq steal
            Some(fields.iter().sum::<u64>() - fields.get(3)? - fields.get(4)?)
        })
        .unwrap_or(0)
}

pub(crate) fn arg(args: &[String], name: &str, default: i64) -> i64 {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A comma-separated list of integers, e.g. `--receivers 1,10,100`.
pub(crate) fn arg_list(args: &[String], name: &str, default: &[i64]) -> Vec<i64> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| v.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .filter(|v: &Vec<i64>| !v.is_empty())
        .unwrap_or_else(|| default.to_vec())
}

/// The benchmark's arguments (without cargo's `--bench`) and the scenario
/// asked for (`all` by default).
pub(crate) fn bench_args() -> (Vec<String>, String) {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let what = args.first().cloned().unwrap_or_else(|| "all".into());
    (args, what)
}

/// Runs the scenarios on a multi-threaded runtime, with the machine first,
/// and prints everything as one JSON object to stdout at the end.
pub(crate) fn run_bench<F, Fut>(scenarios: F)
where
    F: FnOnce(serde_json::Map<String, Value>) -> Fut,
    Fut: std::future::Future<Output = serde_json::Map<String, Value>>,
{
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut out = serde_json::Map::new();
    let machine =
        json!({"cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)});
    record(&mut out, "machine", machine);
    let out = rt.block_on(scenarios(out));
    println!(
        "{}",
        serde_json::to_string_pretty(&Value::Object(out)).unwrap()
    );
}

/// Keeps a scenario's result and prints it to stderr at once, so a later
/// scenario's failure does not lose the figures already measured.
pub(crate) fn record(out: &mut serde_json::Map<String, Value>, key: &str, value: Value) {
    eprintln!("{key}: {value}");
    out.insert(key.to_string(), value);
}

/// Rounds to `digits` decimals.
pub(crate) fn round(v: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (v * f).round() / f
}

/// pgbench-style: `clients` connections doing single-row UPDATE transactions for `secs`.
pub(crate) async fn update_tps(
    url: &str,
    sql: &'static str,
    clients: usize,
    secs: u64,
    rows: i64,
) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (url, done) = (url.to_string(), done.clone());
        tasks.push(tokio::spawn(async move {
            let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
            let mut i = c as i64 * 7919;
            while Instant::now() < deadline {
                sqlx::query(sql)
                    .bind(i % rows + 1)
                    .bind(i % 10_001 - 5_000)
                    .execute(&mut conn)
                    .await
                    .unwrap();
                done.fetch_add(1, Ordering::Relaxed);
                i += 104_729;
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    done.load(Ordering::Relaxed) as f64 / secs as f64
}
