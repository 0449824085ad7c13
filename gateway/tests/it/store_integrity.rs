//! What the foreign keys no longer do on PostgreSQL (migration 0002) the
//! store does itself: deleting a receiver or pruning deliveries takes their
//! attempts along, and no attempt is recorded for a delivery that is gone.

use std::time::Duration;

use changewire_gateway::testing::Store;
use changewire_gateway::testing::StoreUrl;
use changewire_gateway::testing::now_ms;
use changewire_gateway::testing::{AttemptRecord, Completion, Finished};
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
        delivery_id: changewire_gateway::testing::DeliveryId(1_000_000),
        created_at: 0,
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

    // Pruning finished deliveries prunes their attempts. On PostgreSQL a
    // day partition goes whole once its day is past retention; rows are
    // pruned one by one where they are older than every day partition (the
    // default partition), where these go when dated back.
    if backend == Backend::Postgres {
        changewire_gateway::testing::on_pool!(store, |pool| sqlx::raw_sql(
            "UPDATE changes SET created_at = 1; UPDATE deliveries SET created_at = 1; \
             UPDATE attempts SET started_at = 1"
        )
        .execute(pool)
        .await
        .map(|_| ()))
        .unwrap();
    }
    let pruned = store.prune(now_ms() + 1, 100).await.unwrap();
    assert_eq!(pruned, 3);
    assert_eq!(rows(backend, &url).await, (0, 0));
}

/// A store of its own on `backend`, with one receiver and no gateway
/// running (nothing leases behind the test's back).
async fn quiet_store(
    backend: Backend,
) -> (TestGateway, Store, changewire_gateway::testing::ReceiverId) {
    let mut gw = TestGateway::start(backend, "").await;
    let (rid, _) = gw
        .receiver_with("http://127.0.0.1:9/h", &[("RUNS", "UPDATE")], json!({}))
        .await;
    gw.stop().await;
    let store = Store::connect(&StoreUrl::parse("store", &gw.store_url).unwrap())
        .await
        .unwrap();
    (gw, store, rid.parse().unwrap())
}

async fn lease_one(
    store: &Store,
    receiver_id: changewire_gateway::testing::ReceiverId,
) -> changewire_gateway::testing::LeasedDelivery {
    let now = now_ms();
    let mut leased = store
        .lease(
            "test-owner",
            now,
            &[changewire_gateway::testing::LeaseRequest {
                receiver_id,
                limit: 1,
                ordered: false,
                lease_until: now + 60_000,
            }],
        )
        .await
        .unwrap();
    assert_eq!(leased.len(), 1);
    leased.remove(0)
}

fn test_change() -> changewire_gateway::testing::NewChange {
    changewire_gateway::testing::NewChange {
        source: "test".into(),
        source_key: None,
        table_name: None,
        payload: changewire_gateway::testing::ChangePayload::new(
            "RUNS",
            changewire_gateway::testing::Action::Test,
            "0",
            0,
            0,
        ),
    }
}

fn failed_attempt(url: &str) -> AttemptRecord {
    AttemptRecord {
        attempt: 1,
        request_url: url.into(),
        request_headers: "{}".into(),
        response_status: Some(500),
        outcome: "failed".into(),
        error_class: Some("status".into()),
        error: Some("HTTP 500 (expected 200)".into()),
        ..AttemptRecord::default()
    }
}

