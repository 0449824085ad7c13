//! PostgreSQL capture: triggers → logged_actions → one delivery per matching
//! subscription, with the diff, through faults.

use std::time::Duration;

use changewire_test_support::eventually;
use changewire_test_support::gateway::TestGateway;
use changewire_test_support::pg::TestDatabase;
use changewire_test_support::receiver::TestReceiver;
use serde_json::{Value, json};
use sqlx::Connection;

const WAIT: Duration = Duration::from_secs(20);

const SCHEMA: &str = "
CREATE TABLE suppliers (id SERIAL PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE runs (id SERIAL PRIMARY KEY, status TEXT NOT NULL, note TEXT, qty INTEGER, supplier_id INTEGER REFERENCES suppliers (id));
CREATE TABLE run_steps (run_id INTEGER NOT NULL, position INTEGER NOT NULL, done BOOLEAN NOT NULL DEFAULT FALSE, etag TEXT, PRIMARY KEY (run_id, position));
CREATE TABLE no_pk (a INTEGER);
";

const RESOURCES: &str = "[resources]\nRUNS = \"runs\"\nRUN_STEPS = \"run_steps\"\n";

async fn app_db() -> (TestDatabase, sqlx::PgConnection) {
    let db = TestDatabase::create().await;
    let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
    sqlx::raw_sql(SCHEMA).execute(&mut conn).await.unwrap();
    (db, conn)
}

/// A gateway whose store is `store_url` and which captures `capture_url`.
async fn gateway(
    store: Option<TestDatabase>,
    store_url: &str,
    capture_url: &str,
    extra: &str,
) -> TestGateway {
    let toml = format!("capture = \"{capture_url}\"\n{extra}\n{RESOURCES}");
    TestGateway::start_with_store(
        store_url.to_string(),
        store,
        tempfile::tempdir().unwrap(),
        &toml,
    )
    .await
}

fn bodies(sink: &TestReceiver) -> Vec<Value> {
    sink.received().iter().map(|r| r.json()).collect()
}

async fn exec(conn: &mut sqlx::PgConnection, sql: &str) {
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
        .execute(conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_change_path() {
    let (db, mut app) = app_db().await;
    let gw = gateway(None, &db.url, &db.url, "").await;
    let sink = TestReceiver::start().await;
    gw.receiver_with(
        &sink.url(),
        &[
            ("RUNS", "CREATE"),
            ("RUNS", "UPDATE"),
            ("RUNS", "DELETE"),
            ("RUN_STEPS", "CREATE"),
            ("RUN_STEPS", "UPDATE"),
        ],
        json!({}),
    )
    .await;

    exec(
        &mut app,
        "INSERT INTO runs (status, qty) VALUES ('queued', 3)",
    )
    .await;
    let created = sink.wait_for(1, WAIT).await[0].json();
    assert_eq!(created["resource"], "runs");
    assert_eq!(created["action"], "create");
    assert_eq!(created["data"]["id"], 1);
    assert_eq!(created["data"]["old"], Value::Null);
    assert_eq!(
        created["data"]["new"],
        json!({"id": 1, "qty": 3, "note": null, "status": "queued", "supplier_id": null})
    );
    assert_eq!(
        created["data"]["etag"].as_str().map(str::len),
        Some(16),
        "hash of the row when it has no etag column"
    );

    // null → value and value → null are changes; unchanged columns are left out.
    exec(
        &mut app,
        "UPDATE runs SET note = 'first note', qty = NULL WHERE id = 1",
    )
    .await;
    let updated = sink.wait_for(2, WAIT).await[1].json();
    assert_eq!(updated["action"], "update");
    assert_eq!(updated["data"]["old"], json!({"qty": 3, "note": null}));
    assert_eq!(
        updated["data"]["new"],
        json!({"qty": null, "note": "first note"})
    );
    assert_ne!(updated["data"]["etag"], created["data"]["etag"]);

    // An update that changes nothing produces nothing; a rollback produces nothing.
    exec(&mut app, "UPDATE runs SET status = status WHERE id = 1").await;
    exec(
        &mut app,
        "BEGIN; UPDATE runs SET status = 'never' WHERE id = 1; ROLLBACK;",
    )
    .await;
    // Several rows and tables in one transaction share its transaction_id.
    exec(
        &mut app,
        "BEGIN; INSERT INTO runs (status) VALUES ('a'), ('b'); INSERT INTO run_steps (run_id, position, etag) VALUES (1, 1, 'step-etag'); COMMIT;",
    )
    .await;
    let got = sink.wait_for(5, WAIT).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        sink.count(),
        5,
        "no event for the no-op update or the rollback: {:#?}",
        bodies(&sink)
    );
    let tx: Vec<&Value> = got[2..]
        .iter()
        .map(|r| &r.body)
        .map(|_| &Value::Null)
        .collect();
    assert_eq!(tx.len(), 3);
    let batch: Vec<Value> = got[2..].iter().map(|r| r.json()).collect();
    let txids: Vec<&Value> = batch.iter().map(|b| &b["transaction_id"]).collect();
    assert!(txids.iter().all(|t| *t == txids[0]), "{txids:?}");
    assert_ne!(txids[0], &updated["transaction_id"]);
    let step = batch.iter().find(|b| b["resource"] == "run_steps").unwrap();
    assert_eq!(
        step["data"]["id"],
        json!({"run_id": 1, "position": 1}),
        "composite keys"
    );
    assert_eq!(
        step["data"]["etag"], "step-etag",
        "the row's own etag column"
    );

    exec(&mut app, "DELETE FROM runs WHERE id = 2").await;
    let deleted = sink.wait_for(6, WAIT).await[5].json();
    assert_eq!(deleted["action"], "delete");
    assert_eq!(deleted["data"]["new"], Value::Null);
    assert_eq!(deleted["data"]["old"]["status"], "a");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_record_and_expanded_foreign_keys() {
    let (db, mut app) = app_db().await;
    let store = TestDatabase::create().await; // a separate store database
    let store_url = store.url.clone();
    let gw = gateway(Some(store), &store_url, &db.url, "").await;
    let sink = TestReceiver::start().await;
    let (rid, _) = gw.receiver_with(&sink.url(), &[], json!({})).await;
    gw.graphql(
        "mutation($r: ID!) { createWebhookSubscription(input: { receiverId: $r, resource: RUNS, action: UPDATE, includeFullRecord: true, expand: [\"supplier_id\"] }) { webhookSubscription { id } } }",
        json!({"r": rid}),
    )
    .await;
    exec(&mut app, "INSERT INTO suppliers (name) VALUES ('Acme Metals'); INSERT INTO runs (status) VALUES ('queued');").await;
    exec(
        &mut app,
        "UPDATE runs SET supplier_id = 1, status = 'kitted' WHERE id = 1",
    )
    .await;
    let body = sink.wait_for(1, WAIT).await[0].json();
    assert_eq!(
        body["data"]["new"],
        json!({"status": "kitted", "supplier_id": 1})
    );
    assert_eq!(body["data"]["record"]["status"], "kitted");
    assert_eq!(body["data"]["record"]["qty"], Value::Null);
    assert_eq!(
        body["data"]["related"]["supplier_id"],
        json!({"id": 1, "name": "Acme Metals"})
    );
}

/// The importer keeps what the subscriptions need between batches; a
/// subscription that starts expanding a foreign key and wanting the full
/// row gets both from its next change on, not once the needs happen to be
/// read again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_that_starts_expanding_gets_related_rows_at_once() {
    let (db, mut app) = app_db().await;
    let gw = gateway(None, &db.url, &db.url, "").await;
    let sink = TestReceiver::start().await;
    let (rid, _) = gw.receiver_with(&sink.url(), &[], json!({})).await;
    let created = gw
        .graphql(
            "mutation($r: ID!) { createWebhookSubscription(input: { receiverId: $r, resource: RUNS, action: UPDATE }) { webhookSubscription { id _etag } } }",
            json!({"r": rid}),
        )
        .await;
    let subscription = &created["createWebhookSubscription"]["webhookSubscription"];
    exec(
        &mut app,
        "INSERT INTO suppliers (name) VALUES ('Acme Metals'); INSERT INTO runs (status, supplier_id) VALUES ('queued', 1);",
    )
    .await;
    exec(&mut app, "UPDATE runs SET status = 'kitted' WHERE id = 1").await;
    let first = sink.wait_for(1, WAIT).await[0].json();
    assert_eq!(first["data"]["new"], json!({"status": "kitted"}));
    assert_eq!(first["data"]["related"], Value::Null, "{first}");
    assert_eq!(first["data"]["record"], Value::Null, "{first}");

    gw.graphql(
        "mutation($id: ID!, $etag: String!) { updateWebhookSubscription(input: { id: $id, etag: $etag, includeFullRecord: true, expand: [\"supplier_id\"] }) { webhookSubscription { id } } }",
        json!({"id": subscription["id"], "etag": subscription["_etag"]}),
    )
    .await;
    exec(&mut app, "UPDATE runs SET status = 'running' WHERE id = 1").await;
    let second = sink.wait_for(2, WAIT).await[1].json();
    assert_eq!(second["data"]["new"], json!({"status": "running"}));
    assert_eq!(
        second["data"]["related"]["supplier_id"],
        json!({"id": 1, "name": "Acme Metals"}),
        "{second}"
    );
    assert_eq!(second["data"]["record"]["status"], "running", "{second}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_none_lost_none_duplicated() {
    let (db, _app) = app_db().await;
    let gw = gateway(None, &db.url, &db.url, "").await;
    let sink = TestReceiver::start().await;
    gw.receiver_with(
        &sink.url(),
        &[("RUNS", "CREATE")],
        json!({"maxConcurrency": 32}),
    )
    .await;
    let mut writers = Vec::new();
    for w in 0..4 {
        let url = db.url.clone();
        writers.push(tokio::spawn(async move {
            let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
            for i in 0..150 {
                sqlx::query("INSERT INTO runs (status) VALUES ($1)")
                    .bind(format!("w{w}-{i}"))
                    .execute(&mut conn)
                    .await
                    .unwrap();
            }
        }));
    }
    for w in writers {
        w.await.unwrap();
    }
    sink.wait_for(600, Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut statuses: Vec<String> = bodies(&sink)
        .iter()
        .map(|b| b["data"]["new"]["status"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(statuses.len(), 600);
    statuses.sort();
    statuses.dedup();
    assert_eq!(statuses.len(), 600, "every row exactly once");
}

/// Only one importer reads the log at a time (per-row commit order across
/// gateways): while another session holds the importer's lock (as another
/// gateway's importer does for as long as it runs), nothing is imported;
/// once it lets go, every change is imported, in commit order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_importer_lock_keeps_this_importer_out() {
    let (db, mut app) = app_db().await;
    let mut other = sqlx::PgConnection::connect(&db.url).await.unwrap();
    exec(
        &mut other,
        "SELECT pg_advisory_lock(hashtext('changewire.capture.import'))",
    )
    .await;
    let gw = gateway(None, &db.url, &db.url, "").await;
    let sink = TestReceiver::start().await;
    gw.receiver_with(
        &sink.url(),
        &[("RUNS", "CREATE")],
        json!({"maxConcurrency": 1}),
    )
    .await;
    for i in 0..3 {
        exec(
            &mut app,
            &format!("INSERT INTO runs (status) VALUES ('held-{i}')"),
        )
        .await;
    }
    // Hundreds of busy polls happen in this second; none may import.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let waiting: i64 = sqlx::query_scalar("SELECT count(*) FROM changewire.logged_actions")
        .fetch_one(&mut app)
        .await
        .unwrap();
    assert_eq!(waiting, 3, "the log is untouched while the lock is held");
    assert_eq!(sink.count(), 0);
    exec(
        &mut other,
        "SELECT pg_advisory_unlock(hashtext('changewire.capture.import'))",
    )
    .await;
    sink.wait_for(3, WAIT).await;
    // Imported in commit order: event ids (drawn at fan-out) follow it. The
    // requests themselves may arrive in any order (not an ordered receiver).
    let mut events: Vec<(i64, String)> = bodies(&sink)
        .iter()
        .map(|b| {
            (
                b["event_id"].as_i64().unwrap(),
                b["data"]["new"]["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    events.sort();
    let statuses: Vec<&str> = events.iter().map(|(_, s)| s.as_str()).collect();
    assert_eq!(statuses, ["held-0", "held-1", "held-2"]);
    // The imported rows leave the log with the importer's next read.
    let url = db.url.clone();
    eventually("the imported rows leave the log", WAIT, || {
        let url = url.clone();
        async move {
            let mut conn = sqlx::PgConnection::connect(&url).await.ok()?;
            let left: i64 = sqlx::query_scalar("SELECT count(*) FROM changewire.logged_actions")
                .fetch_one(&mut conn)
                .await
                .ok()?;
            (left == 0).then_some(())
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listener_loss_and_restart_lose_nothing() {
    let (db, mut app) = app_db().await;
    let store = TestDatabase::create().await;
    let store_url = store.url.clone();
    let mut gw = gateway(
        Some(store),
        &store_url,
        &db.url,
        "[capture_options]\nnotify = true\nsweep_interval_ms = 200", // NOTIFY/LISTEN mode: losing the listener loses nothing
    )
    .await;
    let sink = TestReceiver::start().await;
    gw.receiver_with(&sink.url(), &[("RUNS", "CREATE")], json!({}))
        .await;
    exec(&mut app, "INSERT INTO runs (status) VALUES ('before')").await;
    sink.wait_for(1, WAIT).await;

    // Kill the LISTEN connection: notifications are lost, the sweep is not.
    exec(&mut app, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'LISTEN%' AND pid <> pg_backend_pid()").await;
    exec(
        &mut app,
        "INSERT INTO runs (status) VALUES ('while-listener-down')",
    )
    .await;
    sink.wait_for(2, WAIT).await;

    // Stop the gateway; commit while it is down; a new gateway picks everything up once.
    let store_db = gw.gateway.take().map(|g| async move { g.shutdown().await });
    if let Some(stop) = store_db {
        stop.await;
    }
    for i in 0..20 {
        exec(
            &mut app,
            &format!("INSERT INTO runs (status) VALUES ('while-down-{i}')"),
        )
        .await;
    }
    let gw2 = gateway(None, &store_url, &db.url, "").await;
    sink.wait_for(22, WAIT).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let statuses: Vec<String> = bodies(&sink)
        .iter()
        .map(|b| b["data"]["new"]["status"].as_str().unwrap().to_string())
        .collect();
    let mut unique = statuses.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 22, "{statuses:?}");
    assert_eq!(statuses.len(), 22, "nothing delivered twice");
    let ready =
        changewire_test_support::http::request("GET", &format!("{}/readyz", gw2.base()), &[], None)
            .await;
    assert_eq!(ready.status, 200, "{}", ready.body);
    drop(gw);
}

fn created_statuses(sink: &TestReceiver) -> Vec<String> {
    bodies(sink)
        .iter()
        .map(|b| {
            b["data"]["new"]["status"]
                .as_str()
                .unwrap_or("")
                .to_string()
        })
        .collect()
}

/// `capture uninstall --purge` and a reinstall start the log's ids again at
/// 1, while the store still holds the changes imported under the old ids:
/// the reinstalled log is a new source, and every later row arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purged_and_reinstalled_log_delivers_every_later_row() {
    let (db, mut app) = app_db().await;
    let store = TestDatabase::create().await;
    let store_url = store.url.clone();
    let mut gw = gateway(Some(store), &store_url, &db.url, "").await;
    let sink = TestReceiver::start().await;
    gw.receiver_with(&sink.url(), &[("RUNS", "CREATE")], json!({}))
        .await;
    for i in 0..3 {
        exec(
            &mut app,
            &format!("INSERT INTO runs (status) VALUES ('first-{i}')"),
        )
        .await;
    }
    sink.wait_for(3, WAIT).await;
    gw.stop().await;
    changewire_gateway::testing::uninstall_capture(&gw.config, true)
        .await
        .unwrap();

    let again = gateway(None, &store_url, &db.url, "").await;
    for i in 0..3 {
        exec(
            &mut app,
            &format!("INSERT INTO runs (status) VALUES ('after-purge-{i}')"),
        )
        .await;
    }
    sink.wait_for(6, WAIT).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let statuses = created_statuses(&sink);
    assert_eq!(statuses.len(), 6, "{statuses:?}");
    for i in 0..3 {
        assert!(
            statuses.contains(&format!("after-purge-{i}")),
            "{statuses:?}"
        );
    }
    drop(again);
}

/// Two databases captured into one store, both with the default capture
/// schema (their log ids overlap): each is a source of its own, and every
/// change of both arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_captured_databases_in_one_store_deliver_both() {
    let (first_db, mut first_app) = app_db().await;
    let (second_db, mut second_app) = app_db().await;
    let store = TestDatabase::create().await;
    let store_url = store.url.clone();
    let first = gateway(Some(store), &store_url, &first_db.url, "").await;
    let second = gateway(None, &store_url, &second_db.url, "").await;
    let sink = TestReceiver::start().await;
    first
        .receiver_with(&sink.url(), &[("RUNS", "CREATE")], json!({}))
        .await;
    for i in 0..3 {
        exec(
            &mut first_app,
            &format!("INSERT INTO runs (status) VALUES ('first-db-{i}')"),
        )
        .await;
        exec(
            &mut second_app,
            &format!("INSERT INTO runs (status) VALUES ('second-db-{i}')"),
        )
        .await;
    }
    sink.wait_for(6, WAIT).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut statuses = created_statuses(&sink);
    statuses.sort();
    assert_eq!(
        statuses,
        [
            "first-db-0",
            "first-db-1",
            "first-db-2",
            "second-db-0",
            "second-db-1",
            "second-db-2"
        ]
    );
    drop(second);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_mappings_fail_start_up_with_a_clear_message() {
    let (db, _app) = app_db().await;
    for (mapping, needle) in [
        ("RUNS = \"no_such_table\"", "does not exist"),
        ("RUNS = \"no_pk\"", "has no primary key"),
    ] {
        let toml = format!(
            "store = \"{}\"\ncapture = \"{}\"\nlisten = \"127.0.0.1:0\"\n[resources]\n{mapping}\n",
            db.url, db.url
        );
        let config = std::sync::Arc::new(changewire_gateway::Config::from_toml(&toml).unwrap());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let err = match changewire_gateway::RunningGateway::start_on(config, listener).await {
            Ok(_) => panic!("{mapping} must not start"),
            Err(e) => changewire_gateway::testing::Report(&e).to_string(),
        };
        assert!(err.contains(needle) && err.contains("RUNS"), "{err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_reports_a_capture_database_that_went_away() {
    let (db, mut app) = app_db().await;
    let store = TestDatabase::create().await;
    let store_url = store.url.clone();
    let gw = gateway(
        Some(store),
        &store_url,
        &db.url,
        "[capture_options]\nsweep_interval_ms = 100",
    )
    .await;
    let sink = TestReceiver::start().await;
    gw.receiver_with(&sink.url(), &[("RUNS", "CREATE")], json!({}))
        .await;
    // Make the capture database refuse connections, and drop the gateway's
    // (the test keeps its own connection to write during the outage).
    let name = db.url.rsplit('/').next().unwrap().to_string();
    let server = changewire_test_support::pg::server();
    let mut admin = sqlx::PgConnection::connect(&format!("{server}/postgres"))
        .await
        .unwrap();
    let app_pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut app)
        .await
        .unwrap();
    exec(
        &mut admin,
        &format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false"),
    )
    .await;
    exec(&mut admin, &format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}' AND pid <> {app_pid}")).await;
    let readyz = format!("{}/readyz", gw.base());
    let down = eventually("readyz reports the capture failure", WAIT, || async {
        let r = changewire_test_support::http::request("GET", &readyz, &[], None).await;
        let body = r.json();
        (r.status == 503 && body["components"]["capture"]["ready"] == false).then_some(body)
    })
    .await;
    assert!(
        down["components"]["capture"]["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("capture database")),
        "{down}"
    );
    // Committed meanwhile (our connection survived): picked up after reconnection.
    exec(
        &mut app,
        "INSERT INTO runs (status) VALUES ('during-outage')",
    )
    .await;
    exec(
        &mut admin,
        &format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true"),
    )
    .await;
    let got = sink.wait_for(1, Duration::from_secs(60)).await;
    assert_eq!(got[0].json()["data"]["new"]["status"], "during-outage");
    eventually("ready again", Duration::from_secs(60), || async {
        let r = changewire_test_support::http::request("GET", &readyz, &[], None).await;
        (r.status == 200).then_some(())
    })
    .await;
}
