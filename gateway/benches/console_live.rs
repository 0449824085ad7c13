//! What an open console costs delivery: deliveries/s of the same bounded
//! burst without and with console browsers polling, alternated in one run.
//!
//! ```text
//! cargo bench -p changewire-gateway --bench console_live
//! cargo bench -p changewire-gateway --bench console_live -- --changes 60000 --pairs 5 --browsers 5
//! cargo bench -p changewire-gateway --bench console_live -- --overview-every-ms 0   # live polls only
//! cargo bench -p changewire-gateway --bench console_live -- --live-every-ms 0       # overview only
//! ```
//!
//! Each run is the one-receiver `throughput` scenario of `delivery.rs`: a
//! fresh PostgreSQL database (store and captured application database), the
//! gateway in process, a loopback sink that answers 200 at once, and
//! `--changes` ~1 KB rows (default 60,000: a burst of 5–6 s, so every
//! browser's schedule runs during it) committed in batches of 500 as fast
//! as possible; deliveries/s = changes / (first commit → last delivery at
//! the sink).
//!
//! "With" runs add `--browsers` simulated operators, each with its own
//! console session (a magic link from `createConsoleSession`, opened by a
//! POST, its `changewire_console` cookie kept) and its own keep-alive
//! connection, over loopback HTTP, heavier than a real browser:
//!
//! * on opening: `GET /console` (overview) and `GET /console/events`,
//!   whose `data-newest` starts the live cursor;
//! * every 1 s (`--live-every-ms`; the console's script polls every 2 s):
//!   `GET /console/events/live?after=<newest>`, `newest` then taken from the
//!   returned rows' `data-event-id`, as the script does;
//! * every 5 s (`--overview-every-ms`): `GET /console` (someone reloading
//!   the overview), the browsers' reloads spread evenly (5 browsers: one
//!   reload a second).
//!
//! Browsers start staggered 200 ms apart and 1.5 s before the burst (they
//! are open and refreshing when it arrives), and stop when it is delivered.
//! "Without" runs open the same sessions and wait the same 1.5 s, then send
//! no console request. One warm-up run (without) is not counted. Pairs
//! alternate their order (without→with, then with→without, …) so a drift of
//! the machine during the run does not favour one side.
//!
//! Prints one JSON line per run and a summary line: the ratio with/without
//! per pair, its median, and whether the cost (1 − median ratio) is ≤ 5 %.
//! Each run also gives the CPU seconds of the burst (this process: gateway,
//! sink, writer and browsers; every `postgres` process; the rest of the
//! machine, i.e. whatever else ran: a neighbour's build shows there), and
//! the summary the median ratio of CPU per delivery with/without, a second
//! view of the cost.
//!
//! Every loop is bounded in count and time; all traffic goes to 127.0.0.1.

#![allow(missing_docs)] // a benchmark binary
#![allow(clippy::unwrap_used)] // a benchmark: panicking on setup failure is the point

#[path = "common/mod.rs"]
mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use changewire_test_support::gateway::TestGateway;
use changewire_test_support::pg::TestDatabase;
use common::{
    app_db, arg, clk_tck, cpu_ticks, machine_busy_ticks, median, percentile, postgres_ticks, round,
    start_sink, wait_count, write_rows,
};
use http_body_util::{BodyExt as _, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

/// What each browser does, and how often (`None`: never).
#[derive(Clone, Copy)]
struct Schedule {
    /// Live rows poll (the real script: every 2 s; default here 1 s).
    live: Option<Duration>,
    /// Overview reload (default 5 s).
    overview: Option<Duration>,
}

impl Schedule {
    fn json(&self) -> Value {
        let secs = |d: Option<Duration>| d.map(|d| d.as_secs_f64());
        json!({"live_poll_every_s": secs(self.live), "overview_every_s": secs(self.overview)})
    }
}
/// Browsers open this long before the burst starts.
const LEAD: Duration = Duration::from_millis(1500);
/// Browser `b` opens `b × STAGGER` after the first.
const STAGGER: Duration = Duration::from_millis(200);
/// No run (burst and its delivery) may take longer.
const RUN_LIMIT: Duration = Duration::from_secs(300);
/// No browser sends more requests than this in one run.
const MAX_REQUESTS_PER_BROWSER: usize = 2_000;

type HttpClient = Client<HttpConnector, Empty<Bytes>>;

/// The same gateway as the `throughput` scenario of `delivery.rs`.
async fn gateway(db: &TestDatabase) -> TestGateway {
    let toml = format!(
        "capture = \"{url}\"\n[resources]\nRUNS = \"runs\"\n[log]\nlevel = \"error\"\n[capture_options]\nsweep_interval_ms = 200\n",
        url = db.url
    );
    TestGateway::start_with_store(db.url.clone(), None, tempfile::tempdir().unwrap(), &toml).await
}

/// A plain-HTTP request to the gateway; (status, `set-cookie` pair, body).
async fn request(
    client: &HttpClient,
    method: &str,
    url: &str,
    cookie: Option<&str>,
) -> (u16, Option<String>, String) {
    let mut req = hyper::Request::builder()
        .method(method)
        .uri(url)
        .header("accept", "text/html");
    if let Some(cookie) = cookie {
        req = req.header("cookie", cookie);
    }
    if method == "POST" {
        req = req.header("content-type", "application/x-www-form-urlencoded");
    }
    let response = client
        .request(req.body(Empty::new()).unwrap())
        .await
        .unwrap();
    let status = response.status().as_u16();
    let set_cookie = response
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .map(|c| c.split(';').next().unwrap_or_default().to_string());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        set_cookie,
        String::from_utf8_lossy(&body).into_owned(),
    )
}

