//! Where, and with what headers, a receiver may be registered: reserved
//! header names, URLs stored in the form that is sent (and signed), and IPv6
//! forms that hide an IPv4 address. Registration does no network access;
//! nothing here connects anywhere but 127.0.0.1.

use std::time::Duration;

use changewire_core::ion;
use changewire_test_support::Backend;
use changewire_test_support::gateway::TestGateway;
use changewire_test_support::receiver::TestReceiver;
use serde_json::{Value, json};

const CREATE: &str = "mutation($i: CreateWebhookReceiverInput!) { createWebhookReceiver(input: $i) { webhookReceiver { id _etag webhookUri } } }";
const UPDATE: &str = "mutation($i: UpdateWebhookReceiverInput!) { updateWebhookReceiver(input: $i) { webhookReceiver { id _etag webhookUri } } }";
const ADD_HEADER: &str = "mutation($i: AddHeaderToWebhookReceiverInput!) { addHeaderToWebhookReceiver(input: $i) { webhookHeader { id } } }";
const GET: &str =
    "query($id: ID!) { webhookReceiver(id: $id) { _etag webhookUri headers { key } } }";

/// Headers a receiver could set before, each reserved for a reason.
const RESERVED_LOOK_ALIKES: [&str; 6] = [
    "User-Agent",
    "Expect",
    "Content-Encoding",
    "Proxy-Connection",
    "X-Ion-Signature-V2",
    "webhook-signature-x",
];

/// Asserts a BAD_USER_INPUT on `field` whose message contains every needle.
fn assert_refused(response: &Value, field: &str, needles: &[&str]) {
    let err = &response["errors"][0];
    assert_eq!(err["extensions"]["code"], "BAD_USER_INPUT", "{response}");
    assert_eq!(err["extensions"]["field"], field, "{response}");
    let message = err["message"].as_str().unwrap_or_default();
    for needle in needles {
        assert!(message.contains(needle), "`{needle}` not in {message}");
    }
}

async fn create(gw: &TestGateway, input: Value) -> Value {
    gw.graphql(CREATE, json!({ "i": input })).await["createWebhookReceiver"]["webhookReceiver"]
        .clone()
}

async fn get(gw: &TestGateway, id: &Value) -> Value {
    gw.graphql(GET, json!({ "id": id })).await["webhookReceiver"].clone()
}

async fn reserved_headers_are_refused_and_change_nothing(backend: Backend) {
    let gw = TestGateway::start(backend, "").await;
    for name in RESERVED_LOOK_ALIKES {
        let input = json!({"name": "r", "webhookUri": "https://hooks.example.com/h",
                           "headers": [{"key": "X-Fine", "value": "1"}, {"key": name, "value": "v"}]});
        let r = gw.graphql_raw(CREATE, json!({ "i": input })).await;
        assert_refused(&r, "input.headers[1].key", &[name, "reserved"]);
    }
    assert_eq!(
        gw.gw().store.receiver_count().await.unwrap(),
        0,
        "no receiver was created"
    );

    let receiver = create(
        &gw,
        json!({"name": "r", "webhookUri": "https://hooks.example.com/h"}),
    )
    .await;
    for name in RESERVED_LOOK_ALIKES {
        let r = gw
            .graphql_raw(
                ADD_HEADER,
                json!({"i": {"receiverId": receiver["id"], "key": name, "value": "v"}}),
            )
            .await;
        assert_refused(&r, "input.key", &[name, "reserved"]);
    }
    let after = get(&gw, &receiver["id"]).await;
    assert_eq!(after["headers"], json!([]), "no header was added");
    assert_eq!(after["_etag"], receiver["_etag"]);
}

async fn urls_the_sender_cannot_send_are_refused(backend: Backend) {
    let gw = TestGateway::start(
        backend,
        "allow_http = false\nallow_private_networks = false",
    )
    .await;
    let bad = [
        ("https://hooks.example.com/a b", &["a space", "%20"][..]),
        (
            "https://hooks.example.com/a\\b",
            &["a backslash", "%5C"][..],
        ),
        ("https://hooks.example.com\\a", &["a backslash"][..]),
    ];
    for (uri, needles) in bad {
        let r = gw
            .graphql_raw(CREATE, json!({"i": {"name": "r", "webhookUri": uri}}))
            .await;
        assert_refused(&r, "input.webhookUri", needles);
    }
    assert_eq!(gw.gw().store.receiver_count().await.unwrap(), 0);

    let receiver = create(
        &gw,
        json!({"name": "r", "webhookUri": "https://hooks.example.com/ok"}),
    )
    .await;
    for (uri, needles) in bad {
        let r = gw
            .graphql_raw(
                UPDATE,
                json!({"i": {"id": receiver["id"], "etag": receiver["_etag"], "webhookUri": uri}}),
            )
            .await;
        assert_refused(&r, "input.webhookUri", needles);
    }
    let after = get(&gw, &receiver["id"]).await;
    assert_eq!(after["webhookUri"], "https://hooks.example.com/ok");
    assert_eq!(after["_etag"], receiver["_etag"], "nothing was changed");
}

