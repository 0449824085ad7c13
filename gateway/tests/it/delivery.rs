//! Delivery: signed POSTs, retries, final failure, audit trail, redelivery,
//! test pings, secret rotation, circuit breaker, isolation, ordering.

use std::time::Duration;

use changewire_core::{Scheme, VerifyOptions, ion, verify_request};
use changewire_test_support::gateway::TestGateway;
use changewire_test_support::receiver::{Received, TestReceiver};
use changewire_test_support::{Backend, eventually};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(20);

fn run_event(id: i64, status: &str) -> Value {
    json!({"resource": "RUNS", "action": "UPDATE", "id": id, "old": {"status": "in_progress"}, "new": {"status": status, "note": null}})
}

fn verify(req: &Received, secret: &str, url: &str) -> Scheme {
    verify_request(
        secret,
        url,
        &req.body,
        &req.headers,
        now_secs(),
        &VerifyOptions::default(),
    )
    .unwrap_or_else(|e| {
        panic!(
            "signature of {} does not verify: {e}",
            String::from_utf8_lossy(&req.body)
        )
    })
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

async fn events(gw: &TestGateway, receiver: &str) -> Vec<Value> {
    let q = "query($r: Int) { webhookEvents(filters: { receiverId: $r }) { id resource status attemptCount responseStatus responseData requestData lastError \
             attempts { attempt responseStatus errorClass error requestHeaders outcome } } }";
    let id: i64 = receiver.parse().unwrap();
    gw.graphql(q, json!({"r": id})).await["webhookEvents"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

async fn signed_delivery(backend: Backend) {
    let gw = TestGateway::start(backend, "").await;
    let sink = TestReceiver::start().await;
    let (rid, secret) = gw
        .receiver_with(
            &sink.url(),
            &[("RUNS", "UPDATE")],
            json!({"signatureSchemes": ["ION", "STANDARD"], "headers": [{"key": "X-Tenant", "value": "acme"}], "basicAuth": {"username": "hook", "password": "s3cret"}}),
        )
        .await;
    let r = gw.publish(run_event(7, "complete")).await;
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(r.json()["deliveries"], 1);
    let got = sink.wait_for(1, WAIT).await;
    let req = &got[0];
    let body = req.json();
    assert_eq!(body["resource"], "runs");
    assert_eq!(body["action"], "update");
    assert_eq!(body["data"]["id"], 7);
    assert_eq!(body["data"]["old"], json!({"status": "in_progress"}));
    assert_eq!(
        body["data"]["new"],
        json!({"status": "complete", "note": null})
    );
    assert!(body["event_id"].as_i64().unwrap() > 0);
    assert_eq!(req.header("content-type"), Some("application/json"));
    assert_eq!(req.header("x-tenant"), Some("acme"));
    assert_eq!(req.header("authorization"), Some("Basic aG9vazpzM2NyZXQ="));
    assert_eq!(
        req.header("webhook-id"),
        Some(body["event_id"].to_string().as_str())
    );
    // Both schemes verify with the core, the ION one exactly as the reference function.
    assert_eq!(verify(req, &secret, &sink.url()), Scheme::Standard);
    let ion_sig = req.header("x-ion-signature").unwrap();
    ion::verify_body(&secret, &sink.url(), &req.body, ion_sig).unwrap();
    // The audit trail shows the attempt, with Basic auth masked.
    let ev = eventually("event succeeded", WAIT, || async {
        let evs = events(&gw, &rid).await;
        evs.first().filter(|e| e["status"] == "succeeded").cloned()
    })
    .await;
    assert_eq!(ev["responseStatus"], 200);
    assert_eq!(ev["responseData"], "received");
    assert_eq!(
        ev["requestData"].as_str().unwrap().as_bytes(),
        &req.body[..]
    );
    let headers = ev["attempts"][0]["requestHeaders"].as_str().unwrap();
    assert!(
        headers.contains("Basic ***") && !headers.contains("aG9vazpzM2NyZXQ"),
        "{headers}"
    );
}

async fn retries_then_fails_with_reason(backend: Backend) {
    let gw = TestGateway::start(backend, "").await;
    let sink = TestReceiver::start().await;
    sink.set_status(503);
    let (rid, secret) = gw
        .receiver_with(
            &sink.url(),
            &[("RUNS", "UPDATE")],
            json!({"retryPolicy": "FIXED", "maxAttempts": 3, "retryIntervalSeconds": 1}),
        )
        .await;
    gw.publish(run_event(1, "x")).await;
    let got = sink.wait_for(3, WAIT).await;
    let ids: Vec<Value> = got.iter().map(|r| r.json()["event_id"].clone()).collect();
    assert!(
        ids.iter().all(|i| *i == ids[0]),
        "event_id is stable across retries: {ids:?}"
    );
    for r in &got {
        verify(r, &secret, &sink.url());
    }
    assert!(
        got[1].at.duration_since(got[0].at) >= Duration::from_millis(900),
        "fixed interval respected"
    );
    let ev = eventually("event failed", WAIT, || async {
        events(&gw, &rid)
            .await
            .into_iter()
            .find(|e| e["status"] == "failed")
    })
    .await;
    assert_eq!(ev["attemptCount"], 3);
    assert_eq!(ev["attempts"].as_array().unwrap().len(), 3);
    assert_eq!(ev["attempts"][2]["responseStatus"], 503);
    assert_eq!(ev["attempts"][2]["errorClass"], "status");
    assert!(ev["lastError"].as_str().unwrap().contains("HTTP 503"));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(sink.count(), 3, "no attempt after the last one");

    // Manual retry: same event_id, delivered once the receiver is healthy.
    sink.set_status(200);
    let retried = gw
        .graphql(
            "mutation($id: ID!) { retryWebhookEvent(id: $id) { webhookEvent { id status } } }",
            json!({"id": ev["id"]}),
        )
        .await;
    assert_eq!(
        retried["retryWebhookEvent"]["webhookEvent"]["status"],
        "pending"
    );
    let got = sink.wait_for(4, WAIT).await;
    assert_eq!(got[3].json()["event_id"], ids[0]);
    eventually("retried event succeeded", WAIT, || async {
        events(&gw, &rid)
            .await
            .into_iter()
            .find(|e| e["status"] == "succeeded")
    })
    .await;
}

async fn retry_after_is_honoured(backend: Backend) {
    let gw = TestGateway::start(backend, "").await;
    let sink = TestReceiver::start().await;
    sink.set_status(429);
    sink.set_retry_after(Some("2"));
    gw.receiver_with(
        &sink.url(),
        &[("RUNS", "UPDATE")],
        json!({"retryPolicy": "FIXED", "maxAttempts": 3, "retryIntervalSeconds": 30}),
    )
    .await;
    gw.publish(run_event(1, "x")).await;
    let first = sink.wait_for(1, WAIT).await;
    sink.set_status(200);
    let got = sink.wait_for(2, WAIT).await;
    let gap = got[1].at.duration_since(first[0].at);
    assert!(
        gap >= Duration::from_millis(1800) && gap < Duration::from_secs(25),
        "Retry-After 2 s replaced the 30 s interval: {gap:?}"
    );
}

async fn bulk_redelivery_and_test_ping(backend: Backend) {
    let gw = TestGateway::start(backend, "").await;
    let sink = TestReceiver::start().await;
    sink.set_status(500);
    let (rid, secret) = gw
        .receiver_with(
            &sink.url(),
            &[("RUNS", "UPDATE")],
            json!({"maxAttempts": 1}),
        )
        .await;
    for i in 0..5 {
        gw.publish(run_event(i, "x")).await;
    }
    eventually("5 failed", WAIT, || async {
        let n = events(&gw, &rid)
            .await
            .iter()
            .filter(|e| e["status"] == "failed")
            .count();
        (n == 5).then_some(())
    })
    .await;
    sink.set_status(200);
    let job = gw
        .graphql(
            "mutation($i: RedeliverFailedWebhookEventsInput!) { redeliverFailedWebhookEvents(input: $i) { job { id total } } }",
            json!({"i": {"receiverId": rid}}),
        )
        .await["redeliverFailedWebhookEvents"]["job"]
        .clone();
    assert_eq!(job["total"], 5);
    let done = eventually("job finished", WAIT, || async {
        let j = gw
            .graphql(
                "query($id: ID!) { webhookRedeliveryJob(id: $id) { status done total } }",
                json!({"id": job["id"]}),
            )
            .await["webhookRedeliveryJob"]
            .clone();
        (j["status"] == "finished").then_some(j)
    })
    .await;
    assert_eq!(done["done"], 5);
    sink.wait_for(10, WAIT).await;
    eventually("all succeeded", WAIT, || async {
        let n = events(&gw, &rid)
            .await
            .iter()
            .filter(|e| e["status"] == "succeeded")
            .count();
        (n == 5).then_some(())
    })
    .await;

    let ping = gw
        .graphql("mutation($r: ID!) { sendTestWebhook(receiverId: $r) { webhookEvent { id subscriptionId } } }", json!({"r": rid}))
        .await;
    assert_eq!(
        ping["sendTestWebhook"]["webhookEvent"]["subscriptionId"],
        Value::Null
    );
    let got = sink.wait_for(11, WAIT).await;
    let ping_req = got
        .iter()
        .find(|r| r.json()["action"] == "test")
        .expect("a test ping");
    verify(ping_req, &secret, &sink.url());
}

async fn rotation_signs_with_both_secrets(backend: Backend) {
    let gw = TestGateway::start(backend, "").await;
    let sink = TestReceiver::start().await;
    let (rid, old) = gw
        .receiver_with(
            &sink.url(),
            &[("RUNS", "UPDATE")],
            json!({"signatureSchemes": ["ION", "STANDARD"]}),
        )
        .await;
    let etag = gw
        .graphql(
            "query($id: ID!) { webhookReceiver(id: $id) { _etag } }",
            json!({"id": rid}),
        )
        .await["webhookReceiver"]["_etag"]
        .clone();
    let new = gw
        .graphql(
            "mutation($i: RotateWebhookReceiverSecretInput!) { rotateWebhookReceiverSecret(input: $i) { webhookReceiver { sharedSecret } } }",
            json!({"i": {"id": rid, "etag": etag, "overlapSeconds": 600}}),
        )
        .await["rotateWebhookReceiverSecret"]["webhookReceiver"]["sharedSecret"]
        .as_str()
        .unwrap()
        .to_string();
    // Every gateway picks the rotation up within its reload interval (this
    // one is signalled at once, but a loaded machine may still send one
    // more with the old secret alone, which receivers accept too): publish
    // until a delivery is signed with both.
    let mut published = 0;
    let req = eventually("a delivery signed with both secrets", WAIT, || {
        published += 1;
        let n = published;
        let (gw, sink) = (&gw, &sink);
        async move {
            gw.publish(run_event(n, "x")).await;
            let got = sink.wait_for(n as usize, WAIT).await;
            got.into_iter()
                .find(|r| r.header("x-ion-signature-next").is_some())
        }
    })
    .await;
    let req = &req;
    let ion_only = VerifyOptions {
        require: Some(Scheme::Ion),
        ..Default::default()
    };
    for secret in [&old, &new] {
        verify(req, secret, &sink.url());
        verify_request(
            secret,
            &sink.url(),
            &req.body,
            &req.headers,
            now_secs(),
            &ion_only,
        )
        .unwrap();
    }
    // The reference function (one header, one secret) keeps working with the old secret.
    ion::verify_body(
        &old,
        &sink.url(),
        &req.body,
        req.header("x-ion-signature").unwrap(),
    )
    .unwrap();
    ion::verify_body(
        &new,
        &sink.url(),
        &req.body,
        req.header("x-ion-signature-next").unwrap(),
    )
    .unwrap();
}

async fn circuit_breaker_pauses_and_resumes(backend: Backend) {
    let gw = TestGateway::start(
        backend,
        "[delivery]\ncircuit_failure_threshold = 3\ncircuit_probe_secs = 1",
    )
    .await;
    let sink = TestReceiver::start().await;
    sink.set_status(500);
    let (rid, _) = gw
        .receiver_with(&sink.url(), &[("RUNS", "UPDATE")], json!({"retryPolicy": "FIXED", "maxAttempts": 50, "retryIntervalSeconds": 1, "maxConcurrency": 1}))
        .await;
    for i in 0..6 {
        gw.publish(run_event(i, "x")).await;
    }
    let q = "query($id: ID!) { webhookReceiver(id: $id) { paused pausedReason circuitState } }";
    let open = eventually("circuit open", WAIT, || async {
        let r = gw.graphql(q, json!({"id": rid})).await["webhookReceiver"].clone();
        (r["circuitState"] == "OPEN").then_some(r)
    })
    .await;
    assert_eq!(open["paused"], true);
    assert!(
        open["pausedReason"]
            .as_str()
            .unwrap()
            .contains("consecutive failed attempts"),
        "{open}"
    );
    assert!(
        open["pausedReason"].as_str().unwrap().contains("HTTP 500"),
        "{open}"
    );
    // While open, nothing is attempted (beyond a probe per probe interval).
    let before = sink.count();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(
        sink.count() <= before + 1,
        "held while open: {before} → {}",
        sink.count()
    );
    // The receiver recovers: the next probe closes the circuit and everything is delivered.
    sink.set_status(200);
    let closed = eventually("circuit closed", Duration::from_secs(30), || async {
        let r = gw.graphql(q, json!({"id": rid})).await["webhookReceiver"].clone();
        (r["circuitState"] == "CLOSED").then_some(r)
    })
    .await;
    assert_eq!(closed["paused"], false);
    eventually("all six delivered", Duration::from_secs(30), || async {
        let n = events(&gw, &rid)
            .await
            .iter()
            .filter(|e| e["status"] == "succeeded")
            .count();
        (n == 6).then_some(())
    })
    .await;
}

async fn hanging_receiver_does_not_delay_others(backend: Backend) {
    let gw = TestGateway::start(backend, "").await;
    let slow = TestReceiver::start().await;
    slow.set_hang(true);
    let fast = TestReceiver::start().await;
    gw.receiver_with(
        &slow.url(),
        &[("RUNS", "UPDATE")],
        json!({"timeoutMs": 3000, "maxConcurrency": 2}),
    )
    .await;
    gw.receiver_with(&fast.url(), &[("RUNS", "UPDATE")], json!({}))
        .await;
    let started = std::time::Instant::now();
    for i in 0..40 {
        gw.publish(run_event(i, "x")).await;
    }
    fast.wait_for(40, WAIT).await;
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_secs(3),
        "the healthy receiver got 40 events in {elapsed:?} while the other hung"
    );
    assert!(
        slow.count() <= 4,
        "the hanging receiver holds at most its concurrency: {}",
        slow.count()
    );
}

async fn ordered_receiver_keeps_row_order(backend: Backend) {
    let gw = TestGateway::start(backend, "").await;
    let sink = TestReceiver::start().await;
    sink.set_status(500);
    gw.receiver_with(&sink.url(), &[("RUNS", "UPDATE")], json!({"ordered": true, "retryPolicy": "FIXED", "maxAttempts": 5, "retryIntervalSeconds": 1})).await;
    for status in ["a", "b", "c"] {
        gw.publish(run_event(1, status)).await;
    }
    gw.publish(run_event(2, "other-row")).await;
    // While the first event of row 1 fails, its successors wait; row 2 is independent.
    let first = sink.wait_for(2, WAIT).await;
    let rows: Vec<Value> = first
        .iter()
        .map(|r| r.json()["data"]["id"].clone())
        .collect();
    assert!(
        rows.contains(&json!(1)) && rows.contains(&json!(2)),
        "{rows:?}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let row1: Vec<String> = sink
        .received()
        .iter()
        .filter(|r| r.json()["data"]["id"] == 1)
        .map(|r| {
            r.json()["data"]["new"]["status"]
                .as_str()
                .unwrap_or("")
                .to_string()
        })
        .collect();
    assert!(
        row1.iter().all(|s| s == "a"),
        "only the first change of row 1 was tried: {row1:?}"
    );
    sink.set_status(200);
    eventually("all delivered in order", WAIT, || async {
        let seq: Vec<String> = sink
            .received()
            .iter()
            .filter(|r| r.json()["data"]["id"] == 1)
            .map(|r| {
                r.json()["data"]["new"]["status"]
                    .as_str()
                    .unwrap_or("")
                    .to_string()
            })
            .collect();
        let mut dedup = seq.clone();
        dedup.dedup();
        (dedup.last().map(String::as_str) == Some("c")).then_some(dedup)
    })
    .await
    .iter()
    .zip(["a", "b", "c"])
    .for_each(|(got, want)| assert_eq!(got, want));
}

async fn ssrf_is_checked_at_send_time(backend: Backend) {
    // A strict gateway: a receiver that points to loopback (as if DNS changed
    // after registration) is refused before any connection is made.
    let gw = TestGateway::start(
        backend,
        "allow_http = false\nallow_private_networks = false",
    )
    .await;
    let sink = TestReceiver::start().await;
    let row = crate::stored_receiver(
        &gw,
        crate::stored_settings(
            format!("https://localhost:{}/hook", sink.addr.port()),
            changewire_gateway::testing::RetryPolicy::Fixed,
            1,
        ),
    )
    .await;
    gw.publish(run_event(1, "x")).await;
    let ev = eventually("refused event failed", WAIT, || async {
        events(&gw, &row.id.to_string())
            .await
            .into_iter()
            .find(|e| e["status"] == "failed")
    })
    .await;
    assert_eq!(ev["attempts"][0]["errorClass"], "ssrf", "{ev}");
    assert!(
        ev["lastError"].as_str().unwrap().contains("local name"),
        "{ev}"
    );
    assert_eq!(sink.count(), 0, "no connection was made");
}

/// A destination refused by the rules at send time fails at once: no
/// retries (a day of them would change nothing), no circuit breaker churn.
async fn a_refused_destination_fails_at_once(backend: Backend) {
    let gw = TestGateway::start(
        backend,
        "allow_http = false\nallow_private_networks = false\n[delivery]\ncircuit_failure_threshold = 2",
    )
    .await;
    let sink = TestReceiver::start().await;
    let row = crate::stored_receiver(
        &gw,
        crate::stored_settings(
            format!("https://localhost:{}/hook", sink.addr.port()),
            changewire_gateway::testing::RetryPolicy::Exponential,
            8,
        ),
    )
    .await;
    for i in 0..3 {
        gw.publish(run_event(i, "x")).await;
    }
    let evs = eventually("every refused event failed", WAIT, || async {
        let evs = events(&gw, &row.id.to_string()).await;
        (evs.len() == 3 && evs.iter().all(|e| e["status"] == "failed")).then_some(evs)
    })
    .await;
    for ev in &evs {
        assert_eq!(
            ev["attempts"].as_array().unwrap().len(),
            1,
            "one attempt, no retries: {ev}"
        );
        assert_eq!(ev["attempts"][0]["errorClass"], "ssrf", "{ev}");
    }
    let receiver = gw
        .graphql(
            "query($id: ID!) { webhookReceiver(id: $id) { paused pausedReason } }",
            json!({"id": row.id.to_string()}),
        )
        .await;
    assert_eq!(
        receiver["webhookReceiver"]["paused"], false,
        "refusals never reached the receiver, so its circuit stays closed: {receiver}"
    );
    assert_eq!(sink.count(), 0, "no connection was made");
}

/// Retention counts from when a delivery finished: one that waited longer
/// than the retention (paused receiver, open circuit) is kept for the whole
/// retention after it finished, and pending work is never pruned.
async fn retention_counts_from_completion(backend: Backend) {
    let mut gw = TestGateway::start(backend, "").await;
    let sink = TestReceiver::start().await;
    let (rid, _) = gw
        .receiver_with(&sink.url(), &[("RUNS", "UPDATE")], json!({}))
        .await;
    gw.publish(run_event(1, "done")).await;
    let done = eventually("delivered", WAIT, || async {
        events(&gw, &rid)
            .await
            .into_iter()
            .find(|e| e["status"] == "succeeded")
    })
    .await;
    let id: changewire_gateway::testing::DeliveryId = done["id"].as_str().unwrap().parse().unwrap();
    // No delivery engine from here on: the pending delivery stays pending.
    gw.stop().await;
    let store = changewire_gateway::testing::Store::connect(
        &changewire_gateway::testing::StoreUrl::parse("store", &gw.store_url).unwrap(),
    )
    .await
    .unwrap();
    let pending_id = store
        .insert_test_delivery(
            rid.parse().unwrap(),
            &changewire_gateway::testing::NewChange {
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
            },
        )
        .await
        .unwrap();
    // Both were created long ago (as if they had waited): the finished one
    // finished just now, the pending one has not finished.
    changewire_gateway::testing::on_pool!(store, |pool| sqlx::raw_sql(
        "UPDATE deliveries SET created_at = 1; UPDATE changes SET created_at = 1"
    )
    .execute(pool)
    .await
    .map(|r| r.rows_affected()))
    .unwrap();
    let hour_ago = changewire_gateway::testing::now_ms() - 3_600_000;
    assert_eq!(
        store.prune(hour_ago, 1000).await.unwrap(),
        0,
        "finished just now: kept"
    );
    assert!(store.event(id).await.unwrap().is_some());
    let later = changewire_gateway::testing::now_ms() + 1000;
    assert_eq!(
        store.prune(later, 1000).await.unwrap(),
        1,
        "past retention after finishing: pruned"
    );
    assert!(store.event(id).await.unwrap().is_none());
    assert!(
        store.event(pending_id).await.unwrap().is_some(),
        "pending work is never pruned"
    );
    store.close().await;
}

async fn disabled_receiver_holds_pending_deliveries(backend: Backend) {
    let gw = TestGateway::start(backend, "").await;
    let sink = TestReceiver::start().await;
    sink.set_status(500);
    let (rid, _) = gw
        .receiver_with(
            &sink.url(),
            &[("RUNS", "UPDATE")],
            json!({"retryPolicy": "FIXED", "maxAttempts": 10, "retryIntervalSeconds": 1}),
        )
        .await;
    gw.publish(run_event(1, "x")).await;
    sink.wait_for(1, WAIT).await;
    let q = "query($id: ID!) { webhookReceiver(id: $id) { _etag } }";
    let etag = gw.graphql(q, json!({"id": rid})).await["webhookReceiver"]["_etag"].clone();
    let update = "mutation($i: UpdateWebhookReceiverInput!) { updateWebhookReceiver(input: $i) { webhookReceiver { active _etag } } }";
    let off = gw
        .graphql(
            update,
            json!({"i": {"id": rid, "etag": etag, "active": false}}),
        )
        .await;
    sink.set_status(200);
    let before = sink.count();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        sink.count(),
        before,
        "nothing is sent to a disabled receiver"
    );
    assert_eq!(
        events(&gw, &rid).await[0]["status"],
        "pending",
        "held, not dropped"
    );
    let etag = off["updateWebhookReceiver"]["webhookReceiver"]["_etag"].clone();
    gw.graphql(
        update,
        json!({"i": {"id": rid, "etag": etag, "active": true}}),
    )
    .await;
    eventually("delivered after re-enabling", WAIT, || async {
        events(&gw, &rid)
            .await
            .into_iter()
            .find(|e| e["status"] == "succeeded")
    })
    .await;
}

async fn a_redelivery_limited_to_one_resource_leaves_the_others_failed(backend: Backend) {
    let gw = TestGateway::start(backend, "").await;
    let sink = TestReceiver::start().await;
    sink.set_status(500);
    let (rid, _) = gw
        .receiver_with(
            &sink.url(),
            &[("RUNS", "UPDATE"), ("PARTS", "UPDATE")],
            json!({"maxAttempts": 1}),
        )
        .await;
    for i in 0..3 {
        gw.publish(run_event(i, "x")).await;
        gw.publish(json!({"resource": "PARTS", "action": "UPDATE", "id": i, "new": {"qty": i}}))
            .await;
    }
    eventually("6 failed", WAIT, || async {
        let n = events(&gw, &rid)
            .await
            .iter()
            .filter(|e| e["status"] == "failed")
            .count();
        (n == 6).then_some(())
    })
    .await;
    sink.set_status(200);
    let refused = gw
        .graphql_raw(
            "mutation($i: RedeliverFailedWebhookEventsInput!) { redeliverFailedWebhookEvents(input: $i) { job { id } } }",
            json!({"i": {"receiverId": rid, "resource": "NOT_A_RESOURCE"}}),
        )
        .await;
    assert!(refused.get("errors").is_some(), "{refused}");
    let job = gw
        .graphql(
            "mutation($i: RedeliverFailedWebhookEventsInput!) { redeliverFailedWebhookEvents(input: $i) { job { id total resource } } }",
            json!({"i": {"receiverId": rid, "resource": "PARTS"}}),
        )
        .await["redeliverFailedWebhookEvents"]["job"]
        .clone();
    assert_eq!(
        (job["total"].clone(), job["resource"].clone()),
        (json!(3), json!("PARTS"))
    );
    eventually("the PARTS events succeeded", WAIT, || async {
        let all = events(&gw, &rid).await;
        let succeeded: Vec<_> = all.iter().filter(|e| e["status"] == "succeeded").collect();
        (succeeded.len() == 3).then_some(())
    })
    .await;
    let all = events(&gw, &rid).await;
    for e in &all {
        let expected = if e["resource"] == "PARTS" {
            "succeeded"
        } else {
            "failed"
        };
        assert_eq!(e["status"], expected, "{e}");
    }
}

both_backends! {
    disabled => disabled_receiver_holds_pending_deliveries,
    signed => signed_delivery,
    retries => retries_then_fails_with_reason,
    retry_after => retry_after_is_honoured,
    redelivery => bulk_redelivery_and_test_ping,
    redelivery_of_one_resource => a_redelivery_limited_to_one_resource_leaves_the_others_failed,
    rotation => rotation_signs_with_both_secrets,
    circuit_breaker => circuit_breaker_pauses_and_resumes,
    isolation => hanging_receiver_does_not_delay_others,
    ordering => ordered_receiver_keeps_row_order,
    ssrf => ssrf_is_checked_at_send_time,
    refused_fails_at_once => a_refused_destination_fails_at_once,
    retention => retention_counts_from_completion,
}

#[tokio::test]
async fn resolver_refuses_names_that_resolve_to_private_addresses() {
    use changewire_gateway::testing::GuardedResolver;
    use tower::Service;
    let mut strict = GuardedResolver::new(changewire_gateway::testing::Policy::default());
    let name: hyper_util::client::legacy::connect::dns::Name = "localhost".parse().unwrap();
    let err = strict
        .call(name)
        .await
        .expect_err("localhost resolves to loopback");
    assert!(err.to_string().contains("refused addresses"), "{err}");
}

/// With many receivers and a small process-wide budget, every receiver gets
/// its share: receivers without due work cannot starve the others.
async fn global_budget_is_shared_fairly(backend: Backend) {
    let gw = TestGateway::start(backend, "[delivery]\nmax_in_flight = 8").await;
    let mut sinks = Vec::new();
    for _ in 0..6 {
        let sink = TestReceiver::start().await;
        gw.receiver_with(
            &sink.url(),
            &[("RUNS", "UPDATE")],
            json!({"maxConcurrency": 8}),
        )
        .await;
        sinks.push(sink);
    }
    for i in 0..30 {
        gw.publish(run_event(i, "x")).await;
    }
    for sink in &sinks {
        sink.wait_for(30, WAIT).await;
    }
}

both_backends! {
    fair_budget => global_budget_is_shared_fairly,
}
