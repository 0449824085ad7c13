//! Receivers beyond ION: headers, secret rotation, pause/resume, delete,
//! optimistic concurrency under a race, pagination.

use changewire_test_support::Backend;
use changewire_test_support::gateway::TestGateway;
use serde_json::{Value, json};

const RECEIVER_FIELDS: &str = "id _etag name webhookUri sharedSecret active paused pausedReason headers { id key value } \
    previousSecretExpiresAt signatureSchemes retryPolicy maxAttempts timeoutMs";

async fn create(gw: &TestGateway, name: &str) -> Value {
    let q = format!(
        "mutation($input: CreateWebhookReceiverInput!) {{ createWebhookReceiver(input: $input) {{ webhookReceiver {{ {RECEIVER_FIELDS} }} }} }}"
    );
    gw.graphql(&q, json!({"input": {"name": name, "webhookUri": "https://hooks.example.com/x", "headers": [{"key": "X-Api-Key", "value": "k1"}]}}))
        .await["createWebhookReceiver"]["webhookReceiver"]
        .clone()
}

async fn get(gw: &TestGateway, id: &str) -> Value {
    let q = format!("query($id: ID!) {{ webhookReceiver(id: $id) {{ {RECEIVER_FIELDS} }} }}");
    gw.graphql(&q, json!({"id": id})).await["webhookReceiver"].clone()
}