/// Mints a magic link as admin and opens it: the session cookie (`name=value`).
async fn open_session(gw: &TestGateway, client: &HttpClient) -> String {
    let link = gw
        .graphql(
            "mutation { createConsoleSession(input: {}) { url } }",
            json!({}),
        )
        .await;
    let url = link["createConsoleSession"]["url"].as_str().unwrap();
    let url = if url.starts_with("http") {
        url.to_string()
    } else {
        format!("{}{url}", gw.base())
    };
    assert!(url.starts_with("http://127.0.0.1:"), "loopback only: {url}");
    let (status, cookie, body) = request(client, "POST", &url, None).await;
    assert_eq!(status, 303, "opening the link: {body}");
    let cookie = cookie.expect("a session cookie");
    assert!(cookie.starts_with("changewire_console="), "{cookie}");
    cookie
}

/// The value of `attr="…"` at its first occurrence in `html`.
fn first_attr(html: &str, attr: &str) -> Option<i64> {
    let at = html.find(&format!("{attr}=\""))? + attr.len() + 2;
    html[at..].split('"').next()?.parse().ok()
}

/// What one simulated browser did.
#[derive(Default)]
struct BrowserLog {
    live_us: Vec<u64>,
    overview_us: Vec<u64>,
    live_rows: usize,
    bad_status: usize,
    newest: i64,
}

/// One browser: opens the overview and the events page, then polls the
/// live rows every `schedule.live` and reloads the overview `first_reload`
/// after opening, then every `schedule.overview`, until `stop`, `deadline`
/// or its request budget.
async fn browser(
    client: HttpClient,
    base: String,
    cookie: String,
    schedule: Schedule,
    first_reload: Duration,
    stop: Arc<AtomicBool>,
    deadline: Instant,
) -> BrowserLog {
    let mut log = BrowserLog::default();
    let timed = |log: &mut BrowserLog, status: u16, began: Instant, live: bool| {
        let us = began.elapsed().as_micros() as u64;
        if live {
            log.live_us.push(us);
        } else {
            log.overview_us.push(us);
        }
        if status != 200 {
            log.bad_status += 1;
        }
    };
    let overview = format!("{base}/console");
    let began = Instant::now();
    let (status, _, _) = request(&client, "GET", &overview, Some(&cookie)).await;
    timed(&mut log, status, began, false);
    let (status, _, page) = request(
        &client,
        "GET",
        &format!("{base}/console/events"),
        Some(&cookie),
    )
    .await;
    if status != 200 {
        log.bad_status += 1;
    }
    log.newest = first_attr(&page, "data-newest").unwrap_or(0);

    let start = tokio::time::Instant::now();
    // A task that is off is due after the deadline, i.e. never.
    let never = start + LEAD + RUN_LIMIT + Duration::from_secs(60);
    let mut next_live = schedule.live.map_or(never, |every| start + every);
    let mut next_overview = schedule.overview.map_or(never, |_| start + first_reload);
    let mut requests = 2;
    while !stop.load(Ordering::Relaxed)
        && Instant::now() < deadline
        && requests < MAX_REQUESTS_PER_BROWSER
    {
        let due = next_live.min(next_overview);
        // Wake up at least every 50 ms to notice `stop`.
        tokio::time::sleep_until(due.min(tokio::time::Instant::now() + Duration::from_millis(50)))
            .await;
        let now = tokio::time::Instant::now();
        if now >= next_live {
            next_live += schedule.live.unwrap_or(RUN_LIMIT);
            let url = format!("{base}/console/events/live?after={}", log.newest);
            let began = Instant::now();
            let (status, _, rows) = request(&client, "GET", &url, Some(&cookie)).await;
            timed(&mut log, status, began, true);
            log.live_rows += rows.matches("data-event-id=\"").count();
            if let Some(id) = first_attr(&rows, "data-event-id") {
                log.newest = log.newest.max(id);
            }
            requests += 1;
        }
        if now >= next_overview {
            next_overview += schedule.overview.unwrap_or(RUN_LIMIT);
            let began = Instant::now();
            let (status, _, _) = request(&client, "GET", &overview, Some(&cookie)).await;
            timed(&mut log, status, began, false);
            requests += 1;
        }
    }
    log
}

