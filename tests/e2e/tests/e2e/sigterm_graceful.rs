//! SIGTERM lets in-flight attempts finish (and be recorded) within the grace
//! period, then exits 0.

use std::str::FromStr;
use std::time::Duration;

use changewire_e2e::GatewayProcess;
use changewire_test_support::receiver::TestReceiver;
use serde_json::json;
use sqlx::ConnectOptions;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_in_flight_attempts() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}", dir.path().join("store.db").display());
    let sink = TestReceiver::start().await;
    sink.set_delay(Duration::from_millis(1500));
    let mut gw = GatewayProcess::start(&[
        ("CHANGEWIRE_STORE", store.clone()),
        ("CHANGEWIRE_DELIVERY__SHUTDOWN_GRACE_SECS", "5".into()),
    ])
    .await;
    gw.register(&sink.url(), "RUNS", "CREATE", json!({})).await;
    for i in 0..3 {
        gw.graphql(
            "mutation($id: JSON!) { publishEvent(input: { resource: RUNS, action: CREATE, id: $id, new: {status: \"x\"} }) { deliveries } }",
            json!({"id": i}),
        )
        .await;
    }
    sink.wait_for(3, Duration::from_secs(10)).await;
    let started = std::time::Instant::now();
    let status = gw
        .sigterm(Duration::from_secs(10))
        .expect("exited within the grace period");
    assert!(status.success(), "{status}");
    assert!(
        started.elapsed() >= Duration::from_millis(1000),
        "it waited for the in-flight attempts"
    );
    let mut conn = sqlx::sqlite::SqliteConnectOptions::from_str(&store)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let statuses: Vec<String> = sqlx::query_scalar("SELECT status FROM deliveries ORDER BY id")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        statuses,
        ["succeeded", "succeeded", "succeeded"],
        "in-flight attempts were recorded"
    );
}
