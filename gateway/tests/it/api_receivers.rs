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

both_backends! {
    lifecycle => receivers_lifecycle,
    racing_updates => racing_updates_one_wins,
    pagination => pagination_and_totals,
}