/// One run: the burst of `changes` on a fresh database, `browsers`
/// console sessions open and, if `polling`, their browsers refreshing.
/// Prints and returns its JSON line.
async fn run(
    label: &str,
    changes: i64,
    browsers: usize,
    polling: bool,
    schedule: Schedule,
) -> Value {
    let db = app_db().await;
    let (addr, sink) = start_sink(false).await;
    let gw = gateway(&db).await;
    gw.receiver_with(
        &format!("http://{addr}/r"),
        &[("RUNS", "CREATE")],
        json!({"maxConcurrency": 64}),
    )
    .await;
    // The sessions are opened in both kinds of run, so the two differ only
    // in the console's requests.
    let mut clients = Vec::new();
    for _ in 0..browsers {
        let client: HttpClient = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(1)
            .build(HttpConnector::new());
        let cookie = open_session(&gw, &client).await;
        clients.push((client, cookie));
    }

    let stop = Arc::new(AtomicBool::new(false));
    let deadline = Instant::now() + LEAD + RUN_LIMIT;
    let mut tasks = Vec::new();
    for (b, (client, cookie)) in clients.into_iter().enumerate().filter(|_| polling) {
        let (base, stop) = (gw.base(), stop.clone());
        // Reloads spread evenly: all browsers together reload the overview
        // once per `schedule.overview / browsers`.
        let first_reload = schedule
            .overview
            .unwrap_or_default()
            .mul_f64((b + 1) as f64 / browsers as f64);
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(STAGGER * b as u32).await;
            browser(client, base, cookie, schedule, first_reload, stop, deadline).await
        }));
    }
    tokio::time::sleep(LEAD).await;

    let cpu_start = CpuSnapshot::take();
    let began = Instant::now();
    write_rows(&db.url, 1, changes, 500, None).await;
    let committed = began.elapsed();
    wait_count(&sink, changes as u64, RUN_LIMIT).await;
    let total = began.elapsed();
    let cpu = cpu_start.since();
    stop.store(true, Ordering::Relaxed);

    let mut live_us = Vec::new();
    let mut overview_us = Vec::new();
    let (mut live_rows, mut bad_status) = (0, 0);
    for t in tasks {
        let log = t.await.unwrap();
        live_us.extend(log.live_us);
        overview_us.extend(log.overview_us);
        live_rows += log.live_rows;
        bad_status += log.bad_status;
    }
    drop(gw);
    let ms = |v: &mut Vec<u64>, p: f64| round(percentile(v, p) as f64 / 1000.0, 1);
    let mut lat = sink.latencies_us.lock().unwrap().clone();
    let line = json!({
        "bench": "console_live_run", "run": label, "changes": changes,
        "sessions": browsers, "browsers_polling": if polling { browsers } else { 0 },
        "seconds": round(total.as_secs_f64(), 3), "commit_seconds": round(committed.as_secs_f64(), 3),
        "deliveries_per_sec": (changes as f64 / total.as_secs_f64()).round(),
        "latency_ms_p50": ms(&mut lat, 0.5), "latency_ms_p99": ms(&mut lat, 0.99),
        "cpu_s": {
            "bench_process": round(cpu.process, 2), "postgres": round(cpu.postgres, 2),
            "other": round(cpu.other, 2),
            "per_1k_deliveries": round((cpu.process + cpu.postgres) * 1000.0 / changes as f64, 4),
        },
        "console": {
            "live_requests": live_us.len(), "live_rows_received": live_rows,
            "live_ms_p50": ms(&mut live_us, 0.5), "live_ms_max": ms(&mut live_us, 1.0),
            "overview_requests": overview_us.len(),
            "overview_ms_p50": ms(&mut overview_us, 0.5), "overview_ms_max": ms(&mut overview_us, 1.0),
            "non_200": bad_status,
        },
    });
    println!("{line}");
    line
}

