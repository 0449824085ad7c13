//! Bad input is refused with a code that names the field, and changes nothing.

use changewire_test_support::Backend;
use changewire_test_support::gateway::TestGateway;
use serde_json::{Value, json};

const CREATE: &str = "mutation($i: CreateWebhookReceiverInput!) { createWebhookReceiver(input: $i) { webhookReceiver { id } } }";

fn input(overrides: Value) -> Value {
    let mut base = json!({"name": "bad", "webhookUri": "https://hooks.example.com/h"});
    for (k, v) in overrides.as_object().unwrap() {
        base[k] = v.clone();
    }
    json!({ "i": base })
}

async fn refused(gw: &TestGateway, query: &str, vars: Value, code: &str, needle: &str) {
    let r = gw.graphql_raw(query, vars.clone()).await;
    let err = &r["errors"][0];
    assert_eq!(err["extensions"]["code"], code, "{vars}: {r}");
    let text = format!("{} {}", err["message"], err["extensions"]["field"]);
    assert!(text.contains(needle), "{vars}: `{needle}` not in {text}");
}

async fn strict_gateway_refuses(backend: Backend) {
    // A gateway with the default (strict) destination policy.
    let gw = TestGateway::start(
        backend,
        "allow_http = false\nallow_private_networks = false",
    )
    .await;
    for (uri, needle) in [
        ("/relative/path", "input.webhookUri"),
        ("not a url", "input.webhookUri"),
        ("https://user:pass@hooks.example.com/h", "credentials"),
        ("http://hooks.example.com/h", "plain http"),
        ("https://127.0.0.1/h", "loopback"),
        ("https://10.0.0.8/h", "private"),
        ("https://169.254.169.254/latest", "metadata"),
        ("https://100.64.1.1/h", "carrier-grade NAT"),
        ("https://[fe80::1]/h", "link-local"),
        ("https://224.1.1.1/h", "multicast"),
        ("https://localhost/h", "local name"),
        ("ftp://hooks.example.com/h", "https"),
    ] {
        refused(
            &gw,
            CREATE,
            input(json!({"webhookUri": uri})),
            "BAD_USER_INPUT",
            needle,
        )
        .await;
    }
    // A name that does not resolve here is accepted (checked again at delivery).
    let ok = gw
        .graphql_raw(
            CREATE,
            input(json!({"webhookUri": "https://no-such-host.changewire-test.example/h"})),
        )
        .await;
    assert!(ok.get("errors").is_none(), "{ok}");
    assert_eq!(
        gw.gw().store.receiver_count().await.unwrap(),
        1,
        "only the valid receiver exists"
    );
}

