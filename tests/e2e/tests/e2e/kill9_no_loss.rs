//! kill -9 a gateway in the middle of a 20,000-change burst and restart it:
//! every change reaches the receiver at least once; duplicates carry the same
//! `event_id`. Once with audit triggers, once with logical replication.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use changewire_e2e::GatewayProcess;
use changewire_test_support::pg::TestDatabase;
use changewire_test_support::receiver::TestReceiver;
use serde_json::json;
use sqlx::Connection;

pub(crate) const CHANGES: usize = 20_000;

/// How the gateway captures the changes (`capture_options.mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CaptureMode {
    /// Audit triggers, the default: no setting.
    Triggers,
    /// A `pgoutput` slot: needs `wal_level = logical` and
    /// `REPLICA IDENTITY FULL` on the table.
    Logical,
}

impl CaptureMode {
    /// Creates the captured `items` table (and makes it fit for this mode).
    pub(crate) async fn create_items(self, conn: &mut sqlx::PgConnection) {
        let sql = match self {
            CaptureMode::Triggers => "CREATE TABLE items (id BIGINT PRIMARY KEY, n INTEGER)",
            CaptureMode::Logical => {
                "CREATE TABLE items (id BIGINT PRIMARY KEY, n INTEGER); \
                 ALTER TABLE items REPLICA IDENTITY FULL"
            }
        };
        sqlx::raw_sql(sql).execute(conn).await.unwrap();
    }

    /// The gateway settings this mode adds.
    pub(crate) fn env(self) -> Vec<(&'static str, String)> {
        match self {
            CaptureMode::Triggers => Vec::new(),
            CaptureMode::Logical => vec![
                ("CHANGEWIRE_CAPTURE_OPTIONS__MODE", "logical".to_string()),
                // Smaller than a burst's transactions (100 rows): each goes
                // out in parts, so a kill lands between parts too.
                ("CHANGEWIRE_CAPTURE_OPTIONS__BATCH_SIZE", "30".to_string()),
            ],
        }
    }
}

impl fmt::Display for CaptureMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CaptureMode::Triggers => "triggers",
            CaptureMode::Logical => "logical",
        })
    }
}

/// Inserts `CHANGES` rows, 100 per transaction, retrying a transaction that
/// fails (e.g. while PostgreSQL restarts). Returns the ids actually committed.
pub(crate) async fn burst(
    url: String,
    pause: Option<std::sync::Arc<tokio::sync::Notify>>,
) -> Vec<i64> {
    let mut conn = connect_retrying(&url).await;
    let mut next = 0usize;
    while next < CHANGES {
        let ids: Vec<i64> = (next..(next + 100).min(CHANGES))
            .map(|i| i as i64 + 1)
            .collect();
        let result = sqlx::query("INSERT INTO items (id, n) SELECT x, x FROM unnest($1::bigint[]) AS x ON CONFLICT (id) DO NOTHING")
            .bind(&ids)
            .execute(&mut conn)
            .await;
        match result {
            Ok(_) => next += ids.len(),
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(200)).await;
                conn = connect_retrying(&url).await;
            }
        }
        if next.is_multiple_of(2_000) {
            if let Some(p) = &pause {
                p.notify_one();
            }
            tokio::task::yield_now().await;
        }
    }
    let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM items ORDER BY id")
        .fetch_all(&mut conn)
        .await
        .expect("ids");
    ids
}

