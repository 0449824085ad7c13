//! What the foreign keys no longer do on PostgreSQL (migration 0002) the
//! store does itself: deleting a receiver or pruning deliveries takes their
//! attempts along, and no attempt is recorded for a delivery that is gone.

use std::time::Duration;

use changewire_gateway::config::StoreUrl;
use changewire_gateway::store::Store;
use changewire_gateway::store::deliveries::{AttemptRecord, Completion, Finished};
use changewire_gateway::store::now_ms;
use changewire_test_support::gateway::TestGateway;
use changewire_test_support::receiver::TestReceiver;
use changewire_test_support::{Backend, eventually};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(20);

/// (deliveries, attempts) rows in the store.
async fn rows(backend: Backend, url: &str) -> (i64, i64) {
    match backend {
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(url).await.unwrap();
            sqlx::query_as(
                "SELECT (SELECT COUNT(*) FROM changewire.deliveries), (SELECT COUNT(*) FROM changewire.attempts)",
            )
            .fetch_one(&pool)
            .await
            .unwrap()
        }
        Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(url).await.unwrap();
            sqlx::query_as(
                "SELECT (SELECT COUNT(*) FROM deliveries), (SELECT COUNT(*) FROM attempts)",
            )
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    }
}

async fn publish_and_deliver(gw: &TestGateway, sink: &TestReceiver, n: usize) {
    for i in 0..n {
        let event =
            json!({"resource": "RUNS", "action": "UPDATE", "id": i, "new": {"status": "done"}});
        assert_eq!(gw.publish(event).await.status, 202);
    }
    sink.wait_for(n, WAIT).await;
}

async fn deletes_take_attempts_along(backend: Backend) {
    let gw = TestGateway::start(backend, "").await;
    let sink = TestReceiver::start().await;
    let (rid, _) = gw
        .receiver_with(&sink.url(), &[("RUNS", "UPDATE")], json!({}))
        .await;
    let (_, _) = gw
        .receiver_with(&sink.url(), &[("RUNS", "UPDATE")], json!({}))
        .await;
    publish_and_deliver(&gw, &sink, 3).await;
    let url = gw.store_url.clone();
    eventually("every attempt recorded", WAIT, || async {
        (rows(backend, &url).await == (6, 6)).then_some(())
    })
    .await;

    // Deleting one receiver deletes its deliveries and their attempts only.
    let etag = gw
        .graphql(
            "query($id: ID!) { webhookReceiver(id: $id) { _etag } }",
            json!({"id": rid}),
        )
        .await["webhookReceiver"]["_etag"]
        .clone();
    gw.graphql(
        "mutation($i: DeleteWebhookReceiverInput!) { deleteWebhookReceiver(input: $i) { id } }",
        json!({"i": {"id": rid, "etag": etag}}),
    )
    .await;
    assert_eq!(rows(backend, &url).await, (3, 3));

    let store = Store::connect(&StoreUrl::parse("store", &url).unwrap())
        .await
        .unwrap();
    // An attempt of a delivery that no longer exists is not recorded.
    let gone = Finished {
        delivery_id: 1_000_000,
        lease_until: 1,
        completion: Completion::Succeeded,
        last_status: Some(200),
        last_error: None,
        attempt: Some(AttemptRecord {
            attempt: 1,
            request_url: sink.url(),
            request_headers: "{}".into(),
            outcome: "succeeded".into(),
            ..AttemptRecord::default()
        }),
    };
    store.finish("nobody", &[gone]).await.unwrap();
    assert_eq!(rows(backend, &url).await, (3, 3));

    // Pruning finished deliveries prunes their attempts.
    let pruned = store.prune(now_ms() + 1, 100).await.unwrap();
    assert_eq!(pruned, 3);
    assert_eq!(rows(backend, &url).await, (0, 0));
}

both_backends! {
    deletes => deletes_take_attempts_along,
}
