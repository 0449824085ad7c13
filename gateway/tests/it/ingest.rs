//! Producer events published concurrently are committed in groups: each
//! request still gets its own change, its own delivery count and an exact
//! duplicate flag, and every delivery arrives.

use std::collections::HashSet;
use std::time::Duration;

use changewire_test_support::Backend;
use changewire_test_support::gateway::TestGateway;
use changewire_test_support::receiver::TestReceiver;
use serde_json::{Value, json};

async fn concurrent_publishes_are_answered_one_by_one(backend: Backend) {
    let gw = TestGateway::start(backend, "").await;
    let sink = TestReceiver::start().await;
    gw.receiver_with(&sink.url(), &[("RUNS", "UPDATE")], json!({}))
        .await;
    // 20 events with their own key, 10 repeating one key, 10 without a key.
    let events: Vec<Value> = (0..40)
        .map(|i| {
            let mut e = json!({"resource": "RUNS", "action": "UPDATE", "id": i, "new": {"n": i}});
            match i {
                0..20 => e["idempotencyKey"] = json!(format!("key-{i}")),
                20..30 => e["idempotencyKey"] = json!("same"),
                _ => {}
            }
            e
        })
        .collect();
    let answers = futures_util::future::join_all(events.into_iter().map(|e| {
        let gw = &gw;
        async move { gw.publish(e).await }
    }))
    .await;
    let mut ids = HashSet::new();
    let mut duplicates = 0;
    for (i, answer) in answers.iter().enumerate() {
        let body = answer.json();
        // 202: stored and fanned out; 200: a duplicate, nothing stored.
        let expected = if body["duplicate"] == true { 200 } else { 202 };
        assert_eq!(answer.status, expected, "{i}: {}", answer.body);
        if body["duplicate"] == true {
            assert!(
                (20..30).contains(&i),
                "only repeats of `same` are duplicates, not {i}"
            );
            assert!(body["changeId"].is_null());
            assert_eq!(body["deliveries"], 0);
            duplicates += 1;
        } else {
            assert_eq!(body["deliveries"], 1, "{i}: {body}");
            assert!(
                ids.insert(body["changeId"].as_str().unwrap().to_string()),
                "change ids are unique"
            );
        }
    }
    assert_eq!(duplicates, 9, "one of the ten `same` events is stored");
    assert_eq!(ids.len(), 31);
    let got = sink.wait_for(31, Duration::from_secs(20)).await;
    let rows: HashSet<i64> = got
        .iter()
        .map(|r| r.json()["data"]["id"].as_i64().unwrap())
        .collect();
    assert_eq!(rows.len(), 31);
}

both_backends! {
    group_commit => concurrent_publishes_are_answered_one_by_one,
}

async fn a_list_of_events_is_one_transaction(backend: Backend) {
    let gw = TestGateway::start(backend, "").await;
    let sink = TestReceiver::start().await;
    gw.receiver_with(&sink.url(), &[("RUNS", "UPDATE")], json!({}))
        .await;
    let event = |i: i64| json!({"resource": "RUNS", "action": "UPDATE", "id": i, "new": {"n": i}});
    // One bad event refuses the whole list, names it, and stores nothing.
    let mut bad = event(2);
    bad["action"] = json!("upsert");
    let refused = gw.publish(json!([event(1), bad, event(3)])).await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(refused.body.contains("[1].action"), "{}", refused.body);
    // A good list: answers in order, a key repeated inside the list is a duplicate.
    let mut first = event(4);
    first["idempotencyKey"] = json!("k");
    let mut again = event(5);
    again["idempotencyKey"] = json!("k");
    let accepted = gw.publish(json!([event(1), first, again, event(3)])).await;
    assert_eq!(accepted.status, 202, "{}", accepted.body);
    let answers = accepted.json();
    let duplicates: Vec<bool> = answers
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["duplicate"] == true)
        .collect();
    assert_eq!(duplicates, vec![false, false, true, false]);
    let got = sink.wait_for(3, Duration::from_secs(20)).await;
    let mut rows: Vec<i64> = got
        .iter()
        .map(|r| r.json()["data"]["id"].as_i64().unwrap())
        .collect();
    rows.sort_unstable();
    assert_eq!(
        rows,
        vec![1, 3, 4],
        "nothing of the refused list was stored"
    );
    // All duplicates: 200.
    let mut only = event(6);
    only["idempotencyKey"] = json!("k");
    assert_eq!(gw.publish(json!([only])).await.status, 200);
}

both_backends! {
    list => a_list_of_events_is_one_transaction,
}
