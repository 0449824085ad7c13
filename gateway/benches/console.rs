//! The console on a large audit trail: 1,000,000 events (deliveries with
//! their change and one attempt each) in a PostgreSQL store, and the time
//! each console page takes through the router (p50/p95 of 30 requests).
//!
//! `cargo bench -p changewire-gateway --bench console` prints one JSON object
//! per page and a summary; BENCHMARKS.md records a run. `CONSOLE_BENCH_EVENTS`
//! changes the number of events (default 1,000,000); `CONSOLE_BENCH_KEEP=1`
//! keeps the database for `EXPLAIN ANALYZE`.

#![allow(clippy::unwrap_used)] // a bench that cannot set up should stop loudly

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;
use changewire_gateway::Config;
use changewire_test_support::pg::TestDatabase;
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use sqlx::Connection as _;
use tower::ServiceExt as _;

const TOKEN: &str = "console-bench-admin-token-0123456789abcdef";
const RECEIVERS: i64 = 10;
const SAMPLES: usize = 30;

async fn send(router: &axum::Router, request: Request<Body>) -> (u16, Option<String>, String) {
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let cookie = response
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .map(|c| c.split(';').next().unwrap_or_default().to_string());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, cookie, String::from_utf8_lossy(&body).into_owned())
}

async fn graphql(router: &axum::Router, query: &str, variables: Value) -> Value {
    let request = Request::post("/graphql")
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {TOKEN}"))
        .body(Body::from(
            json!({"query": query, "variables": variables}).to_string(),
        ))
        .unwrap();
    serde_json::from_str(&send(router, request).await.2).unwrap()
}

/// Writes `n` changes, their deliveries (1 % failed, 0.1 % pending, spread
/// over 10 receivers and 4 resources) and one attempt each, 100 ms apart
/// ending now.
async fn seed(url: &str, receivers: &[i64], n: i64) {
    let mut db = sqlx::PgConnection::connect(url).await.unwrap();
    sqlx::raw_sql("SET search_path TO changewire")
        .execute(&mut db)
        .await
        .unwrap();
    let now = changewire_gateway::testing::now_ms();
    let first = receivers[0];
    let started = Instant::now();
    for statement in [
        format!(
            "INSERT INTO changes (source, source_key, resource, action, row_id, transaction_id, occurred_at, old, new, created_at) \
             SELECT 'bench', g::text, (ARRAY['RUNS','PARTS','ORDERS','LOTS'])[1 + g % 4], \
             (ARRAY['CREATE','UPDATE','UPDATE','UPDATE','UPDATE','UPDATE','UPDATE','DELETE'])[1 + g % 8], \
             'run-' || (g % 200000), g, {now} - ({n} - g) * 100, \
             '{{\"id\": 1, \"status\": \"open\", \"qty\": 3, \"closed_at\": null}}', \
             '{{\"id\": 1, \"status\": \"closed\", \"qty\": 3, \"closed_at\": \"2026-12-06\"}}', {now} - ({n} - g) * 100 \
             FROM generate_series(1, {n}) g"
        ),
        format!(
            "INSERT INTO deliveries (change_id, receiver_id, status, attempts, next_attempt_at, last_status, last_error, \
             created_at, updated_at, completed_at) \
             SELECT c.id, {first} + c.id % {RECEIVERS}, \
             CASE WHEN c.id % 100 = 7 THEN 'failed' WHEN c.id % 1000 = 3 THEN 'pending' ELSE 'succeeded' END, 1, \
             c.created_at + 60000, CASE WHEN c.id % 100 = 7 THEN 500 ELSE 200 END, \
             CASE WHEN c.id % 100 = 7 THEN 'HTTP 500' END, c.created_at, c.created_at + 40, \
             CASE WHEN c.id % 1000 = 3 THEN NULL ELSE c.created_at + 40 END FROM changes c"
        ),
        "INSERT INTO attempts (delivery_id, attempt, started_at, duration_ms, request_url, request_headers, \
         response_status, response_body, outcome, error_class, error) \
         SELECT d.id, 1, d.created_at, 5 + d.id % 40, 'https://receiver.example.com/hook', '{}', d.last_status, 'ok', \
         CASE WHEN d.status = 'failed' THEN 'failed' ELSE 'succeeded' END, \
         CASE WHEN d.status = 'failed' THEN 'status' END, d.last_error FROM deliveries d WHERE d.status <> 'pending'"
            .to_string(),
        "VACUUM ANALYZE".to_string(),
    ] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(statement)).execute(&mut db).await.unwrap();
    }
    eprintln!(
        "seeded {n} events in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run());
}