async fn fields_are_checked(backend: Backend) {
    let gw = TestGateway::start(backend, "[api]\nmax_query_depth = 8").await;
    for (overrides, field) in [
        (json!({"expectedResponseCode": 99}), "expectedResponseCode"),
        (json!({"expectedResponseCode": 600}), "expectedResponseCode"),
        (json!({"name": "   "}), "input.name"),
        (json!({"timeoutMs": 10}), "timeoutMs"),
        (json!({"timeoutMs": 120000}), "timeoutMs"),
        (json!({"maxAttempts": 0}), "maxAttempts"),
        (json!({"contentType": "xml"}), "contentType"),
        (
            json!({"headers": [{"key": "X-A", "value": "a\r\nInjected: 1"}]}),
            "input.headers[0].value",
        ),
        (
            json!({"headers": [{"key": "Content-Type", "value": "text/plain"}]}),
            "input.headers[0].key",
        ),
        (
            json!({"headers": [{"key": "x-ion-signature", "value": "forged"}]}),
            "input.headers[0].key",
        ),
        (
            json!({"headers": [{"key": "Authorization", "value": "Bearer x"}]}),
            "input.headers[0].key",
        ),
        (
            json!({"headers": [{"key": "Bad Name", "value": "v"}]}),
            "input.headers[0].key",
        ),
        (json!({"signatureSchemes": []}), "signatureSchemes"),
        (
            json!({"basicAuth": {"username": "a:b", "password": "p"}}),
            "basicAuth.username",
        ),
    ] {
        refused(&gw, CREATE, input(overrides), "BAD_USER_INPUT", field).await;
    }
    assert_eq!(gw.gw().store.receiver_count().await.unwrap(), 0);

    // Unknown resource or action: a validation error naming them.
    let sub = "mutation { createWebhookSubscription(input: { receiverId: 1, resource: NOT_A_RESOURCE, action: CREATE }) { webhookSubscription { id } } }";
    refused(&gw, sub, json!({}), "BAD_USER_INPUT", "NOT_A_RESOURCE").await;
    let sub = "mutation { createWebhookSubscription(input: { receiverId: 1, resource: RUNS, action: UPSERT }) { webhookSubscription { id } } }";
    refused(&gw, sub, json!({}), "BAD_USER_INPUT", "UPSERT").await;
    // Resource given as a variable string that is not configured.
    let sub = "mutation($r: ResourceEnum!) { createWebhookSubscription(input: { receiverId: 1, resource: $r, action: CREATE }) { webhookSubscription { id } } }";
    let r = gw.graphql_raw(sub, json!({"r": "NOPE"})).await;
    assert_eq!(
        r["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{r}"
    );
    // A subscription to a receiver that does not exist.
    let sub = "mutation { createWebhookSubscription(input: { receiverId: \"999\", resource: RUNS, action: CREATE }) { webhookSubscription { id } } }";
    refused(
        &gw,
        sub,
        json!({}),
        "BAD_USER_INPUT",
        "receiver 999 does not exist",
    )
    .await;
    // Ids that are not ids.
    refused(
        &gw,
        "{ webhookReceiver(id: \"abc\") { id } }",
        json!({}),
        "BAD_USER_INPUT",
        "not an id",
    )
    .await;
    // Unknown event status.
    refused(
        &gw,
        "{ webhookEvents(filters: { status: \"exploded\" }) { id } }",
        json!({}),
        "BAD_USER_INPUT",
        "filters.status",
    )
    .await;
    // Queries deeper than the configured limit.
    let deep = "{ webhookSubscriptions { edges { node { receiver { subscriptions { receiver { subscriptions { receiver { id } } } } } } } } }";
    refused(&gw, deep, json!({}), "BAD_USER_INPUT", "nested too deep").await;
    // Oversized bodies: refused from the declared length, before the body
    // is read. (Only the head is sent: a client still writing a body the
    // server will never read can see the connection reset before the 413.)
    let status = status_for_declared_length(&gw.base(), 2 * 1024 * 1024).await;
    assert_eq!(status, 413, "oversized body");
    assert_eq!(
        gw.gw()
            .store
            .subscription_count(&Default::default())
            .await
            .unwrap(),
        0
    );
}

async fn ingest_is_checked(backend: Backend) {
    let gw = TestGateway::start(backend, "").await;
    for (body, field) in [
        (
            json!({"resource": "NOPE", "action": "CREATE", "id": 1, "new": {}}),
            "resource",
        ),
        (
            json!({"resource": "RUNS", "action": "MERGE", "id": 1, "new": {}}),
            "action",
        ),
        (
            json!({"resource": "RUNS", "action": "CREATE", "id": {"a": 1}, "new": {}}),
            "id",
        ),
        (
            json!({"resource": "RUNS", "action": "CREATE", "id": 1, "new": [1]}),
            "new",
        ),
        (
            json!({"resource": "RUNS", "action": "CREATE", "id": 1}),
            "new",
        ),
        (
            json!({"resource": "RUNS", "action": "CREATE", "id": 1, "new": {}, "bogus": 1}),
            "bogus",
        ),
    ] {
        let r = gw.publish(body.clone()).await;
        assert_eq!(r.status, 400, "{body}: {}", r.body);
        let v = r.json();
        assert_eq!(v["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
        let text = format!(
            "{} {}",
            v["errors"][0]["message"], v["errors"][0]["extensions"]["field"]
        );
        assert!(text.contains(field), "{body}: {text}");
    }
    assert_eq!(gw.gw().store.change_count().await.unwrap(), 0);
}

both_backends! {
    destinations => strict_gateway_refuses,
    fields => fields_are_checked,
    ingest => ingest_is_checked,
}

/// Sends only the head of a `POST /graphql` declaring `length` body bytes;
/// returns the response status.
async fn status_for_declared_length(base: &str, length: usize) -> u16 {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let addr = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /graphql HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n\
         authorization: Bearer {}\r\ncontent-length: {length}\r\n\r\n",
        changewire_test_support::gateway::ADMIN_TOKEN
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    let mut buf = [0u8; 1024];
    while !response.windows(2).any(|w| w == b"\r\n") {
        let n = tokio::time::timeout(std::time::Duration::from_secs(10), stream.read(&mut buf))
            .await
            .expect("no answer within 10 s to a body that was never sent")
            .unwrap();
        assert!(n > 0, "connection closed without a response");
        response.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&response);
    line.split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP status line: {line}"))
}