/// CPU ticks at the start of a burst.
struct CpuSnapshot {
    process: u64,
    postgres: HashMap<u32, u64>,
    machine: u64,
}

/// CPU seconds over a burst: this process (gateway, sink, writer and
/// browsers), every `postgres` process (backends that started in between
/// count from zero), and the rest of the machine.
struct CpuUsed {
    process: f64,
    postgres: f64,
    other: f64,
}

impl CpuSnapshot {
    fn take() -> CpuSnapshot {
        CpuSnapshot {
            process: cpu_ticks(std::process::id()).unwrap_or(0),
            postgres: postgres_ticks(),
            machine: machine_busy_ticks(),
        }
    }

    fn since(&self) -> CpuUsed {
        let tck = clk_tck();
        let process = cpu_ticks(std::process::id()).unwrap_or(0) - self.process;
        let postgres: u64 = postgres_ticks()
            .into_iter()
            .map(|(pid, t)| t.saturating_sub(self.postgres.get(&pid).copied().unwrap_or(0)))
            .sum();
        let machine = machine_busy_ticks().saturating_sub(self.machine);
        CpuUsed {
            process: process as f64 / tck,
            postgres: postgres as f64 / tck,
            other: machine.saturating_sub(process + postgres) as f64 / tck,
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let changes = arg(&args, "--changes", 60_000);
    let pairs = arg(&args, "--pairs", 5).max(1) as usize;
    let browsers = arg(&args, "--browsers", 5).clamp(1, 50) as usize;
    // Milliseconds; 0 turns that request off (to see which one costs what).
    let every = |name: &str, default: i64| {
        let ms = arg(&args, name, default).clamp(0, 600_000) as u64;
        (ms > 0).then(|| Duration::from_millis(ms.max(100)))
    };
    let schedule = Schedule {
        live: every("--live-every-ms", 1_000),
        overview: every("--overview-every-ms", 5_000),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        eprintln!("console_live: {changes} changes, {pairs} pairs, {browsers} browsers");
        run("warm-up (not counted)", changes, browsers, false, schedule).await;
        let mut ratios = Vec::new();
        let mut cpu_ratios = Vec::new();
        let mut pair_lines = Vec::new();
        for p in 0..pairs {
            let with_first = p % 2 == 1;
            let (mut without, mut with) = (Value::Null, Value::Null);
            for with_console in [with_first, !with_first] {
                let label = format!(
                    "pair {} {}",
                    p + 1,
                    if with_console { "with" } else { "without" }
                );
                let line = run(&label, changes, browsers, with_console, schedule).await;
                if with_console {
                    with = line;
                } else {
                    without = line;
                }
            }
            let w = with["deliveries_per_sec"].as_f64().unwrap_or(0.0);
            let wo = without["deliveries_per_sec"]
                .as_f64()
                .unwrap_or(1.0)
                .max(1.0);
            ratios.push(w / wo);
            let cpu = |v: &Value| v["cpu_s"]["per_1k_deliveries"].as_f64().unwrap_or(0.0);
            let cpu_ratio = cpu(&with) / cpu(&without).max(1e-9);
            cpu_ratios.push(cpu_ratio);
            pair_lines.push(json!({
                "pair": p + 1, "without": wo, "with": w, "ratio": round(w / wo, 3),
                "cpu_per_delivery_ratio": round(cpu_ratio, 3),
            }));
        }
        let median_ratio = median(&mut ratios.clone());
        println!(
            "{}",
            json!({
                "bench": "console_live", "changes": changes, "browsers": browsers,
                "schedule": schedule.json(),
                "pairs": pair_lines,
                "median_ratio": round(median_ratio, 3),
                "min_ratio": round(ratios.iter().copied().fold(f64::INFINITY, f64::min), 3),
                "max_ratio": round(ratios.iter().copied().fold(0.0, f64::max), 3),
                "median_cost_percent": round((1.0 - median_ratio) * 100.0, 1),
                "median_cpu_per_delivery_ratio": round(median(&mut cpu_ratios), 3),
                "cost_within_5_percent": median_ratio >= 0.95,
            })
        );
    });
}
