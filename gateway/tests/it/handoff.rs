//! In-process hand-off: fan-out writes deliveries already leased to this
//! process, within each receiver's claim, and leaves the rest in the queue.

use changewire_gateway::testing::LeaseRequest;
use changewire_gateway::testing::ReceiverId;
use changewire_gateway::testing::Store;
use changewire_gateway::testing::StoreUrl;
use changewire_gateway::testing::now_ms;
use changewire_gateway::testing::{Action, ChangePayload};
use changewire_gateway::testing::{Claim, Claims, NeedsSeen, NewChange, StoreError};
use changewire_test_support::Backend;
use changewire_test_support::gateway::TestGateway;
use serde_json::json;

fn change(key: i64) -> NewChange {
    let mut payload = ChangePayload::new("RUNS", Action::Update, key.to_string(), key, 1);
    payload.new = Some(r#"{"status": "done"}"#.into());
    NewChange {
        source: "test-handoff".into(),
        source_key: Some(key.to_string()),
        table_name: None,
        payload,
    }
}

async fn fan_out_claims_within_limits(backend: Backend) {
    let mut gw = TestGateway::start(backend, "").await;
    let url = "http://127.0.0.1:9/unused";
    let a: ReceiverId = gw
        .receiver_with(url, &[("RUNS", "UPDATE")], json!({}))
        .await
        .0
        .parse()
        .unwrap();
    let b: ReceiverId = gw
        .receiver_with(url, &[("RUNS", "UPDATE")], json!({}))
        .await
        .0
        .parse()
        .unwrap();
    gw.stop().await; // no engine: only this test touches the queue
    let store_url = StoreUrl::parse("store", &gw.store_url).unwrap();
    let store = Store::connect(&store_url).await.unwrap();

    let lease_until = now_ms() + 60_000;
    let claims = Claims {
        owner: "me".into(),
        receivers: vec![Claim {
            receiver_id: a,
            limit: 2,
            lease_until,
        }],
    };
    let changes: Vec<NewChange> = (1..=3).map(change).collect();
    let outcome = store.fan_out(&changes, Some(&claims), None).await.unwrap();
    assert_eq!(outcome.changes, 3);
    assert_eq!(outcome.deliveries, 6, "3 changes × 2 receivers");
    // A's first two deliveries are born leased, in order; B gets none.
    assert_eq!(outcome.claimed.len(), 2, "{:?}", outcome.claimed);
    assert!(
        outcome
            .claimed
            .iter()
            .all(|d| d.receiver_id == a && d.lease_until == lease_until)
    );
    assert_eq!(outcome.claimed[0].payload.row_id, "1");
    assert_eq!(outcome.claimed[1].payload.row_id, "2");
    assert!(outcome.claimed[0].id < outcome.claimed[1].id);
    assert_eq!(
        outcome.claimed[0].payload.new.as_deref(),
        Some(r#"{"status": "done"}"#),
        "ready to render"
    );
    assert_eq!(outcome.unclaimed_receivers, vec![a, b]);

    // The queue holds only what was not claimed: one for A, three for B.
    let now = now_ms();
    let request = |receiver_id| LeaseRequest {
        receiver_id,
        limit: 10,
        ordered: false,
        lease_until: now + 600_000,
    };
    let leased = store
        .lease("other", now, &[request(a), request(b)])
        .await
        .unwrap();
    let for_a: Vec<_> = leased
        .iter()
        .filter(|d| d.receiver_id == a)
        .map(|d| d.payload.row_id.as_str())
        .collect();
    assert_eq!(for_a, vec!["3"], "the claimed two are leased already");
    assert_eq!(leased.iter().filter(|d| d.receiver_id == b).count(), 3);

    // Once the claimed leases end, anyone may lease them (crash recovery).
    let later = lease_until + 1;
    let retaken = store
        .lease(
            "other",
            later,
            &[LeaseRequest {
                lease_until: later + 1000,
                ..request(a)
            }],
        )
        .await
        .unwrap();
    let ids: Vec<_> = retaken.iter().map(|d| d.payload.row_id.as_str()).collect();
    assert_eq!(ids, vec!["1", "2"]);

    // Fanning out the same changes again writes and claims nothing.
    let again = store.fan_out(&changes, Some(&claims), None).await.unwrap();
    assert_eq!(
        (again.changes, again.deliveries, again.claimed.len()),
        (0, 0, 0)
    );
    assert!(again.unclaimed_receivers.is_empty());
}

both_backends! {
    claims => fan_out_claims_within_limits,
}

/// A fan-out given the subscriptions' needs as its caller last read them
/// (PostgreSQL) stores nothing when a subscription to the batch's resources
/// now asks for more, and stores the batch when the needs listed cover
/// every such subscription (more than there are is fine).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fan_out_with_stale_needs_stores_nothing() {
    let mut gw = TestGateway::start(Backend::Postgres, "").await;
    let url = "http://127.0.0.1:9/unused";
    gw.receiver_with(url, &[("RUNS", "UPDATE")], json!({}))
        .await;
    let (rid, _) = gw.receiver_with(url, &[], json!({})).await;
    gw.graphql(
        "mutation($r: ID!) { createWebhookSubscription(input: { receiverId: $r, resource: RUNS, action: UPDATE, includeFullRecord: true }) { webhookSubscription { id } } }",
        json!({"r": rid}),
    )
    .await;
    gw.stop().await;
    let store = Store::connect(&StoreUrl::parse("store", &gw.store_url).unwrap())
        .await
        .unwrap();
    let changewire_gateway::testing::Backend::Postgres(pool) = store.backend() else {
        panic!("a PostgreSQL store")
    };
    let stored = || async {
        sqlx::query_as::<_, (i64, i64)>(
            "SELECT (SELECT count(*) FROM changes), (SELECT count(*) FROM deliveries)",
        )
        .fetch_one(pool)
        .await
        .unwrap()
    };

    let mut unaware = NeedsSeen::default();
    unaware.push("RUNS", r#"["supplier_id"]"#, false);
    unaware.push("OTHER", "[]", true);
    let refused = store.fan_out(&[change(1)], None, Some(&unaware)).await;
    assert!(
        matches!(refused, Err(StoreError::NeedsChanged)),
        "{refused:?}"
    );
    assert_eq!(stored().await, (0, 0), "nothing stored");

    let mut aware = unaware.clone();
    aware.push("RUNS", "[]", true);
    let outcome = store
        .fan_out(&[change(1)], None, Some(&aware))
        .await
        .unwrap();
    assert_eq!((outcome.changes, outcome.deliveries), (1, 2));
    assert_eq!(stored().await, (1, 2));

    // Without needs there is nothing to check.
    let unchecked = store.fan_out(&[change(2)], None, None).await.unwrap();
    assert_eq!(unchecked.changes, 1);
}
