//! A receiver written only from ION's documentation (Python, verifying with
//! the documented function, deduplicating on `event_id`) gets every change
//! of a burst, through failed attempts, retries and a gateway kill.

use std::io::BufRead;
use std::process::{Command, Stdio};
use std::time::Duration;

use changewire_e2e::GatewayProcess;
use changewire_test_support::pg::TestDatabase;
use serde_json::{Value, json};
use sqlx::Connection;

const CHANGES: i64 = 2_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ion_documented_receiver_gets_everything() {
    let dir = tempfile::tempdir().unwrap();
    let (secret_file, url_file, out_file) = (
        dir.path().join("secret"),
        dir.path().join("url"),
        dir.path().join("events.jsonl"),
    );
    std::fs::write(&secret_file, "").unwrap();
    std::fs::write(&url_file, "").unwrap();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("receivers/ion_reference_receiver.py");
    let mut python = Command::new("python3")
        .arg(&script)
        .args([&secret_file, &url_file, &out_file])
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut line = String::new();
    std::io::BufReader::new(python.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = format!("http://127.0.0.1:{}/ion-events", line.trim());

    let db = TestDatabase::create().await;
    let mut app = sqlx::PgConnection::connect(&db.url).await.unwrap();
    sqlx::raw_sql("CREATE TABLE items (id BIGINT PRIMARY KEY, status TEXT, note TEXT)")
        .execute(&mut app)
        .await
        .unwrap();
    let env = [
        ("CHANGEWIRE_STORE", db.url.clone()),
        ("CHANGEWIRE_CAPTURE", db.url.clone()),
        ("CHANGEWIRE_RESOURCES", "ITEMS=items".to_string()),
        ("CHANGEWIRE_DELIVERY__LEASE_MARGIN_SECS", "1".to_string()),
    ];
    let mut gw = GatewayProcess::start(&env).await;
    let (_, secret) = gw
        .register(
            &url,
            "ITEMS",
            "CREATE",
            json!({"timeoutMs": 2000, "retryPolicy": "FIXED", "retryIntervalSeconds": 1}),
        )
        .await;
    std::fs::write(&secret_file, &secret).unwrap();
    std::fs::write(&url_file, &url).unwrap();

    // Values with Python-specific formatting: nested nulls, unicode, quotes.
    for chunk in (1..=CHANGES).collect::<Vec<_>>().chunks(100) {
        sqlx::query("INSERT INTO items (id, status, note) SELECT x, 'it''s ✓ ' || x, CASE WHEN x % 2 = 0 THEN NULL ELSE 'n\"' || x END FROM unnest($1::bigint[]) AS x")
            .bind(chunk.to_vec())
            .execute(&mut app)
            .await
            .unwrap();
        if chunk[0] == CHANGES / 2 + 1 {
            gw.restart().await; // kill -9 and restart mid-burst
        }
    }

    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    let (ids, invalid) = loop {
        let text = std::fs::read_to_string(&out_file).unwrap_or_default();
        let rows: Vec<Value> = text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        let invalid = rows.iter().filter(|r| r.get("invalid").is_some()).count();
        let mut ids: Vec<i64> = rows.iter().filter_map(|r| r["id"].as_i64()).collect();
        ids.sort_unstable();
        ids.dedup();
        if ids.len() as i64 == CHANGES || tokio::time::Instant::now() > deadline {
            break (ids, invalid);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let _ = python.kill();
    let _ = python.wait();
    assert_eq!(
        invalid, 0,
        "every signature verified with the documented function"
    );
    assert_eq!(ids.len() as i64, CHANGES, "every change arrived");
}
