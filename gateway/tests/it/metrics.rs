//! `/metrics` lists every metric family from the first scrape, before any
//! event, with the receivers that exist at start.

use changewire_test_support::Backend;
use changewire_test_support::gateway::{TestGateway, store_for};
use serde_json::json;

async fn families_before_any_event(backend: Backend) {
    let (store_url, db, dir) = store_for(backend).await;
    // A receiver that exists when the gateway under test starts.
    let mut first =
        TestGateway::start_with_store(store_url.clone(), None, tempfile::tempdir().unwrap(), "")
            .await;
    let (receiver, _) = first
        .receiver_with("http://127.0.0.1:9/hook", &[("RUNS", "CREATE")], json!({}))
        .await;
    first.stop().await;

    let gw = TestGateway::start_with_store(store_url, db, dir, "").await;
    let metrics =
        changewire_test_support::http::request("GET", &format!("{}/metrics", gw.base()), &[], None)
            .await;
    assert_eq!(metrics.status, 200);
    let text = metrics.body;
    for family in changewire_gateway::testing::metric_families() {
        assert!(
            text.contains(&format!("# TYPE {family} ")),
            "{family} is missing:\n{text}"
        );
    }
    // The series of a receiver known at start (other tests in this process
    // share the recorder and may have set the values: only presence is
    // checked here; the zeros are checked in `telemetry`'s unit test).
    for series in [
        format!("changewire_queue_depth{{receiver=\"{receiver}\"}} "),
        format!("changewire_receiver_circuit_open{{receiver=\"{receiver}\"}} "),
        format!("changewire_attempt_duration_seconds_count{{receiver=\"{receiver}\"}} "),
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(&series)),
            "{series} is missing:\n{text}"
        );
    }
}

both_backends! {
    metrics_list_every_family_before_any_event => families_before_any_event,
}