/// A delivery given back unattempted (receiver paused, shutdown) keeps the
/// error of its last attempt, so nobody loses sight of why it is failing;
/// a release with a reason (held for a plugin) shows that reason.
async fn a_release_keeps_the_last_error(backend: Backend) {
    let (_gw, store, rid) = quiet_store(backend).await;
    let id = store
        .insert_test_delivery(rid, &test_change())
        .await
        .unwrap();
    let d = lease_one(&store, rid).await;
    let retry = Finished {
        delivery_id: id,
        created_at: d.created_at,
        lease_until: d.lease_until,
        completion: Completion::Retry { at: now_ms() },
        last_status: Some(500),
        last_error: Some("HTTP 500 (expected 200)".into()),
        attempt: Some(failed_attempt("http://127.0.0.1:9/h")),
    };
    store.finish("test-owner", &[retry]).await.unwrap();
    let d = lease_one(&store, rid).await;
    let release = Finished {
        delivery_id: id,
        created_at: d.created_at,
        lease_until: d.lease_until,
        completion: Completion::Released { at: now_ms() },
        last_status: None,
        last_error: None,
        attempt: None,
    };
    store.finish("test-owner", &[release]).await.unwrap();
    let ev = store.event(id).await.unwrap().unwrap();
    assert_eq!(
        ev.status,
        changewire_gateway::testing::DeliveryStatus::Pending
    );
    assert_eq!(ev.last_error.as_deref(), Some("HTTP 500 (expected 200)"));
    assert_eq!(ev.attempts, 1, "a release is not an attempt");

    let d = lease_one(&store, rid).await;
    let held = Finished {
        delivery_id: id,
        created_at: d.created_at,
        lease_until: d.lease_until,
        completion: Completion::Released { at: now_ms() },
        last_status: None,
        last_error: Some("held: the receiver's plugin is not loaded".into()),
        attempt: None,
    };
    store.finish("test-owner", &[held]).await.unwrap();
    let ev = store.event(id).await.unwrap().unwrap();
    assert_eq!(
        ev.last_error.as_deref(),
        Some("held: the receiver's plugin is not loaded")
    );
    store.close().await;
}

/// A receiver deleted while its attempts are being recorded leaves no
/// attempt behind (PostgreSQL, where attempts have no foreign key): the
/// deletion waits for the recorder's row locks and then takes the
/// attempts along, or the recorder finds the delivery gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_attempt_outlives_its_receiver() {
    let (gw, store, _) = quiet_store(Backend::Postgres).await;
    let url = gw.store_url.clone();
    for round in 0..40 {
        let fields = store.receiver(1.into()).await.unwrap().unwrap().settings;
        let receiver = store
            .create_receiver(
                &changewire_gateway::testing::NewReceiver {
                    settings: fields.clone(),
                    headers: Vec::new(),
                    signing_key: None,
                },
                "whsec_c2VjcmV0",
                &Default::default(),
            )
            .await
            .unwrap();
        let mut batch = Vec::new();
        for _ in 0..20 {
            store
                .insert_test_delivery(receiver.id, &test_change())
                .await
                .unwrap();
        }
        let now = now_ms();
        let leased = store
            .lease(
                "test-owner",
                now,
                &[changewire_gateway::testing::LeaseRequest {
                    receiver_id: receiver.id,
                    limit: 20,
                    ordered: false,
                    lease_until: now + 60_000,
                }],
            )
            .await
            .unwrap();
        for d in &leased {
            batch.push(Finished {
                delivery_id: d.id,
                created_at: d.created_at,
                lease_until: d.lease_until,
                completion: Completion::Retry { at: now },
                last_status: Some(500),
                last_error: Some("HTTP 500 (expected 200)".into()),
                attempt: Some(failed_attempt("http://127.0.0.1:9/h")),
            });
        }
        let pause = Duration::from_micros(200 * (round % 10));
        let (recorded, deleted) = tokio::join!(store.finish("test-owner", &batch), async {
            tokio::time::sleep(pause).await;
            store.delete_receiver(receiver.id, &receiver.etag).await
        });
        recorded.unwrap();
        deleted.unwrap();
    }
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let orphans: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM changewire.attempts a WHERE NOT EXISTS (SELECT 1 FROM changewire.deliveries d WHERE d.id = a.delivery_id)",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(orphans, 0, "attempts outlived their deliveries");
    store.close().await;
}

both_backends! {
    deletes => deletes_take_attempts_along,
    release_keeps_error => a_release_keeps_the_last_error,
}
