//! SQLite capture: another process's writes to an app's SQLite file become
//! webhooks, with nothing but the file.

use std::str::FromStr;
use std::time::Duration;

use changewire_test_support::gateway::TestGateway;
use changewire_test_support::receiver::TestReceiver;
use serde_json::{Value, json};
use sqlx::ConnectOptions;
use sqlx::sqlite::SqliteConnectOptions;

const WAIT: Duration = Duration::from_secs(20);

async fn app(path: &std::path::Path) -> sqlx::SqliteConnection {
    let mut conn = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))
        .unwrap()
        .create_if_missing(true)
        .connect()
        .await
        .unwrap();
    sqlx::raw_sql(
        "CREATE TABLE suppliers (id INTEGER PRIMARY KEY, name TEXT);
         CREATE TABLE runs (id INTEGER PRIMARY KEY, status TEXT NOT NULL, note TEXT, qty REAL, supplier_id INTEGER REFERENCES suppliers (id));
         CREATE TABLE no_pk (a INTEGER);",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    conn
}

async fn exec(conn: &mut sqlx::SqliteConnection, sql: &str) {
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
        .execute(conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_writes_become_webhooks() {
    let dir = tempfile::tempdir().unwrap();
    let app_path = dir.path().join("app.db");
    let mut conn = app(&app_path).await;
    let capture = format!(
        "capture = \"sqlite://{}\"\n[resources]\nRUNS = \"runs\"\n",
        app_path.display()
    );
    let mut gw = TestGateway::start(changewire_test_support::Backend::Sqlite, &capture).await;
    let sink = TestReceiver::start().await;
    let (rid, _) = gw
        .receiver_with(
            &sink.url(),
            &[("RUNS", "CREATE"), ("RUNS", "DELETE")],
            json!({}),
        )
        .await;
    gw.graphql(
        "mutation($r: ID!) { createWebhookSubscription(input: { receiverId: $r, resource: RUNS, action: UPDATE, includeFullRecord: true, expand: [\"supplier_id\"] }) { webhookSubscription { id } } }",
        json!({"r": rid}),
    )
    .await;

    exec(&mut conn, "INSERT INTO suppliers (id, name) VALUES (9, 'Acme'); INSERT INTO runs (id, status, qty) VALUES (1, 'queued', 1.5)").await;
    let created = sink.wait_for(1, WAIT).await[0].json();
    assert_eq!(created["action"], "create");
    assert_eq!(created["data"]["id"], 1);
    assert_eq!(
        created["data"]["new"],
        json!({"id": 1, "status": "queued", "note": null, "qty": 1.5, "supplier_id": null})
    );

    exec(
        &mut conn,
        "UPDATE runs SET note = 'n', supplier_id = 9 WHERE id = 1",
    )
    .await;
    let updated = sink.wait_for(2, WAIT).await[1].json();
    assert_eq!(
        updated["data"]["old"],
        json!({"note": null, "supplier_id": null})
    );
    assert_eq!(
        updated["data"]["new"],
        json!({"note": "n", "supplier_id": 9})
    );
    assert_eq!(updated["data"]["record"]["status"], "queued");
    assert_eq!(
        updated["data"]["related"]["supplier_id"],
        json!({"id": 9, "name": "Acme"})
    );

    exec(&mut conn, "UPDATE runs SET status = status WHERE id = 1").await;
    exec(
        &mut conn,
        "BEGIN; UPDATE runs SET status = 'never' WHERE id = 1; ROLLBACK;",
    )
    .await;
    exec(&mut conn, "DELETE FROM runs WHERE id = 1").await;
    let got = sink.wait_for(3, WAIT).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sink.count(), 3, "no-op update and rollback produce nothing");
    assert_eq!(got[2].json()["action"], "delete");

    // Restart mid-stream: writes while the gateway is down arrive once.
    gw.stop().await;
    for i in 0..10 {
        exec(
            &mut conn,
            &format!("INSERT INTO runs (status) VALUES ('down-{i}')"),
        )
        .await;
    }
    let gw2 = TestGateway::start_with_store(
        gw.store_url.clone(),
        None,
        tempfile::tempdir().unwrap(),
        &capture,
    )
    .await;
    sink.wait_for(13, WAIT).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut statuses: Vec<Value> = sink.received()[3..]
        .iter()
        .map(|r| r.json()["data"]["new"]["status"].clone())
        .collect();
    statuses.dedup();
    assert_eq!(statuses.len(), 10, "{statuses:?}");
    drop(gw2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_mappings_fail_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let app_path = dir.path().join("app.db");
    let _conn = app(&app_path).await;
    for (mapping, needle) in [
        ("RUNS = \"nope\"", "does not exist"),
        ("RUNS = \"no_pk\"", "no primary key"),
    ] {
        let toml = format!(
            "store = \"sqlite://{}\"\ncapture = \"sqlite://{}\"\n[resources]\n{mapping}\n",
            dir.path().join("store.db").display(),
            app_path.display()
        );
        let config = std::sync::Arc::new(changewire_gateway::Config::from_toml(&toml).unwrap());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let err = match changewire_gateway::RunningGateway::start_on(config, listener).await {
            Ok(_) => panic!("must not start"),
            Err(e) => changewire_gateway::testing::Report(&e).to_string(),
        };
        assert!(err.contains(needle), "{err}");
    }
}

/// A gateway capturing `app_path` on the store of `store_of` (or a new one).
async fn capturing(app_path: &std::path::Path, store_of: Option<&TestGateway>) -> TestGateway {
    let capture = format!(
        "capture = \"sqlite://{}\"\n[resources]\nRUNS = \"runs\"\n",
        app_path.display()
    );
    match store_of {
        None => TestGateway::start(changewire_test_support::Backend::Sqlite, &capture).await,
        Some(gw) => {
            TestGateway::start_with_store(
                gw.store_url.clone(),
                None,
                tempfile::tempdir().unwrap(),
                &capture,
            )
            .await
        }
    }
}

fn created_statuses(sink: &TestReceiver) -> Vec<String> {
    sink.received()
        .iter()
        .map(|r| {
            r.json()["data"]["new"]["status"]
                .as_str()
                .unwrap_or("")
                .to_string()
        })
        .collect()
}

/// `capture uninstall --purge` and a reinstall start the log's ids again at
/// 1: the reinstalled log is a new source, and every later row arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purged_and_reinstalled_log_delivers_every_later_row() {
    let dir = tempfile::tempdir().unwrap();
    let app_path = dir.path().join("app.db");
    let mut conn = app(&app_path).await;
    let mut gw = capturing(&app_path, None).await;
    let sink = TestReceiver::start().await;
    gw.receiver_with(&sink.url(), &[("RUNS", "CREATE")], json!({}))
        .await;
    for i in 0..5 {
        exec(
            &mut conn,
            &format!("INSERT INTO runs (status) VALUES ('first-{i}')"),
        )
        .await;
    }
    sink.wait_for(5, WAIT).await;
    gw.stop().await;
    changewire_gateway::testing::uninstall_capture(&gw.config, true)
        .await
        .unwrap();

    let again = capturing(&app_path, Some(&gw)).await;
    for i in 0..3 {
        exec(
            &mut conn,
            &format!("INSERT INTO runs (status) VALUES ('after-purge-{i}')"),
        )
        .await;
    }
    sink.wait_for(8, WAIT).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let statuses = created_statuses(&sink);
    assert_eq!(statuses.len(), 8, "{statuses:?}");
    for i in 0..3 {
        assert!(
            statuses.contains(&format!("after-purge-{i}")),
            "{statuses:?}"
        );
    }
    drop(again);
}

/// A captured file restored from a backup goes back below what was
/// imported: the gateway notices, reads the log again (rows imported
/// before are recognised), and rows written after the restore arrive even
/// though their ids were used before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restored_log_is_read_again_and_no_new_row_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let app_path = dir.path().join("app.db");
    let backup = dir.path().join("backup.db");
    let mut conn = app(&app_path).await;
    let mut gw = capturing(&app_path, None).await;
    let sink = TestReceiver::start().await;
    gw.receiver_with(&sink.url(), &[("RUNS", "CREATE")], json!({}))
        .await;
    for i in 0..2 {
        exec(
            &mut conn,
            &format!("INSERT INTO runs (status) VALUES ('before-backup-{i}')"),
        )
        .await;
    }
    sink.wait_for(2, WAIT).await;
    exec(&mut conn, &format!("VACUUM INTO '{}'", backup.display())).await;
    for i in 0..3 {
        exec(
            &mut conn,
            &format!("INSERT INTO runs (status) VALUES ('lost-by-restore-{i}')"),
        )
        .await;
    }
    sink.wait_for(5, WAIT).await;
    gw.stop().await;
    drop(conn);
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", app_path.display()));
    }
    std::fs::copy(&backup, &app_path).unwrap();

    let mut conn = SqliteConnectOptions::from_str(&format!("sqlite://{}", app_path.display()))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let again = capturing(&app_path, Some(&gw)).await;
    for i in 0..2 {
        exec(
            &mut conn,
            &format!("INSERT INTO runs (status) VALUES ('after-restore-{i}')"),
        )
        .await;
    }
    sink.wait_for(7, WAIT).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let statuses = created_statuses(&sink);
    assert_eq!(
        statuses.len(),
        7,
        "imported rows are not sent again: {statuses:?}"
    );
    for i in 0..2 {
        assert!(
            statuses.contains(&format!("after-restore-{i}")),
            "{statuses:?}"
        );
    }
    drop(again);
}