async fn urls_are_stored_normalised_on_create_and_update(backend: Backend) {
    let gw = TestGateway::start(
        backend,
        "allow_http = false\nallow_private_networks = false",
    )
    .await;
    let receiver = create(
        &gw,
        json!({"name": "r", "webhookUri": "  HTTPS://Example.COM/path  "}),
    )
    .await;
    assert_eq!(receiver["webhookUri"], "https://example.com/path");
    let updated = gw
        .graphql(
            UPDATE,
            json!({"i": {"id": receiver["id"], "etag": receiver["_etag"],
                         "webhookUri": "HTTPS://B\u{fc}cher.Example:443/Other?Q=1"}}),
        )
        .await["updateWebhookReceiver"]["webhookReceiver"]
        .clone();
    // Scheme and host as WHATWG writes them; the path and query as given.
    assert_eq!(
        updated["webhookUri"],
        "https://xn--bcher-kva.example/Other?Q=1"
    );
}

async fn the_signature_verifies_against_the_stored_url(backend: Backend) {
    let gw = TestGateway::start(backend, "").await;
    let sink = TestReceiver::start().await;
    let given = sink.url().replace("http://", "HTTP://");
    let (id, secret) = gw
        .receiver_with(&given, &[("RUNS", "UPDATE")], json!({}))
        .await;
    let stored = get(&gw, &json!(id)).await["webhookUri"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(stored, sink.url(), "stored with the scheme lower-cased");
    let event = json!({"resource": "RUNS", "action": "UPDATE", "id": 1, "old": {"s": "a"}, "new": {"s": "b"}});
    assert_eq!(gw.publish(event).await.status, 202);
    let got = sink.wait_for(1, Duration::from_secs(20)).await;
    let signature = got[0].header("x-ion-signature").unwrap();
    ion::verify_body(&secret, &stored, &got[0].body, signature)
        .unwrap_or_else(|e| panic!("signature does not verify with {stored}: {e}"));
}

async fn ipv6_forms_hiding_a_private_ipv4_are_refused(backend: Backend) {
    let gw = TestGateway::start(
        backend,
        "allow_http = false\nallow_private_networks = false",
    )
    .await;
    for (uri, kind) in [
        ("https://[::ffff:0:7f00:1]/", "a loopback"),
        ("https://[::ffff:0:808:808]/", "an IPv4-translated"),
        ("https://[::127.0.0.1]/", "a loopback"),
        ("https://[::808:808]/", "an IPv4-compatible"),
        ("https://[2002:7f00:1::]/", "a loopback"),
        ("https://[2002:a00:1::1]/", "a private"),
        ("https://[2002:808:808::1]/", "a 6to4"),
        (
            "https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/",
            "a Teredo",
        ),
        ("https://[100::1]/", "a discard-only"),
        ("https://[64:ff9b:1::a00:1]/", "a NAT64 local-use"),
        ("https://[64:ff9b::a9fe:a9fe]/", "a cloud metadata"),
        ("https://[2001:db8::1]/", "a documentation"),
        ("https://[3fff::1]/", "a documentation"),
        ("https://[2001:2::1]/", "an IETF protocol"),
        ("https://[4000::1]/", "a reserved"),
        ("https://192.88.99.1/", "a 6to4 relay anycast"),
    ] {
        let r = gw
            .graphql_raw(CREATE, json!({"i": {"name": "r", "webhookUri": uri}}))
            .await;
        assert_refused(&r, "input.webhookUri", &[kind, "--allow-private-networks"]);
    }
    assert_eq!(gw.gw().store.receiver_count().await.unwrap(), 0);
    // Public controls (registration does no network access).
    for uri in [
        "https://[2606:4700::1111]/h",
        "https://[::ffff:8.8.8.8]/h",
        "https://8.8.8.8/h",
    ] {
        create(&gw, json!({"name": "ok", "webhookUri": uri})).await;
    }
}

both_backends! {
    reserved_headers => reserved_headers_are_refused_and_change_nothing,
    unsendable_urls => urls_the_sender_cannot_send_are_refused,
    normalised_urls => urls_are_stored_normalised_on_create_and_update,
    signed_with_stored_url => the_signature_verifies_against_the_stored_url,
    embedded_ipv4 => ipv6_forms_hiding_a_private_ipv4_are_refused,
}
