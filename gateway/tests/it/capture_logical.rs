//! PostgreSQL logical capture (`capture_options.mode = "logical"`): the
//! trigger mode's payload byte for byte, from a replication slot; restarts,
//! a switch from triggers under load, the slot's checks and clean-up.

use std::time::Duration;

use changewire_test_support::eventually;
use changewire_test_support::gateway::TestGateway;
use changewire_test_support::pg::TestDatabase;
use changewire_test_support::receiver::TestReceiver;
use serde_json::{Value, json};
use sqlx::Connection;

const WAIT: Duration = Duration::from_secs(30);

const SCHEMA: &str = "
CREATE TYPE mood AS ENUM ('calm', 'busy');
CREATE DOMAIN positive AS integer CHECK (VALUE > 0);
CREATE TABLE runs (
    id SERIAL PRIMARY KEY, status TEXT NOT NULL, note TEXT, qty INTEGER,
    price NUMERIC(10, 2), ratio DOUBLE PRECISION, due DATE, started_at TIMESTAMPTZ,
    local_at TIMESTAMP, took INTERVAL, done BOOLEAN, tags TEXT[], scores INT[],
    meta JSONB, raw JSON, ref UUID, blob BYTEA, mood mood, weight positive,
    \"Odd \"\"Name\" TEXT, big TEXT, code CHARACTER(4)
);
ALTER TABLE runs REPLICA IDENTITY FULL;
";

/// Every kind of change, on every column type above, with a TOASTed value
/// left unchanged by an update, a no-op update and a rollback.
const WORKLOAD: &[&str] = &[
    "INSERT INTO runs (status, qty, price, ratio, due, started_at, local_at, took, done, tags, scores, meta, raw, ref, blob, mood, weight, \"Odd \"\"Name\", code) \
     VALUES ('queued', 3, 12.50, 0.1, '2026-12-07', '2026-12-07 10:00:00.123456+02', '2026-12-07 10:00:00', '1 day 02:03:04', true, \
     ARRAY['a', 'b \"q\"', NULL], ARRAY[1, 2], '{\"b\": 1, \"a\": [true, null]}', '{\"keep\":  \"spacing\"}', \
     'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '\\xdeadbeef', 'calm', 7, 'odd', 'ab')",
    "UPDATE runs SET note = 'first note', qty = NULL WHERE id = 1",
    "UPDATE runs SET status = status WHERE id = 1",
    "BEGIN; UPDATE runs SET status = 'never' WHERE id = 1; ROLLBACK;",
    "UPDATE runs SET big = (SELECT string_agg(md5(i::text), '') FROM generate_series(1, 600) i) WHERE id = 1",
    "UPDATE runs SET status = 'kitted', ratio = 1e-7, mood = 'busy' WHERE id = 1",
    "BEGIN; INSERT INTO runs (status, price) VALUES ('a', 0), ('b', -1.05); UPDATE runs SET done = false WHERE id = 1; COMMIT;",
    "DELETE FROM runs WHERE status = 'a'",
];

async fn app_db(logical: bool) -> (TestDatabase, sqlx::PgConnection) {
    let db = if logical {
        TestDatabase::create_logical().await
    } else {
        TestDatabase::create().await
    };
    let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
    sqlx::raw_sql(SCHEMA).execute(&mut conn).await.unwrap();
    (db, conn)
}

async fn gateway(
    store: Option<TestDatabase>,
    store_url: &str,
    capture: &str,
    extra: &str,
) -> TestGateway {
    let toml = format!("capture = \"{capture}\"\n{extra}\n[resources]\nRUNS = \"runs\"\n");
    TestGateway::start_with_store(
        store_url.to_string(),
        store,
        tempfile::tempdir().unwrap(),
        &toml,
    )
    .await
}

const LOGICAL: &str = "[capture_options]\nmode = \"logical\"\nheartbeat_interval_ms = 200";

