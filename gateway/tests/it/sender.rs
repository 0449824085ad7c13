//! What a sender owes its operators and receivers: operational webhooks,
//! 410 Gone, "slow down" answers, rate limits shared across processes, and
//! auto-disable.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use changewire_core::{Scheme, VerifyOptions, verify_request};
use changewire_test_support::gateway::TestGateway;
use changewire_test_support::receiver::{Received, TestReceiver};
use changewire_test_support::{Backend, eventually};

use crate::{of_type, operator};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(20);

fn run_event(id: i64) -> Value {
    json!({"resource": "RUNS", "action": "UPDATE", "id": id, "old": {"status": "a"}, "new": {"status": "b"}})
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

async fn receiver_state(gw: &TestGateway, id: &str) -> Value {
    let q = "query($id: ID!) { webhookReceiver(id: $id) { paused pausedReason circuitState consecutiveFailures failingSince } }";
    gw.graphql(q, json!({"id": id})).await["webhookReceiver"].clone()
}

async fn an_operator_hears_of_exhausted_deliveries_and_gone_receivers(backend: Backend) {
    let gw = TestGateway::start(backend, "").await;
    let ops = TestReceiver::start().await;
    let (ops_id, ops_secret) =
        operator(&gw, &ops, &["DELIVERY_EXHAUSTED", "RECEIVER_DISABLED"]).await;

    let failing = TestReceiver::start().await;
    failing.set_status(500);
    let (failing_id, _) = gw
        .receiver_with(
            &failing.url(),
            &[("RUNS", "UPDATE")],
            json!({"name": "erp", "maxAttempts": 1}),
        )
        .await;
    let gone = TestReceiver::start().await;
    gone.set_status(410);
    let (gone_id, _) = gw
        .receiver_with(
            &gone.url(),
            &[("RUNS", "UPDATE")],
            json!({"name": "old-crm"}),
        )
        .await;
    gw.publish(run_event(1)).await;

    let exhausted = eventually("delivery.exhausted reaches the operator", WAIT, || async {
        of_type(&ops, "delivery.exhausted").into_iter().next()
    })
    .await;
    let body = exhausted.json();
    assert_eq!(body["data"]["receiverId"], failing_id.as_str(), "{body}");
    assert_eq!(body["data"]["receiverName"], "erp");
    assert_eq!(body["data"]["attempts"], 1);
    assert_eq!(body["data"]["lastStatus"], 500);
    assert!(
        body["data"]["lastError"]
            .as_str()
            .unwrap()
            .contains("HTTP 500"),
        "{body}"
    );
    assert!(body["data"]["eventId"].as_str().is_some(), "{body}");
    assert_eq!(
        body["data"]["receiverConsoleUrl"],
        format!("/console/receivers/{failing_id}")
    );
    assert!(body["timestamp"].as_str().unwrap().ends_with('Z'));
    // Signed like any delivery.
    let scheme = verify_request(
        &ops_secret,
        &ops.url(),
        &exhausted.body,
        &exhausted.headers,
        now_secs(),
        &VerifyOptions::default(),
    )
    .expect("the operational delivery verifies");
    assert_eq!(scheme, Scheme::Standard);

    let disabled = eventually("receiver.disabled reaches the operator", WAIT, || async {
        of_type(&ops, "receiver.disabled").into_iter().next()
    })
    .await;
    let body = disabled.json();
    assert_eq!(body["data"]["receiverId"], gone_id.as_str(), "{body}");
    assert_eq!(body["data"]["cause"], "gone");
    // The 410 receiver is disabled, with the reason in the API, and its
    // delivery waits (not failed) until it is resumed by hand.
    let state = receiver_state(&gw, &gone_id).await;
    assert_eq!(state["paused"], true, "{state}");
    assert!(
        state["pausedReason"].as_str().unwrap().contains("410 Gone"),
        "{state}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(gone.count(), 1, "nothing more is sent to a gone receiver");
    let q = "query($r: Int) { webhookEvents(filters: { receiverId: $r }) { status } }";
    let events = gw
        .graphql(q, json!({"r": gone_id.parse::<i64>().unwrap()}))
        .await;
    assert_eq!(events["webhookEvents"][0]["status"], "pending", "{events}");
    gone.set_status(200);
    let etag = gw
        .graphql(
            "query($id: ID!) { webhookReceiver(id: $id) { _etag } }",
            json!({"id": gone_id}),
        )
        .await["webhookReceiver"]["_etag"]
        .as_str()
        .unwrap()
        .to_string();
    gw.graphql(
        "mutation($id: ID!, $etag: String!) { resumeWebhookReceiver(input: { id: $id, etag: $etag }) { webhookReceiver { paused } } }",
        json!({"id": gone_id, "etag": etag}),
    )
    .await;
    gone.wait_for(2, WAIT).await;
    // The operator's receiver itself never got anything else.
    assert_eq!(
        ops.count(),
        2,
        "{:?}",
        ops.received()
            .iter()
            .map(Received::json)
            .collect::<Vec<_>>()
    );
    let listed = gw
        .graphql(
            "query($r: ID) { operationalSubscriptions(receiverId: $r) { id eventTypes } }",
            json!({"r": ops_id}),
        )
        .await;
    assert_eq!(
        listed["operationalSubscriptions"][0]["eventTypes"],
        json!(["RECEIVER_DISABLED", "DELIVERY_EXHAUSTED"])
    );
}

async fn events_about_a_receiver_never_reach_it_and_bursts_coalesce(backend: Backend) {
    let gw = TestGateway::start(backend, "[operational]\ncoalesce_secs = 2").await;
    // The operator's own receiver fails: the event about that is not sent to it.
    let ops = TestReceiver::start().await;
    ops.set_status(500);
    let (ops_id, _) = gw
        .receiver_with(&ops.url(), &[], json!({"maxAttempts": 1}))
        .await;
    let other_ops = TestReceiver::start().await;
    let (other_ops_id, _) = operator(&gw, &other_ops, &["DELIVERY_EXHAUSTED"]).await;
    gw.graphql(
        "mutation($r: ID!) { createOperationalSubscription(input: { receiverId: $r, eventTypes: [DELIVERY_EXHAUSTED] }) { operationalSubscription { id } } }",
        json!({"r": ops_id}),
    )
    .await;

    let failing = TestReceiver::start().await;
    failing.set_status(500);
    let (failing_id, _) = gw
        .receiver_with(
            &failing.url(),
            &[("RUNS", "UPDATE")],
            json!({"maxAttempts": 1}),
        )
        .await;
    let started = Instant::now();
    for i in 0..5 {
        gw.publish(run_event(i)).await;
    }
    failing.wait_for(5, WAIT).await;
    // other_ops hears of `failing` once at once and once more with the count,
    // and of `ops` failing to take its own event; `ops` never hears of itself.
    let about = |id: &str| {
        let id = id.to_string();
        move |r: &Received| r.json()["data"]["receiverId"] == id.as_str()
    };
    let coalesced = eventually("the coalesced event", WAIT, || async {
        let got: Vec<Received> = of_type(&other_ops, "delivery.exhausted")
            .into_iter()
            .filter(about(&failing_id))
            .collect();
        (got.len() == 2).then_some(got)
    })
    .await;
    assert!(coalesced[0].json()["data"].get("coalesced").is_none());
    assert_eq!(
        coalesced[1].json()["data"]["coalesced"],
        4,
        "{}",
        coalesced[1].json()
    );
    assert!(
        coalesced[1].at.duration_since(started) >= Duration::from_millis(1500),
        "held back for the window"
    );
    eventually("other_ops hears that ops failed", WAIT, || async {
        of_type(&other_ops, "delivery.exhausted")
            .into_iter()
            .find(about(&ops_id))
    })
    .await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let to_ops: Vec<Value> = ops.received().iter().map(Received::json).collect();
    assert!(
        to_ops
            .iter()
            .all(|b| b["data"]["receiverId"] != ops_id.as_str()),
        "an event about a receiver never goes to it: {to_ops:?}"
    );
    assert!(
        other_ops
            .received()
            .iter()
            .all(|r| r.json()["data"]["receiverId"] != other_ops_id.as_str()),
    );
}

async fn slow_down_answers_count_a_third_toward_the_circuit(backend: Backend) {
    let gw = TestGateway::start(
        backend,
        "[delivery]\ncircuit_failure_threshold = 2\ncircuit_probe_secs = 60",
    )
    .await;
    let sink = TestReceiver::start().await;
    sink.set_status(503);
    let (rid, _) = gw
        .receiver_with(
            &sink.url(),
            &[("RUNS", "UPDATE")],
            json!({"retryPolicy": "FIXED", "maxAttempts": 50, "retryIntervalSeconds": 3, "maxConcurrency": 4}),
        )
        .await;
    for i in 0..4 {
        gw.publish(run_event(i)).await;
    }
    sink.wait_for(4, WAIT).await;
    // Four 503s: a hard failure threshold of 2 would have opened the circuit.
    let state = eventually("four failures recorded", WAIT, || async {
        let s = receiver_state(&gw, &rid).await;
        (s["consecutiveFailures"].as_i64() >= Some(1)).then_some(s)
    })
    .await;
    assert_eq!(state["circuitState"], "CLOSED", "{state}");
    assert!(state["failingSince"].as_str().is_some(), "{state}");
    // Six of them (2 × 3 strikes) do.
    let open = eventually("circuit open after six slow-down answers", WAIT, || async {
        let s = receiver_state(&gw, &rid).await;
        (s["circuitState"] == "OPEN").then_some(s)
    })
    .await;
    assert!(sink.count() >= 6, "{} attempts; {open}", sink.count());
    assert!(
        open["pausedReason"].as_str().unwrap().contains("HTTP 503"),
        "{open}"
    );
}

async fn retry_after_holds_every_delivery_of_the_receiver(backend: Backend) {
    let gw = TestGateway::start(backend, "").await;
    let sink = TestReceiver::start().await;
    sink.set_status(429);
    sink.set_retry_after(Some("2"));
    gw.receiver_with(
        &sink.url(),
        &[("RUNS", "UPDATE")],
        json!({"maxConcurrency": 1, "retryPolicy": "FIXED", "retryIntervalSeconds": 1, "maxAttempts": 5}),
    )
    .await;
    let first = {
        gw.publish(run_event(0)).await;
        sink.wait_for(1, WAIT).await[0].at
    };
    // Let the gateway read the answer before the next events arrive.
    tokio::time::sleep(Duration::from_millis(200)).await;
    for i in 1..4 {
        gw.publish(run_event(i)).await;
    }
    sink.set_status(200);
    sink.set_retry_after(None);
    let got = sink.wait_for(5, WAIT).await;
    // The three new events waited for the Retry-After too, not only the
    // event that got the 429.
    for r in &got[1..] {
        let after = r.at.duration_since(first);
        assert!(
            after >= Duration::from_millis(1800),
            "sent {after:?} after the 429"
        );
    }
}

/// Requests per second of sending, by their signed `webhook-timestamp`
/// (the gateway stamps it as it sends, after the rate limit let it go).
///
/// The receiver's own arrival times are not used: network and scheduling
/// delay on a loaded machine can carry a request sent at the end of one
/// second into the next, which says nothing about the limit.
fn per_second_sent(received: &[Received]) -> BTreeMap<i64, usize> {
    let mut counts = BTreeMap::new();
    for r in received {
        let second: i64 = r
            .header("webhook-timestamp")
            .and_then(|t| t.parse().ok())
            .expect("every delivery carries its webhook-timestamp");
        *counts.entry(second).or_insert(0) += 1;
    }
    counts
}

async fn a_rate_limit_holds_across_two_gateways(backend: Backend) {
    let gw = TestGateway::start(backend, "").await;
    // A second gateway on the same store (PostgreSQL; SQLite is one process).
    let second = match backend {
        Backend::Postgres => Some(
            TestGateway::start_with_store(
                gw.store_url.clone(),
                None,
                tempfile::tempdir().expect("tempdir"),
                "",
            )
            .await,
        ),
        Backend::Sqlite => None,
    };
    let sink = TestReceiver::start().await;
    let limit = 20;
    let (rid, _) = gw
        .receiver_with(
            &sink.url(),
            &[("RUNS", "UPDATE")],
            json!({"rateLimitPerSecond": limit, "signatureSchemes": ["STANDARD"]}),
        )
        .await;
    let state = gw
        .graphql(
            "query($id: ID!) { webhookReceiver(id: $id) { rateLimitPerSecond } }",
            json!({"id": rid}),
        )
        .await;
    assert_eq!(state["webhookReceiver"]["rateLimitPerSecond"], limit);
    let total = 100;
    for i in 0..total {
        let target = match (&second, i % 2) {
            (Some(other), 1) => other,
            _ => &gw,
        };
        target.publish(run_event(i)).await;
    }
    let got = sink.wait_for(total as usize, Duration::from_secs(30)).await;
    let counts = per_second_sent(&got);
    let most = counts.values().copied().max().unwrap_or(0);
    assert!(
        most <= limit + limit / 10,
        "at most {limit}/s ±10%, saw {counts:?}"
    );
    let span = got.last().unwrap().at.duration_since(got[0].at);
    assert!(
        span >= Duration::from_secs(3),
        "100 requests at 20/s take 4 s or more, took {span:?}"
    );
    drop(second);
}

async fn a_receiver_failing_too_long_is_disabled(backend: Backend) {
    let gw = TestGateway::start(
        backend,
        "[delivery]\nauto_disable_after_secs = 2\ncircuit_failure_threshold = 0",
    )
    .await;
    let ops = TestReceiver::start().await;
    operator(&gw, &ops, &["RECEIVER_DISABLED"]).await;
    let sink = TestReceiver::start().await;
    sink.set_status(500);
    let (rid, _) = gw
        .receiver_with(
            &sink.url(),
            &[("RUNS", "UPDATE")],
            json!({"retryPolicy": "FIXED", "maxAttempts": 50, "retryIntervalSeconds": 1}),
        )
        .await;
    gw.publish(run_event(1)).await;
    let disabled = eventually("receiver.disabled", WAIT, || async {
        of_type(&ops, "receiver.disabled").into_iter().next()
    })
    .await;
    assert_eq!(disabled.json()["data"]["cause"], "auto_disabled");
    let state = receiver_state(&gw, &rid).await;
    assert_eq!(state["paused"], true);
    assert!(
        state["pausedReason"]
            .as_str()
            .unwrap()
            .contains("auto_disable_after_secs"),
        "{state}"
    );
    let attempts = sink.count();
    assert!(
        attempts >= 3,
        "failed for more than 2 s at 1 s intervals: {attempts}"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        sink.count(),
        attempts,
        "nothing is sent once it is disabled"
    );
}

async fn bad_operational_input_changes_nothing(backend: Backend) {
    let gw = TestGateway::start(backend, "").await;
    let r = gw
        .graphql_raw(
            "mutation { createOperationalSubscription(input: { receiverId: \"999\", eventTypes: [DELIVERY_EXHAUSTED] }) { operationalSubscription { id } } }",
            json!({}),
        )
        .await;
    assert!(
        r["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("receiver 999 does not exist"),
        "{r}"
    );
    let sink = TestReceiver::start().await;
    let (rid, _) = gw.receiver_with(&sink.url(), &[], json!({})).await;
    let r = gw
        .graphql_raw(
            "mutation($r: ID!) { createOperationalSubscription(input: { receiverId: $r, eventTypes: [] }) { operationalSubscription { id } } }",
            json!({"r": rid}),
        )
        .await;
    let message = r["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("input.eventTypes") && message.contains("at least one"),
        "{r}"
    );
    let r = gw
        .graphql_raw(
            "mutation($u: String!) { createWebhookReceiver(input: { name: \"x\", webhookUri: $u, rateLimitPerSecond: 0 }) { webhookReceiver { id } } }",
            json!({"u": sink.url()}),
        )
        .await;
    assert!(
        r["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("rateLimitPerSecond"),
        "{r}"
    );
    let listed = gw
        .graphql("{ operationalSubscriptions { id } }", json!({}))
        .await;
    assert_eq!(listed["operationalSubscriptions"], json!([]));
    let r = gw
        .graphql_raw(
            "mutation { deleteOperationalSubscription(id: \"5\") { id } }",
            json!({}),
        )
        .await;
    assert!(
        r["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("does not exist"),
        "{r}"
    );
}

async fn an_operator_hears_of_failing_deliveries_and_recoveries(backend: Backend) {
    let gw = TestGateway::start(
        backend,
        "[delivery]\ncircuit_failure_threshold = 3\ncircuit_probe_secs = 1\n[operational]\nfailing_after_attempts = 2",
    )
    .await;
    let ops = TestReceiver::start().await;
    operator(
        &gw,
        &ops,
        &[
            "DELIVERY_FAILING",
            "RECEIVER_DISABLED",
            "RECEIVER_RECOVERED",
        ],
    )
    .await;
    let sink = TestReceiver::start().await;
    sink.set_status(500);
    let (rid, _) = gw
        .receiver_with(
            &sink.url(),
            &[("RUNS", "UPDATE")],
            json!({"retryPolicy": "FIXED", "maxAttempts": 20, "retryIntervalSeconds": 1, "maxConcurrency": 1}),
        )
        .await;
    gw.publish(run_event(1)).await;
    let failing = eventually("delivery.failing at the second attempt", WAIT, || async {
        of_type(&ops, "delivery.failing").into_iter().next()
    })
    .await;
    let body = failing.json();
    assert_eq!(body["data"]["attempts"], 2, "{body}");
    assert_eq!(body["data"]["receiverId"], rid.as_str());
    assert!(body["data"]["nextAttemptAt"].as_str().is_some(), "{body}");
    let disabled = eventually("the circuit opens", WAIT, || async {
        of_type(&ops, "receiver.disabled").into_iter().next()
    })
    .await;
    assert_eq!(disabled.json()["data"]["cause"], "circuit_open");
    sink.set_status(200);
    eventually("receiver.recovered", Duration::from_secs(30), || async {
        of_type(&ops, "receiver.recovered").into_iter().next()
    })
    .await;
    assert_eq!(
        of_type(&ops, "delivery.failing").len(),
        1,
        "once per delivery"
    );
    assert_eq!(of_type(&ops, "receiver.disabled").len(), 1);
}

both_backends! {
    operator_hears_failing_and_recovered => an_operator_hears_of_failing_deliveries_and_recoveries,
    operator_hears_exhausted_and_gone => an_operator_hears_of_exhausted_deliveries_and_gone_receivers,
    no_loops_and_coalescing => events_about_a_receiver_never_reach_it_and_bursts_coalesce,
    slow_down_is_a_soft_failure => slow_down_answers_count_a_third_toward_the_circuit,
    retry_after_holds_the_receiver => retry_after_holds_every_delivery_of_the_receiver,
    rate_limit => a_rate_limit_holds_across_two_gateways,
    auto_disable => a_receiver_failing_too_long_is_disabled,
    bad_operational_input => bad_operational_input_changes_nothing,
}

async fn ed25519_deliveries_verify_with_the_public_key_through_a_rotation(backend: Backend) {
    let gw = TestGateway::start(backend, "").await;
    let sink = TestReceiver::start().await;
    let (rid, secret) = gw
        .receiver_with(
            &sink.url(),
            &[("RUNS", "UPDATE")],
            json!({"signatureSchemes": ["STANDARD", "ED25519"]}),
        )
        .await;
    let q = "query($id: ID!) { webhookReceiver(id: $id) { _etag publicKey previousPublicKey signatureSchemes } }";
    let r = gw.graphql(q, json!({"id": rid})).await["webhookReceiver"].clone();
    assert_eq!(r["signatureSchemes"], json!(["STANDARD", "ED25519"]));
    let old_key = r["publicKey"].as_str().expect("a public key").to_string();
    assert!(old_key.starts_with("whpk_"), "{r}");
    assert!(r["previousPublicKey"].is_null());

    gw.publish(run_event(1)).await;
    let first = sink.wait_for(1, WAIT).await[0].clone();
    let signature = first.header("webhook-signature").unwrap_or("");
    assert!(
        signature.contains("v1,") && signature.contains("v1a,"),
        "{signature}"
    );
    let verify = |key: &str, req: &Received| {
        verify_request(
            key,
            &sink.url(),
            &req.body,
            &req.headers,
            now_secs(),
            &VerifyOptions::default(),
        )
    };
    assert_eq!(verify(&old_key, &first), Ok(Scheme::Ed25519));
    assert_eq!(verify(&secret, &first), Ok(Scheme::Standard));

    // Rotation: a new key pair; the old key keeps signing for the overlap.
    let rotated = gw
        .graphql(
            "mutation($i: RotateWebhookReceiverSecretInput!) { rotateWebhookReceiverSecret(input: $i) { webhookReceiver { publicKey previousPublicKey } } }",
            json!({"i": {"id": rid, "etag": r["_etag"], "overlapSeconds": 600}}),
        )
        .await["rotateWebhookReceiverSecret"]["webhookReceiver"]
        .clone();
    let new_key = rotated["publicKey"].as_str().unwrap().to_string();
    assert_ne!(new_key, old_key);
    assert_eq!(rotated["previousPublicKey"], old_key.as_str());
    // Publish until the gateway signs with the rotated pair (at once here,
    // within its reload interval at worst; the old key alone meanwhile).
    let mut published = 1;
    let second = eventually("a delivery signed with both keys", WAIT, || {
        published += 1;
        let n = published;
        let (gw, sink) = (&gw, &sink);
        async move {
            gw.publish(run_event(n)).await;
            let got = sink.wait_for(n as usize, WAIT).await;
            got.into_iter().skip(1).find(|r| {
                r.header("webhook-signature")
                    .is_some_and(|h| h.matches("v1a,").count() == 2)
            })
        }
    })
    .await;
    let header = second.header("webhook-signature").unwrap_or("");
    assert_eq!(header.matches("v1a,").count(), 2, "{header}");
    assert_eq!(verify(&old_key, &second), Ok(Scheme::Ed25519));
    assert_eq!(verify(&new_key, &second), Ok(Scheme::Ed25519));

    // A viewer reads the public key (it is no secret).
    let token = changewire_gateway::testing::generate_api_token();
    gw.gw()
        .store
        .insert_api_key(
            "dashboard",
            "viewer",
            &changewire_gateway::testing::hash_token(token.expose()),
            "cw_",
        )
        .await
        .expect("viewer key");
    let (status, seen) = gw
        .graphql_as(Some(token.expose()), q, json!({"id": rid}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        seen["data"]["webhookReceiver"]["publicKey"],
        new_key.as_str(),
        "{seen}"
    );
}

both_backends! {
    ed25519 => ed25519_deliveries_verify_with_the_public_key_through_a_rotation,
}
