//! Restart PostgreSQL (the store and the captured database) in the middle of
//! a 20,000-change burst: every committed change is delivered.

use std::sync::Arc;
use std::time::Duration;

use changewire_e2e::GatewayProcess;
use changewire_test_support::pg::Cluster;
use changewire_test_support::receiver::TestReceiver;
use serde_json::json;
use sqlx::Connection;

use super::kill9_no_loss::{CHANGES, all_delivered, burst, check_duplicates};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restart_mid_burst_loses_nothing() {
    let cluster = tokio::task::spawn_blocking(Cluster::start)
        .await
        .unwrap()
        .expect("a throwaway cluster");
    let url = format!("{}/postgres", cluster.url);
    let mut app = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::raw_sql("CREATE TABLE items (id BIGINT PRIMARY KEY, n INTEGER)")
        .execute(&mut app)
        .await
        .unwrap();
    drop(app);
    let sink = TestReceiver::start().await;
    let env = [
        ("CHANGEWIRE_STORE", url.clone()),
        ("CHANGEWIRE_CAPTURE", url.clone()),
        ("CHANGEWIRE_RESOURCES", "ITEMS=items".to_string()),
        ("CHANGEWIRE_DELIVERY__LEASE_MARGIN_SECS", "1".to_string()),
        (
            "CHANGEWIRE_CAPTURE_OPTIONS__SWEEP_INTERVAL_MS",
            "200".to_string(),
        ),
    ];
    let gw = GatewayProcess::start(&env).await;
    gw.register(
        &sink.url(),
        "ITEMS",
        "CREATE",
        json!({"timeoutMs": 1000, "maxConcurrency": 64}),
    )
    .await;

    let progress = Arc::new(tokio::sync::Notify::new());
    let writer = tokio::spawn(burst(url.clone(), Some(progress.clone())));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while sink.count() < CHANGES / 4 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {} delivered before the restart",
            sink.count()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let c = Arc::new(cluster);
    let stopper = c.clone();
    tokio::task::spawn_blocking(move || stopper.stop())
        .await
        .unwrap()
        .expect("stop");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let starter = c.clone();
    tokio::task::spawn_blocking(move || starter.resume())
        .await
        .unwrap()
        .expect("start");
    let ids = writer.await.unwrap();
    let seen = all_delivered(&sink, &ids, Duration::from_secs(240)).await;
    let duplicates = check_duplicates(&seen);
    eprintln!(
        "PostgreSQL restarted mid-burst: all {} committed changes delivered, {duplicates} duplicates",
        ids.len()
    );
    drop(gw);
}