/// Capture that cannot read its log falls behind: operators hear
/// `capture.lagging` once it has been behind longer than the threshold.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capture_that_falls_behind_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let app_path = dir.path().join("app.db");
    let mut conn = app(&app_path).await;
    let capture = format!(
        "capture = \"sqlite://{}\"\n[resources]\nRUNS = \"runs\"\n[operational]\ncapture_lag_secs = 1\n",
        app_path.display()
    );
    let gw = TestGateway::start(changewire_test_support::Backend::Sqlite, &capture).await;
    let ops = TestReceiver::start().await;
    crate::operator(&gw, &ops, &["CAPTURE_LAGGING"]).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        crate::of_type(&ops, "capture.lagging").is_empty(),
        "an idle, caught-up capture is not lagging"
    );
    // The log is dropped under the importer: every import fails from now on.
    exec(&mut conn, "DROP TABLE _changewire_log").await;
    exec(&mut conn, "CREATE TABLE touch (a INTEGER)").await;
    let lagging = changewire_test_support::eventually("capture.lagging", WAIT, || async {
        crate::of_type(&ops, "capture.lagging").into_iter().next()
    })
    .await;
    let body = lagging.json();
    assert!(body["data"]["behindSeconds"].as_u64() >= Some(1), "{body}");
    assert_eq!(body["data"]["thresholdSeconds"], 1);
}