async fn receivers_lifecycle(backend: Backend) {
    let gw = TestGateway::start(backend, "").await;
    let r = create(&gw, "lifecycle").await;
    let id = r["id"].as_str().unwrap().to_string();
    assert_eq!(r["headers"][0]["key"], "X-Api-Key");
    assert_eq!(r["signatureSchemes"], json!(["ION"]));
    assert_eq!(r["retryPolicy"], "EXPONENTIAL");
    assert_eq!(r["maxAttempts"], 8);
    assert_eq!(r["timeoutMs"], 5000);

    // Headers: add, duplicate refused, remove.
    let add = "mutation($i: AddHeaderToWebhookReceiverInput!) { addHeaderToWebhookReceiver(input: $i) { webhookHeader { id key value } webhookReceiver { headers { key } } } }";
    let added = gw
        .graphql(
            add,
            json!({"i": {"receiverId": id, "key": "X-Route", "value": "blue"}}),
        )
        .await;
    assert_eq!(
        added["addHeaderToWebhookReceiver"]["webhookReceiver"]["headers"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let dup = gw
        .graphql_raw(
            add,
            json!({"i": {"receiverId": id, "key": "x-route", "value": "red"}}),
        )
        .await;
    assert_eq!(dup["errors"][0]["extensions"]["code"], "CONFLICT", "{dup}");
    let header_id = added["addHeaderToWebhookReceiver"]["webhookHeader"]["id"].clone();
    let rm = "mutation($i: RemoveHeaderFromWebhookReceiverInput!) { removeHeaderFromWebhookReceiver(input: $i) { webhookReceiver { headers { key } } } }";
    let removed = gw.graphql(rm, json!({"i": {"id": header_id}})).await;
    assert_eq!(
        removed["removeHeaderFromWebhookReceiver"]["webhookReceiver"]["headers"],
        json!([{"key": "X-Api-Key"}])
    );

    // Rotation: a new secret, returned once; the old one keeps signing for the overlap.
    let current = get(&gw, &id).await;
    let rotate = "mutation($i: RotateWebhookReceiverSecretInput!) { rotateWebhookReceiverSecret(input: $i) { previousSecretExpiresAt webhookReceiver { sharedSecret _etag previousSecretExpiresAt } } }";
    let rotated = gw
        .graphql(
            rotate,
            json!({"i": {"id": id, "etag": current["_etag"], "overlapSeconds": 3600}}),
        )
        .await;
    let new_secret = rotated["rotateWebhookReceiverSecret"]["webhookReceiver"]["sharedSecret"]
        .as_str()
        .unwrap();
    assert!(new_secret.starts_with("whsec_") && !new_secret.contains('*'));
    assert_ne!(new_secret, r["sharedSecret"].as_str().unwrap());
    assert!(
        rotated["rotateWebhookReceiverSecret"]["previousSecretExpiresAt"]
            .as_str()
            .is_some()
    );
    let after = get(&gw, &id).await;
    assert!(after["sharedSecret"].as_str().unwrap().contains("********"));
    assert!(
        after["sharedSecret"]
            .as_str()
            .unwrap()
            .ends_with(&new_secret[new_secret.len() - 4..])
    );

    // Pause and resume.
    let pause = "mutation($i: PauseWebhookReceiverInput!) { pauseWebhookReceiver(input: $i) { webhookReceiver { paused pausedReason _etag } } }";
    let paused = gw
        .graphql(
            pause,
            json!({"i": {"id": id, "etag": after["_etag"], "reason": "maintenance window"}}),
        )
        .await;
    let p = &paused["pauseWebhookReceiver"]["webhookReceiver"];
    assert_eq!(p["paused"], true);
    assert_eq!(p["pausedReason"], "maintenance window");
    let resume = "mutation($i: ResumeWebhookReceiverInput!) { resumeWebhookReceiver(input: $i) { webhookReceiver { paused pausedReason } } }";
    let resumed = gw
        .graphql(resume, json!({"i": {"id": id, "etag": p["_etag"]}}))
        .await;
    assert_eq!(
        resumed["resumeWebhookReceiver"]["webhookReceiver"],
        json!({"paused": false, "pausedReason": null})
    );

    // Delete: a stale etag changes nothing; the current one deletes.
    let del =
        "mutation($i: DeleteWebhookReceiverInput!) { deleteWebhookReceiver(input: $i) { id } }";
    let stale = gw
        .graphql_raw(del, json!({"i": {"id": id, "etag": p["_etag"]}}))
        .await;
    assert_eq!(
        stale["errors"][0]["extensions"]["code"], "CONFLICT",
        "{stale}"
    );
    let now = get(&gw, &id).await;
    gw.graphql(del, json!({"i": {"id": id, "etag": now["_etag"]}}))
        .await;
    let gone = gw
        .graphql_raw(
            "query($id: ID!) { webhookReceiver(id: $id) { id } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(gone["errors"][0]["extensions"]["code"], "NOT_FOUND");
}

async fn racing_updates_one_wins(backend: Backend) {
    let gw = TestGateway::start(backend, "").await;
    let r = create(&gw, "race").await;
    let (id, etag) = (r["id"].clone(), r["_etag"].clone());
    let update = "mutation($i: UpdateWebhookReceiverInput!) { updateWebhookReceiver(input: $i) { webhookReceiver { name } } }";
    let mut racers = Vec::new();
    for n in 0..8 {
        let input = json!({"i": {"id": id, "etag": etag, "name": format!("winner-{n}")}});
        racers.push(gw.graphql_raw(update, input));
    }
    let results = futures_join(racers).await;
    let wins: Vec<&Value> = results
        .iter()
        .filter(|r| r.get("errors").is_none())
        .collect();
    let conflicts = results
        .iter()
        .filter(|r| r["errors"][0]["extensions"]["code"] == "CONFLICT")
        .count();
    assert_eq!(wins.len(), 1, "{results:#?}");
    assert_eq!(conflicts, 7);
    let name = wins[0]["data"]["updateWebhookReceiver"]["webhookReceiver"]["name"].clone();
    assert_eq!(get(&gw, id.as_str().unwrap()).await["name"], name);
}

async fn futures_join<F: std::future::Future<Output = Value>>(futures: Vec<F>) -> Vec<Value> {
    let handles: Vec<_> = futures.into_iter().map(|f| Box::pin(f)).collect();
    let mut out = Vec::new();
    // Poll them concurrently.
    let joined = futures_all(handles).await;
    out.extend(joined);
    out
}

async fn futures_all<F: std::future::Future<Output = Value> + Unpin>(
    mut futures: Vec<F>,
) -> Vec<Value> {
    use std::task::Poll;
    let mut results: Vec<Option<Value>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in futures.iter_mut().enumerate() {
            if results[i].is_none() {
                match std::pin::Pin::new(f).poll(cx) {
                    Poll::Ready(v) => results[i] = Some(v),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    results
        .into_iter()
        .map(|r| r.unwrap_or(Value::Null))
        .collect()
}

async fn pagination_and_totals(backend: Backend) {
    let gw = TestGateway::start(backend, "").await;
    for n in 0..5 {
        create(&gw, &format!("r{n}")).await;
    }
    let q = "query($after: String) { webhookReceivers(first: 2, after: $after) { totalCount pageInfo { hasNextPage endCursor } edges { cursor node { name } } } }";
    let mut names = Vec::new();
    let mut after = Value::Null;
    loop {
        let page = gw.graphql(q, json!({"after": after})).await["webhookReceivers"].clone();
        assert_eq!(page["totalCount"], 5);
        for e in page["edges"].as_array().unwrap() {
            names.push(e["node"]["name"].as_str().unwrap().to_string());
        }
        if page["pageInfo"]["hasNextPage"] == false {
            break;
        }
        after = page["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(names, ["r0", "r1", "r2", "r3", "r4"]);
}

/// Custom header values (often API keys) are encrypted at rest, shown in
/// full only in the response that set them, masked for every later read
/// (admins and viewers) and in the audit trail, and sent in full.
async fn custom_header_values_stay_secret(backend: Backend) {
    let gw = TestGateway::start(
        backend,
        "secret_key = \"a-test-key-of-reasonable-length-0123\"",
    )
    .await;
    let sink = changewire_test_support::receiver::TestReceiver::start().await;
    const KEY: &str = "sk_live_0123456789abcdef";
    let created = gw
        .graphql(
            "mutation($i: CreateWebhookReceiverInput!) { createWebhookReceiver(input: $i) { webhookReceiver { id headers { key value } } } }",
            json!({"i": {"name": "erp", "webhookUri": sink.url(), "headers": [{"key": "X-Api-Key", "value": KEY}]}}),
        )
        .await;
    let receiver = &created["createWebhookReceiver"]["webhookReceiver"];
    assert_eq!(
        receiver["headers"][0]["value"], KEY,
        "shown in full once, to its creator"
    );
    let rid = receiver["id"].as_str().unwrap().to_string();

    // At rest: sealed, not the key.
    let stored = gw
        .gw()
        .store
        .receiver_headers(rid.parse().unwrap())
        .await
        .unwrap();
    assert!(
        stored[0].value.starts_with("enc:v1:") && !stored[0].value.contains(KEY),
        "{}",
        stored[0].value
    );

    // Later reads, admin and viewer alike: masked.
    let token = changewire_gateway::testing::generate_api_token();
    gw.gw()
        .store
        .insert_api_key(
            "viewer",
            "viewer",
            &changewire_gateway::testing::hash_token(token.expose()),
            "cw_",
        )
        .await
        .unwrap();
    let read = "query($id: ID!) { webhookReceiver(id: $id) { headers { key value } } }";
    for caller in [
        Some(changewire_test_support::gateway::ADMIN_TOKEN),
        Some(token.expose()),
    ] {
        let (_, body) = gw.graphql_as(caller, read, json!({"id": rid})).await;
        let header = &body["data"]["webhookReceiver"]["headers"][0];
        assert_eq!(header["key"], "X-Api-Key", "{body}");
        assert_eq!(header["value"], "********cdef", "{body}");
    }

    // Replacing shows the new value once; the old one is gone.
    let replaced = gw
        .graphql(
            "mutation($r: ID!) { addHeaderToWebhookReceiver(input: { receiverId: $r, key: \"x-api-key\", value: \"sk_live_ffffffffffffffff9999\", replace: true }) { webhookHeader { value } } }",
            json!({"r": rid}),
        )
        .await;
    assert_eq!(
        replaced["addHeaderToWebhookReceiver"]["webhookHeader"]["value"],
        "sk_live_ffffffffffffffff9999"
    );

    // Sent in full; masked in the audit trail.
    gw.graphql(
        "mutation($r: ID!) { createWebhookSubscription(input: { receiverId: $r, resource: RUNS, action: UPDATE }) { webhookSubscription { id } } }",
        json!({"r": rid}),
    )
    .await;
    // (Settings reach the delivery engine within moments, not instantly.)
    changewire_test_support::eventually(
        "a delivery with the new key",
        std::time::Duration::from_secs(20),
        || async {
            gw.publish(
                json!({"resource": "RUNS", "action": "UPDATE", "id": 1, "new": {"status": "x"}}),
            )
            .await;
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            sink.received()
                .iter()
                .any(|r| r.header("x-api-key") == Some("sk_live_ffffffffffffffff9999"))
                .then_some(())
        },
    )
    .await;
    let event = changewire_test_support::eventually("the attempt is recorded", std::time::Duration::from_secs(20), || async {
        let r: i64 = rid.parse().unwrap();
        let events = gw
            .graphql("query($r: Int) { webhookEvents(filters: { receiverId: $r }) { status attempts { requestHeaders } } }", json!({"r": r}))
            .await["webhookEvents"]
            .clone();
        events.as_array().and_then(|e| e.iter().find(|e| e["status"] == "succeeded" && e["attempts"][0]["requestHeaders"].to_string().contains("9999"))).cloned()
    })
    .await;
    let audited = event["attempts"][0]["requestHeaders"].to_string();
    assert!(!audited.contains("sk_live_ffff"), "{audited}");
    assert!(audited.contains("********9999"), "{audited}");
}

/// Secrets stored in clear before a key was configured (shared secret,
/// header values) are encrypted when a gateway starts with a key, and
/// keep working.
async fn secrets_stored_in_clear_are_sealed_once_a_key_is_set(backend: Backend) {
    let mut clear = TestGateway::start(backend, "").await;
    let sink = changewire_test_support::receiver::TestReceiver::start().await;
    let created = clear
        .graphql(
            "mutation($i: CreateWebhookReceiverInput!) { createWebhookReceiver(input: $i) { webhookReceiver { id sharedSecret } } }",
            json!({"i": {"name": "erp", "webhookUri": sink.url(), "headers": [{"key": "X-Api-Key", "value": "sk_plain_0123456789"}]}}),
        )
        .await;
    let rid: changewire_gateway::testing::ReceiverId =
        created["createWebhookReceiver"]["webhookReceiver"]["id"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
    let stored = clear.gw().store.receiver_headers(rid).await.unwrap();
    assert_eq!(
        stored[0].value, "sk_plain_0123456789",
        "no key: stored in clear"
    );
    clear.stop().await;

    let keyed = TestGateway::start_with_store(
        clear.store_url.clone(),
        None,
        tempfile::tempdir().unwrap(),
        "secret_key = \"a-test-key-of-reasonable-length-0123\"",
    )
    .await;
    let store = &keyed.gw().store;
    assert!(
        store.receiver_headers(rid).await.unwrap()[0]
            .value
            .starts_with("enc:v1:")
    );
    assert!(
        store
            .receiver(rid)
            .await
            .unwrap()
            .unwrap()
            .shared_secret
            .starts_with("enc:v1:")
    );
    keyed
        .graphql(
            "mutation($r: ID!) { createWebhookSubscription(input: { receiverId: $r, resource: RUNS, action: UPDATE }) { webhookSubscription { id } } }",
            json!({"r": rid.to_string()}),
        )
        .await;
    keyed
        .publish(json!({"resource": "RUNS", "action": "UPDATE", "id": 1, "new": {"status": "x"}}))
        .await;
    let got = sink.wait_for(1, std::time::Duration::from_secs(20)).await;
    assert_eq!(got[0].header("x-api-key"), Some("sk_plain_0123456789"));
}

/// A receiver and its headers are written together: a header that cannot
/// be stored leaves no receiver behind.
async fn a_receiver_is_created_with_its_headers_or_not_at_all(backend: Backend) {
    let gw = TestGateway::start(backend, "").await;
    let store = &gw.gw().store;
    let before = store.receivers_page(0, 100).await.unwrap().len();
    let fields = crate::stored_settings(
        "https://example.com/h".into(),
        changewire_gateway::testing::RetryPolicy::Fixed,
        1,
    );
    let twice = [
        ("X-A".to_string(), "1".to_string()),
        ("x-a".to_string(), "2".to_string()),
    ];
    let err = store
        .create_receiver(
            &changewire_gateway::testing::NewReceiver {
                settings: fields.clone(),
                headers: twice.to_vec(),
                signing_key: None,
            },
            "whsec_c2VjcmV0",
            &Default::default(),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("nothing was created"), "{err}");
    assert_eq!(store.receivers_page(0, 100).await.unwrap().len(), before);
}

both_backends! {
    header_secrets => custom_header_values_stay_secret,
    created_whole => a_receiver_is_created_with_its_headers_or_not_at_all,
    sealed_once_keyed => secrets_stored_in_clear_are_sealed_once_a_key_is_set,
    lifecycle => receivers_lifecycle,
    racing_updates => racing_updates_one_wins,
    pagination => pagination_and_totals,
}