async fn connect_retrying(url: &str) -> sqlx::PgConnection {
    for _ in 0..300 {
        if let Ok(c) = sqlx::PgConnection::connect(url).await {
            return c;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("cannot connect to {url}");
}

/// Waits until every id was received; returns id → event_ids seen.
pub(crate) async fn all_delivered(
    sink: &TestReceiver,
    ids: &[i64],
    limit: Duration,
) -> HashMap<i64, Vec<i64>> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let mut seen: HashMap<i64, Vec<i64>> = HashMap::new();
        for r in sink.received() {
            let body = r.json();
            if let (Some(id), Some(ev)) = (body["data"]["id"].as_i64(), body["event_id"].as_i64()) {
                seen.entry(id).or_default().push(ev);
            }
        }
        let missing = ids.iter().filter(|id| !seen.contains_key(id)).count();
        if missing == 0 {
            return seen;
        }
        if tokio::time::Instant::now() >= deadline {
            let first_missing: Vec<&i64> = ids
                .iter()
                .filter(|id| !seen.contains_key(id))
                .take(10)
                .collect();
            panic!(
                "{missing} of {} changes never arrived (first: {first_missing:?})",
                ids.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits for the burst's writer, then until every one of its `CHANGES`
/// rows was received; returns how many arrived more than once (each with
/// the same `event_id`).
pub(crate) async fn every_change_delivered(
    writer: tokio::task::JoinHandle<Vec<i64>>,
    sink: &TestReceiver,
) -> usize {
    let ids = writer.await.unwrap();
    assert_eq!(ids.len(), CHANGES);
    let seen = all_delivered(sink, &ids, Duration::from_secs(240)).await;
    check_duplicates(&seen)
}

pub(crate) fn check_duplicates(seen: &HashMap<i64, Vec<i64>>) -> usize {
    let mut duplicates = 0;
    for (id, events) in seen {
        assert!(
            events.iter().all(|e| *e == events[0]),
            "row {id} arrived with different event_ids: {events:?}"
        );
        duplicates += events.len() - 1;
    }
    duplicates
}

/// Starts a gateway capturing `items` of the database at `url` (also its
/// store) with `extra` settings, and a receiver subscribed to its inserts.
pub(crate) async fn items_gateway(
    url: &str,
    extra: &[(&'static str, String)],
) -> (GatewayProcess, TestReceiver) {
    let sink = TestReceiver::start().await;
    let mut env = vec![
        ("CHANGEWIRE_STORE", url.to_string()),
        ("CHANGEWIRE_CAPTURE", url.to_string()),
        ("CHANGEWIRE_RESOURCES", "ITEMS=items".to_string()),
        ("CHANGEWIRE_DELIVERY__LEASE_MARGIN_SECS", "1".to_string()),
    ];
    env.extend_from_slice(extra);
    let gw = GatewayProcess::start(&env).await;
    gw.register(
        &sink.url(),
        "ITEMS",
        "CREATE",
        json!({"timeoutMs": 1000, "maxConcurrency": 64}),
    )
    .await;
    (gw, sink)
}

/// Waits (at most two minutes) until the receiver has `n` requests.
pub(crate) async fn until_received(sink: &TestReceiver, n: usize, what: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while sink.count() < n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: only {} of {n} requests arrived",
            sink.count()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_mid_burst_loses_nothing() {
    let db = TestDatabase::create().await;
    kill9_mid_burst(&db, CaptureMode::Triggers).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_mid_burst_loses_nothing_logical() {
    let db = TestDatabase::create_logical().await;
    kill9_mid_burst(&db, CaptureMode::Logical).await;
}

/// The scenario on `db` (captured database and store alike).
async fn kill9_mid_burst(db: &TestDatabase, mode: CaptureMode) {
    let mut app = sqlx::PgConnection::connect(&db.url).await.unwrap();
    mode.create_items(&mut app).await;
    let (mut gw, sink) = items_gateway(&db.url, &mode.env()).await;
    let writer = tokio::spawn(burst(db.url.clone(), None));
    // Kill it once a quarter of the burst has been delivered, then restart.
    until_received(&sink, CHANGES / 4, "before the kill").await;
    let before = sink.count();
    gw.kill9();
    gw.restart().await;
    let duplicates = every_change_delivered(writer, &sink).await;
    eprintln!(
        "[{mode} capture] kill -9 after {before} deliveries: all {CHANGES} changes delivered, {duplicates} duplicates (same event_id)"
    );
}