async fn run() {
    let n: i64 = std::env::var("CONSOLE_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let db = TestDatabase::create().await;
    let toml = format!(
        "store = \"{}\"\nadmin_token = \"{TOKEN}\"\n[log]\nlevel = \"error\"\n",
        db.url
    );
    let config = Arc::new(Config::from_toml(&toml).unwrap());
    let router = changewire_gateway::testing::api_router(config)
        .await
        .unwrap();
    let mut receivers = Vec::new();
    for i in 0..RECEIVERS {
        let created = graphql(
            &router,
            "mutation($i: CreateWebhookReceiverInput!) { createWebhookReceiver(input: $i) { webhookReceiver { id } } }",
            json!({"i": {"name": format!("receiver {i}"), "webhookUri": format!("https://r{i}.example.com/hook")}}),
        )
        .await;
        let id = created["data"]["createWebhookReceiver"]["webhookReceiver"]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("{created}"));
        receivers.push(id.parse::<i64>().unwrap());
    }
    seed(&db.url, &receivers, n).await;

    let link = graphql(
        &router,
        "mutation { createConsoleSession(input: {}) { url } }",
        json!({}),
    )
    .await;
    let url = link["data"]["createConsoleSession"]["url"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, cookie, _) = send(&router, Request::post(url).body(Body::empty()).unwrap()).await;
    let cookie = cookie.unwrap();

    let r = receivers[3];
    let middle_id = n / 2;
    let middle_ms = changewire_gateway::testing::now_ms() - (n / 2) * 100;
    let fmt = |ms: i64| changewire_gateway::testing::format_ms(ms)[..16].to_string();
    let pages: Vec<(&str, String)> = vec![
        ("overview", "/console".into()),
        ("events", "/console/events".into()),
        (
            "events by receiver",
            format!("/console/events?receiver={r}"),
        ),
        ("events failed", "/console/events?status=failed".into()),
        (
            "events plugin_error (none)",
            "/console/events?status=plugin_error".into(),
        ),
        ("events pending", "/console/events?status=pending".into()),
        (
            "events resource LOTS",
            "/console/events?resource=LOTS".into(),
        ),
        (
            "events action DELETE",
            "/console/events?action=DELETE".into(),
        ),
        (
            "events receiver+failed",
            format!("/console/events?receiver={r}&status=failed"),
        ),
        ("find row id", "/console/events?find=run-4242".into()),
        (
            "older page (keyset)",
            format!("/console/events?before={middle_id}"),
        ),
        (
            "time range",
            format!(
                "/console/events?from={}&to={}",
                fmt(middle_ms),
                fmt(middle_ms + 3_600_000)
            ),
        ),
        ("live rows", format!("/console/events/live?after={}", n - 5)),
        ("event detail", format!("/console/events/{middle_id}")),
        ("receiver detail", format!("/console/receivers/{r}")),
        ("receivers", "/console/receivers".into()),
    ];
    let mut worst: f64 = 0.0;
    for (name, path) in &pages {
        let mut times = Vec::with_capacity(SAMPLES);
        let mut status = 0;
        for _ in 0..SAMPLES {
            let request = Request::get(path.as_str())
                .header("cookie", &cookie)
                .body(Body::empty())
                .unwrap();
            let started = Instant::now();
            let (s, _, _) = send(&router, request).await;
            times.push(started.elapsed().as_secs_f64() * 1000.0);
            status = s;
        }
        times.sort_by(f64::total_cmp);
        let (p50, p95) = (percentile(&times, 0.5), percentile(&times, 0.95));
        worst = worst.max(p95);
        println!(
            "{}",
            json!({"bench": "console_page", "page": name, "path": path, "status": status, "events": n,
                   "p50_ms": (p50 * 100.0).round() / 100.0, "p95_ms": (p95 * 100.0).round() / 100.0})
        );
        assert!(matches!(status, 200 | 303), "{path} answered {status}");
    }
    println!(
        "{}",
        json!({"bench": "console_pages", "events": n, "worst_p95_ms": (worst * 100.0).round() / 100.0, "under_200ms": worst < 200.0})
    );
    drop(router);
    if std::env::var_os("CONSOLE_BENCH_KEEP").is_some() {
        // For EXPLAIN ANALYZE by hand; drop it yourself afterwards.
        eprintln!("kept {}", db.url);
        std::mem::forget(db);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
}