/// Waits until the database's slot has confirmed WAL position `lsn` (bytes
/// from 0/0).
async fn wait_confirmed(url: &str, lsn: i64) {
    eventually("the slot confirms the position", WAIT, || async move {
        let mut c = sqlx::PgConnection::connect(url).await.ok()?;
        let confirmed: i64 = sqlx::query_scalar(
            "SELECT pg_wal_lsn_diff(confirmed_flush_lsn, '0/0')::bigint FROM pg_replication_slots WHERE database = current_database()",
        )
        .fetch_one(&mut c)
        .await
        .ok()?;
        (confirmed >= lsn).then_some(())
    })
    .await;
}

async fn exec(conn: &mut sqlx::PgConnection, sql: &str) {
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
        .execute(conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// Subscribes a receiver to every action on RUNS, with the full record.
async fn subscribe_all(gw: &TestGateway, sink: &TestReceiver) {
    let (rid, _) = gw
        .receiver_with(
            &sink.url(),
            &[("RUNS", "CREATE"), ("RUNS", "DELETE")],
            json!({"maxConcurrency": 1}),
        )
        .await;
    gw.graphql(
        "mutation($r: ID!) { createWebhookSubscription(input: { receiverId: $r, resource: RUNS, action: UPDATE, includeFullRecord: true }) { webhookSubscription { id } } }",
        json!({"r": rid}),
    )
    .await;
}

/// What must be equal across modes: the body without the ids and times
/// that differ by nature (event and delivery ids, transaction ids, when).
fn comparable(body: &[u8]) -> String {
    let text = std::str::from_utf8(body).unwrap();
    let mut value: Value = serde_json::from_str(text).unwrap();
    let data_text = raw_member(text, "data").expect("a data member");
    for key in [
        "event_id",
        "transaction_id",
        "occurred_at",
        "timestamp",
        "id",
    ] {
        value.as_object_mut().unwrap().remove(key);
    }
    value.as_object_mut().unwrap().remove("data");
    // `data` as sent (its bytes), minus nothing: row ids, diffs, records, etags.
    format!("{value}|{data_text}")
}

/// The raw text of a top-level member's value (objects only).
fn raw_member<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    let start = text.find(&format!("\"{key}\":"))? + key.len() + 3;
    let rest = text[start..].trim_start();
    let offset = text.len() - rest.len();
    let mut depth = 0i32;
    let mut in_string = false;
    let mut escaped = false;
    for (i, c) in rest.char_indices() {
        match (in_string, escaped, c) {
            (true, true, _) => escaped = false,
            (true, false, '\\') => escaped = true,
            (true, false, '"') => in_string = false,
            (false, _, '"') => in_string = true,
            (false, _, '{') => depth += 1,
            (false, _, '}') => {
                depth -= 1;
                if depth == 0 {
                    return Some(&text[offset..offset + i + 1]);
                }
            }
            _ => {}
        }
    }
    None
}

async fn run_workload(mode_extra: &str, logical: bool) -> Vec<(String, Value)> {
    let (db, mut app) = app_db(logical).await;
    let gw = gateway(None, &db.url, &db.url, mode_extra).await;
    let sink = TestReceiver::start().await;
    subscribe_all(&gw, &sink).await;
    for sql in WORKLOAD {
        exec(&mut app, sql).await;
    }
    sink.wait_for(8, WAIT).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let mut got: Vec<(String, Value)> = sink
        .received()
        .iter()
        .map(|r| (comparable(&r.body), r.json()))
        .collect();
    // One receiver, one at a time, but UPDATE and CREATE subscriptions are
    // separate deliveries: order by event id (capture order).
    got.sort_by_key(|(_, v)| v["event_id"].as_i64());
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_payload_as_the_trigger_mode_byte_for_byte() {
    // Both on one server, so that nothing but the mode differs.
    let triggers = run_workload("", true).await;
    let logical = run_workload(LOGICAL, true).await;
    assert_eq!(triggers.len(), 8, "{triggers:#?}");
    assert_eq!(logical.len(), triggers.len(), "{logical:#?}");
    for ((t, tv), (l, lv)) in triggers.iter().zip(&logical) {
        assert_eq!(t, l, "\ntriggers: {tv:#}\nlogical: {lv:#}");
    }
    // The TOASTed value the update left unchanged is in the full record.
    let kitted = logical
        .iter()
        .map(|(_, v)| v)
        .find(|v| v["data"]["new"]["status"] == "kitted")
        .expect("the kitted update");
    assert_eq!(
        kitted["data"]["record"]["big"].as_str().map(str::len),
        Some(600 * 32)
    );
    assert!(kitted["data"]["new"].get("big").is_none(), "{kitted:#}");
    // One transaction, one transaction_id; the real 64-bit one.
    let tx: Vec<&Value> = logical
        .iter()
        .map(|(_, v)| v)
        .filter(|v| {
            v["data"]["new"]["status"] == "a"
                || v["data"]["new"]["status"] == "b"
                || v["data"]["new"] == json!({"done": false})
        })
        .map(|v| &v["transaction_id"])
        .collect();
    assert_eq!(tx.len(), 3);
    assert!(
        tx.iter().all(|t| *t == tx[0] && t.as_i64().unwrap() > 0),
        "{tx:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_resumes_from_the_slot_without_loss_or_repeat() {
    let (db, mut app) = app_db(true).await;
    let store = TestDatabase::create().await;
    let store_url = store.url.clone();
    let mut gw = gateway(Some(store), &store_url, &db.url, LOGICAL).await;
    let sink = TestReceiver::start().await;
    gw.receiver_with(&sink.url(), &[("RUNS", "CREATE")], json!({}))
        .await;
    exec(&mut app, "INSERT INTO runs (status) VALUES ('before')").await;
    sink.wait_for(1, WAIT).await;
    // The slot confirmed the first change (so the restart does not simply
    // replay everything, which deduplication would hide).
    let committed: i64 =
        sqlx::query_scalar("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint")
            .fetch_one(&mut app)
            .await
            .unwrap();
    wait_confirmed(&db.url, committed).await;
    gw.stop().await;
    for i in 0..50 {
        exec(
            &mut app,
            &format!("INSERT INTO runs (status, mood) VALUES ('while-down-{i}', 'calm')"),
        )
        .await;
    }
    // A label renamed after the changes were committed: they are still read.
    exec(&mut app, "ALTER TYPE mood RENAME VALUE 'calm' TO 'quiet'").await;
    let _gw2 = gateway(None, &store_url, &db.url, LOGICAL).await;
    sink.wait_for(51, WAIT).await;
    assert!(
        sink.received()
            .iter()
            .skip(1)
            .all(|r| r.json()["data"]["new"]["mood"] == "calm"),
        "values as committed"
    );
    tokio::time::sleep(Duration::from_millis(800)).await;
    let mut statuses: Vec<String> = sink
        .received()
        .iter()
        .map(|r| {
            r.json()["data"]["new"]["status"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(statuses.len(), 51, "nothing twice: {statuses:?}");
    statuses.sort();
    statuses.dedup();
    assert_eq!(statuses.len(), 51);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_stop_confirms_everything_it_imported() {
    let (db, mut app) = app_db(true).await;
    let store = TestDatabase::create().await;
    let store_url = store.url.clone();
    // No heartbeat within the test: only imports move the slot.
    let quiet = "[capture_options]\nmode = \"logical\"\nheartbeat_interval_ms = 600000";
    let mut gw = gateway(Some(store), &store_url, &db.url, quiet).await;
    let sink = TestReceiver::start().await;
    gw.receiver_with(&sink.url(), &[("RUNS", "CREATE")], json!({}))
        .await;
    // One transaction after another: the first import is reported to the
    // server at once, the next ones within its status interval (1 s) only
    // by the last status update a clean stop sends.
    for i in 0..5 {
        exec(
            &mut app,
            &format!("INSERT INTO runs (status) VALUES ('row-{i}')"),
        )
        .await;
        sink.wait_for(i + 1, WAIT).await;
    }
    gw.stop().await;
    // What the slot would stream to its next reader: none of those inserts
    // (peeked once the server has let go of the stopped stream's slot).
    let peek = "SELECT count(*) FROM pg_logical_slot_peek_binary_changes( \
                  (SELECT slot_name FROM pg_replication_slots WHERE database = current_database()), \
                  NULL, NULL, 'proto_version', '1', \
                  'publication_names', (SELECT string_agg(pubname, ',') FROM pg_publication)) \
                WHERE get_byte(data, 0) = ascii('I')";
    let url = db.url.as_str();
    let replayed: i64 = eventually("the slot released", WAIT, || async move {
        let mut c = sqlx::PgConnection::connect(url).await.ok()?;
        sqlx::query_scalar(peek).fetch_one(&mut c).await.ok()
    })
    .await;
    assert_eq!(replayed, 0, "a clean stop leaves nothing to stream again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switching_from_triggers_under_load_loses_and_repeats_nothing() {
    switch_under_load("", LOGICAL).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switching_back_to_triggers_under_load_loses_and_repeats_nothing() {
    switch_under_load(LOGICAL, "").await;
}

/// The trigger-mode gateway starts while the logical one still streams (a
/// rolling deploy): the old one stops at the switch's marker, the new one
/// reads the slot to it once it is free, then drops it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switching_back_while_the_logical_gateway_still_runs_loses_and_repeats_nothing() {
    switch_under_load_with(LOGICAL, "", true).await;
}

/// Three writers insert rows while a gateway in one mode is replaced by
/// one in the other: every row is delivered once.
async fn switch_under_load(from: &str, to: &str) {
    switch_under_load_with(from, to, false).await;
}

/// As [`switch_under_load`]; with `overlap`, the new gateway starts before
/// the old one stops.
async fn switch_under_load_with(from: &str, to: &str, overlap: bool) {
    let (db, _app) = app_db(true).await;
    let store = TestDatabase::create().await;
    let store_url = store.url.clone();
    let mut gw = gateway(Some(store), &store_url, &db.url, from).await;
    let sink = TestReceiver::start().await;
    gw.receiver_with(
        &sink.url(),
        &[("RUNS", "CREATE")],
        json!({"maxConcurrency": 32}),
    )
    .await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..3 {
        let (url, stop) = (db.url.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
            let mut n = 0;
            // Bounded: at most 2,000 rows per writer.
            while n < 2_000 && !(stop.load(std::sync::atomic::Ordering::Relaxed) && n >= 300) {
                sqlx::query("INSERT INTO runs (status) VALUES ($1)")
                    .bind(format!("w{w}-{n}"))
                    .execute(&mut conn)
                    .await
                    .unwrap();
                n += 1;
            }
            n
        }));
    }
    // Let some rows go through the triggers, then switch while writing.
    eventually("trigger deliveries", WAIT, || async {
        (sink.count() >= 100).then_some(())
    })
    .await;
    let next = if overlap {
        let next = gateway(None, &store_url, &db.url, to).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        gw.stop().await;
        next
    } else {
        gw.stop().await;
        gateway(None, &store_url, &db.url, to).await
    };
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut written = 0;
    for w in writers {
        written += w.await.unwrap();
    }
    sink.wait_for(written, Duration::from_secs(90)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut statuses: Vec<String> = sink
        .received()
        .iter()
        .map(|r| {
            r.json()["data"]["new"]["status"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let total = statuses.len();
    statuses.sort();
    statuses.dedup();
    assert_eq!(statuses.len(), written, "every row delivered");
    assert_eq!(total, written, "no row delivered twice");
    let url = db.url.clone();
    let (triggers, slots) = eventually("the old mode's objects are gone", WAIT, || {
        let url = url.clone();
        async move {
            let mut app = sqlx::PgConnection::connect(&url).await.ok()?;
            let counts: (i64, i64) = sqlx::query_as(
                "SELECT (SELECT count(*) FROM pg_trigger WHERE tgname = 'changewire_capture'), \
                 (SELECT count(*) FROM pg_replication_slots WHERE database = current_database())",
            )
            .fetch_one(&mut app)
            .await
            .ok()?;
            let done = if to == LOGICAL {
                counts.0 == 0
            } else {
                counts.1 == 0
            };
            done.then_some(counts)
        }
    })
    .await;
    if to == LOGICAL {
        assert_eq!((triggers, slots), (0, 1));
    } else {
        assert_eq!((triggers, slots), (1, 0), "triggers back, the slot dropped");
    }
    drop(next);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_up_checks_say_what_to_run() {
    let (db, mut app) = app_db(true).await;
    let start = |toml: String| async move {
        let config = std::sync::Arc::new(changewire_gateway::Config::from_toml(&toml).unwrap());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        match changewire_gateway::RunningGateway::start_on(config, listener).await {
            Ok(_) => panic!("{toml} must not start"),
            Err(e) => changewire_gateway::testing::Report(&e).to_string(),
        }
    };
    let toml = |mapping: &str| {
        format!(
            "store = \"{u}\"\ncapture = \"{u}\"\nlisten = \"127.0.0.1:0\"\n{LOGICAL}\n[resources]\n{mapping}\n",
            u = db.url
        )
    };
    exec(&mut app, "CREATE TABLE plain (id INT PRIMARY KEY); CREATE TABLE computed (id INT PRIMARY KEY, twice INT GENERATED ALWAYS AS (id * 2) STORED); ALTER TABLE computed REPLICA IDENTITY FULL;").await;
    let err = start(toml("PLAIN = \"plain\"")).await;
    assert!(
        err.contains("ALTER TABLE plain REPLICA IDENTITY FULL") && err.contains("PLAIN"),
        "{err}"
    );
    let err = start(toml("COMPUTED = \"computed\"")).await;
    assert!(err.contains("generated column `twice`"), "{err}");
    // Nothing was created for a refused start.
    let slots: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_replication_slots WHERE database = current_database()",
    )
    .fetch_one(&mut app)
    .await
    .unwrap();
    assert_eq!(slots, 0);
    // A server without wal_level = logical is refused with what to change.
    let plain = TestDatabase::create().await;
    let mut conn = sqlx::PgConnection::connect(&plain.url).await.unwrap();
    let level: String = sqlx::query_scalar("SELECT current_setting('wal_level')")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    exec(
        &mut conn,
        "CREATE TABLE t (id INT PRIMARY KEY); ALTER TABLE t REPLICA IDENTITY FULL;",
    )
    .await;
    let toml = format!(
        "store = \"{u}\"\ncapture = \"{u}\"\nlisten = \"127.0.0.1:0\"\n{LOGICAL}\n[resources]\nT = \"t\"\n",
        u = plain.url
    );
    let config = std::sync::Arc::new(changewire_gateway::Config::from_toml(&toml).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let started = changewire_gateway::RunningGateway::start_on(config, listener).await;
    if level == "logical" {
        assert!(started.is_ok(), "a logical server starts");
    } else {
        let err = changewire_gateway::testing::Report(&started.err().expect("refused")).to_string();
        assert!(
            err.contains("wal_level = logical") && err.contains(&format!("`{level}`")),
            "{err}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_advance_an_idle_slot_and_uninstall_drops_it() {
    let (db, mut app) = app_db(true).await;
    exec(
        &mut app,
        "CREATE TABLE unmapped (id SERIAL PRIMARY KEY, pad TEXT)",
    )
    .await;
    let mut gw = gateway(None, &db.url, &db.url, LOGICAL).await;
    // WAL that the slot does not publish: only heartbeats let it go.
    exec(
        &mut app,
        "INSERT INTO unmapped (pad) SELECT repeat('x', 1000) FROM generate_series(1, 5000)",
    )
    .await;
    let written: i64 =
        sqlx::query_scalar("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint")
            .fetch_one(&mut app)
            .await
            .unwrap();
    wait_confirmed(&db.url, written).await;
    let metrics =
        changewire_test_support::http::request("GET", &format!("{}/metrics", gw.base()), &[], None)
            .await;
    let text = metrics.body.clone();
    assert!(text.contains("changewire_capture_slot_lag_bytes"), "{text}");
    assert!(
        text.contains("changewire_capture_slot_wal_status{status=\"reserved\"} 1"),
        "{text}"
    );
    gw.stop().await;
    // `changewire capture uninstall` drops the slot and the publication.
    let toml = format!(
        "capture = \"{}\"\n{LOGICAL}\n[resources]\nRUNS = \"runs\"\n",
        db.url
    );
    let config = changewire_gateway::Config::from_toml(&toml).unwrap();
    changewire_gateway::testing::uninstall_capture(&config, false)
        .await
        .expect("uninstall");
    let left: (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM pg_replication_slots WHERE database = current_database()), (SELECT count(*) FROM pg_publication)",
    )
    .fetch_one(&mut app)
    .await
    .unwrap();
    assert_eq!(left, (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_fails_when_the_slot_is_dropped() {
    let (db, mut app) = app_db(true).await;
    let gw = gateway(None, &db.url, &db.url, LOGICAL).await;
    let readyz = format!("{}/readyz", gw.base());
    eventually("ready", WAIT, || async {
        let r = changewire_test_support::http::request("GET", &readyz, &[], None).await;
        (r.status == 200).then_some(())
    })
    .await;
    exec(&mut app, "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE active_pid IS NOT NULL").await;
    eventually("slot dropped", WAIT, || {
        let url = db.url.clone();
        async move {
            let mut c = sqlx::PgConnection::connect(&url).await.ok()?;
            let _ = sqlx::query("SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE active_pid IS NOT NULL").execute(&mut c).await;
            sqlx::query("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = current_database()").execute(&mut c).await.ok()
        }
    })
    .await;
    let down = eventually("readyz reports the lost slot", WAIT, || async {
        let r = changewire_test_support::http::request("GET", &readyz, &[], None).await;
        let body = r.json();
        (r.status == 503 && body["components"]["capture_slot"]["ready"] == false).then_some(body)
    })
    .await;
    assert!(
        down["components"]["capture_slot"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("slot is gone")),
        "{down}"
    );
}

/// A transaction larger than `batch_size` goes out in parts (each part's
/// keys continue the last's): every row once, none dropped as a duplicate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_transaction_goes_out_in_parts_every_row_once() {
    let (db, mut app) = app_db(true).await;
    let extra = format!("{LOGICAL}\nbatch_size = 100");
    let gw = gateway(None, &db.url, &db.url, &extra).await;
    let sink = TestReceiver::start().await;
    gw.receiver_with(
        &sink.url(),
        &[("RUNS", "CREATE"), ("RUNS", "DELETE")],
        json!({"maxConcurrency": 32}),
    )
    .await;
    exec(
        &mut app,
        "INSERT INTO runs (status) SELECT 'bulk-' || g FROM generate_series(1, 1050) g",
    )
    .await;
    exec(&mut app, "DELETE FROM runs WHERE id % 2 = 0").await;
    sink.wait_for(1050 + 525, Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let bodies: Vec<Value> = sink.received().iter().map(|r| r.json()).collect();
    assert_eq!(bodies.len(), 1575, "every row once");
    let mut created: Vec<i64> = bodies
        .iter()
        .filter(|b| b["action"] == "create")
        .map(|b| b["data"]["id"].as_i64().unwrap())
        .collect();
    created.sort_unstable();
    created.dedup();
    assert_eq!(created.len(), 1050);
    let deleted = bodies.iter().filter(|b| b["action"] == "delete").count();
    assert_eq!(deleted, 525);
    let txids: std::collections::HashSet<String> = bodies
        .iter()
        .filter(|b| b["action"] == "create")
        .map(|b| b["transaction_id"].to_string())
        .collect();
    assert_eq!(txids.len(), 1, "one transaction, one transaction_id");
}

/// A table whose REPLICA IDENTITY stops being FULL while captured: the
/// first change without its old row stops capture there, and `/readyz`
/// says what to run (no payload that differs from the trigger mode's).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_replica_identity_stops_capture_with_what_to_run() {
    let (db, mut app) = app_db(true).await;
    let gw = gateway(None, &db.url, &db.url, LOGICAL).await;
    let sink = TestReceiver::start().await;
    gw.receiver_with(
        &sink.url(),
        &[("RUNS", "CREATE"), ("RUNS", "UPDATE")],
        json!({}),
    )
    .await;
    exec(&mut app, "INSERT INTO runs (status) VALUES ('a')").await;
    sink.wait_for(1, WAIT).await;
    exec(
        &mut app,
        "ALTER TABLE runs REPLICA IDENTITY DEFAULT; UPDATE runs SET status = 'b' WHERE id = 1",
    )
    .await;
    let readyz = format!("{}/readyz", gw.base());
    let down = eventually("readyz names the lost replica identity", WAIT, || async {
        let r = changewire_test_support::http::request("GET", &readyz, &[], None).await;
        let body = r.json();
        (r.status == 503 && body["components"]["capture"]["ready"] == false).then_some(body)
    })
    .await;
    let error = down["components"]["capture"]["error"]
        .as_str()
        .unwrap_or_default();
    assert!(error.contains("REPLICA IDENTITY FULL"), "{down}");
    assert_eq!(sink.count(), 1, "no update without its old values");
}

/// A partitioned table is captured as itself (its partitions' changes come
/// as the table's), and every partition must have REPLICA IDENTITY FULL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_table_is_captured_as_itself() {
    let (db, mut app) = app_db(true).await;
    exec(
        &mut app,
        "CREATE TABLE events (id INT NOT NULL, day DATE NOT NULL, what TEXT, PRIMARY KEY (id, day)) PARTITION BY RANGE (day); \
         CREATE TABLE events_a PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2026-07-01'); \
         CREATE TABLE events_b PARTITION OF events FOR VALUES FROM ('2026-07-01') TO ('2027-01-01'); \
         ALTER TABLE events REPLICA IDENTITY FULL; ALTER TABLE events_a REPLICA IDENTITY FULL;",
    )
    .await;
    let toml =
        |u: &str| format!("capture = \"{u}\"\n{LOGICAL}\n[resources]\nEVENTS = \"events\"\n");
    // A partition without it is named at start-up.
    let config = std::sync::Arc::new(
        changewire_gateway::Config::from_toml(&format!(
            "store = \"{u}\"\nlisten = \"127.0.0.1:0\"\n{}",
            toml(&db.url),
            u = db.url
        ))
        .unwrap(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let err = match changewire_gateway::RunningGateway::start_on(config, listener).await {
        Ok(_) => panic!("a partition without REPLICA IDENTITY FULL must not start"),
        Err(e) => changewire_gateway::testing::Report(&e).to_string(),
    };
    assert!(
        err.contains("ALTER TABLE events_b REPLICA IDENTITY FULL"),
        "{err}"
    );
    exec(&mut app, "ALTER TABLE events_b REPLICA IDENTITY FULL").await;
    let gw = TestGateway::start_with_store(
        db.url.clone(),
        None,
        tempfile::tempdir().unwrap(),
        &toml(&db.url),
    )
    .await;
    let sink = TestReceiver::start().await;
    gw.receiver_with(
        &sink.url(),
        &[("EVENTS", "CREATE"), ("EVENTS", "UPDATE")],
        json!({}),
    )
    .await;
    exec(
        &mut app,
        "INSERT INTO events VALUES (1, '2026-02-01', 'a'), (2, '2026-08-01', 'b'); \
         UPDATE events SET what = 'b2' WHERE id = 2",
    )
    .await;
    let got = sink.wait_for(3, WAIT).await;
    let bodies: Vec<Value> = got.iter().map(|r| r.json()).collect();
    assert!(
        bodies.iter().all(|b| b["resource"] == "events"),
        "{bodies:#?}"
    );
    assert!(
        bodies
            .iter()
            .any(|b| b["data"]["new"] == json!({"what": "b2"})
                && b["data"]["old"] == json!({"what": "b"})),
        "{bodies:#?}"
    );
}
