//! Outbound traffic with real parts on loopback: an HTTP CONNECT proxy, a
//! SOCKS5 proxy, a TLS receiver that requires a client certificate, and an
//! OAuth2 token endpoint; each with its failure modes.

use std::time::Duration;

use changewire_test_support::egress::{
    ClientAuth, HttpConnectProxy, Socks5Proxy, TlsReceiver, TokenEndpoint,
};
use changewire_test_support::gateway::TestGateway;
use changewire_test_support::receiver::TestReceiver;
use changewire_test_support::{Backend, eventually};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(20);

fn run_event(id: i64) -> Value {
    json!({"resource": "RUNS", "action": "UPDATE", "id": id, "old": {"status": "a"}, "new": {"status": "b"}})
}

/// A gateway refusing private networks except loopback, sending through `proxy`.
async fn gateway_via(proxy: &str, allow: &str) -> TestGateway {
    TestGateway::start(
        Backend::Sqlite,
        &format!(
            "allow_private_networks = false\n[delivery]\nproxy = \"{proxy}\"\nallow_networks = [\"{allow}\"]\n"
        ),
    )
    .await
}

/// The receiver's events with their attempts.
async fn events(gw: &TestGateway, receiver: &str) -> Value {
    let q = "query($r: Int) { webhookEvents(filters: { receiverId: $r }) { status lastError \
             attempts { responseStatus errorClass error requestHeaders } } }";
    gw.graphql(q, json!({"r": receiver.parse::<i64>().unwrap()}))
        .await["webhookEvents"]
        .clone()
}

/// Waits for the first attempt of the receiver's first event and returns it.
async fn first_attempt(gw: &TestGateway, receiver: &str) -> Value {
    eventually("an attempt is recorded", WAIT, || async {
        let evs = events(gw, receiver).await;
        let attempt = evs[0]["attempts"][0].clone();
        (!attempt.is_null()).then_some(attempt)
    })
    .await
}

/// Registers a receiver at `url` with one attempt per delivery (and
/// `extra`), publishes event `event`, and returns that attempt.
async fn one_attempt(gw: &TestGateway, url: &str, extra: Value, event: i64) -> Value {
    let mut input = json!({"maxAttempts": 1});
    for (k, v) in extra.as_object().into_iter().flatten() {
        input[k] = v.clone();
    }
    let (id, _) = gw.receiver_with(url, &[("RUNS", "UPDATE")], input).await;
    gw.publish(run_event(event)).await;
    first_attempt(gw, &id).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_connect_proxy_carries_deliveries_to_checked_addresses() {
    let proxy = HttpConnectProxy::start_with_auth("gw", "p@ss").await;
    let gw = gateway_via(&proxy.url(), "127.0.0.0/8").await;
    let receiver = TestReceiver::start().await;
    // Registered by name: the gateway resolves it and tunnels to the address.
    let url = receiver.url().replace("127.0.0.1", "localhost");
    gw.receiver_with(&url, &[("RUNS", "UPDATE")], json!({}))
        .await;
    gw.publish(run_event(1)).await;
    receiver.wait_for(1, WAIT).await;
    let port = receiver.addr.port();
    assert_eq!(proxy.targets(), vec![format!("127.0.0.1:{port}")]);

    // HTTPS goes through the tunnel with TLS end to end: the receiver's
    // certificate is checked against its own name (and its CA bundle).
    let tls = TlsReceiver::start(ClientAuth::None).await;
    let tls_url = tls.url().replace("127.0.0.1", "localhost");
    gw.receiver_with(
        &tls_url,
        &[("RUNS", "UPDATE")],
        json!({"caBundlePem": tls.ca_pem()}),
    )
    .await;
    gw.publish(run_event(11)).await;
    tls.wait_for(1, WAIT).await;
    assert!(
        proxy
            .targets()
            .contains(&format!("127.0.0.1:{}", tls.addr().port()))
    );

    // A name that resolves only to refused addresses never reaches the proxy.
    let before = proxy.connections();
    let strict = gateway_via(&proxy.url(), "10.99.0.0/16").await;
    let attempt = one_attempt(&strict, &url, json!({}), 2).await;
    assert_eq!(attempt["errorClass"], "ssrf", "{attempt}");
    assert!(
        attempt["error"].as_str().unwrap().contains("loopback"),
        "{attempt}"
    );
    assert_eq!(proxy.connections(), before, "no connection to the proxy");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_failures_are_clear_attempt_errors() {
    // Down: nothing listens there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let down = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let gw = gateway_via(&down, "127.0.0.0/8").await;
    let receiver = TestReceiver::start().await;
    let attempt = one_attempt(&gw, &receiver.url(), json!({}), 1).await;
    assert_eq!(attempt["errorClass"], "proxy", "{attempt}");
    let error = attempt["error"].as_str().unwrap();
    assert!(
        error.contains(&format!("proxy {down} cannot be reached")),
        "{error}"
    );

    // Refusing: a 403 to CONNECT, and wrong credentials (407).
    let refusing = HttpConnectProxy::start().await;
    refusing.refuse_targets(true);
    let gw = gateway_via(&refusing.url(), "127.0.0.0/8").await;
    let attempt = one_attempt(&gw, &receiver.url(), json!({}), 2).await;
    assert_eq!(attempt["errorClass"], "proxy", "{attempt}");
    assert!(
        attempt["error"].as_str().unwrap().contains("403"),
        "{attempt}"
    );

    let guarded = HttpConnectProxy::start_with_auth("gw", "right").await;
    let wrong = guarded.url().replace("gw:right@", "gw:wrong@");
    let gw = gateway_via(&wrong, "127.0.0.0/8").await;
    let attempt = one_attempt(&gw, &receiver.url(), json!({}), 3).await;
    let error = attempt["error"].as_str().unwrap();
    assert!(
        error.contains("407") && error.contains("user and password"),
        "{error}"
    );
    assert_eq!(receiver.count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socks5_resolves_here_and_socks5h_lets_the_proxy_resolve() {
    let receiver = TestReceiver::start().await;
    let port = receiver.addr.port();
    let url = receiver.url().replace("127.0.0.1", "localhost");

    let socks = Socks5Proxy::start_with_auth("gw", "secret").await;
    let gw = gateway_via(&socks.url(), "127.0.0.0/8").await;
    gw.receiver_with(&url, &[("RUNS", "UPDATE")], json!({}))
        .await;
    gw.publish(run_event(1)).await;
    receiver.wait_for(1, WAIT).await;
    assert_eq!(socks.targets(), vec![format!("127.0.0.1:{port}")]);

    let socks_h = Socks5Proxy::start().await;
    let gw = gateway_via(
        &socks_h.url().replace("socks5://", "socks5h://"),
        "127.0.0.0/8",
    )
    .await;
    gw.receiver_with(&url, &[("RUNS", "UPDATE")], json!({}))
        .await;
    gw.publish(run_event(2)).await;
    receiver.wait_for(2, WAIT).await;
    assert_eq!(socks_h.targets(), vec![format!("localhost:{port}")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_proxy_hosts_are_reached_directly() {
    let proxy = HttpConnectProxy::start().await;
    let gw = TestGateway::start(
        Backend::Sqlite,
        &format!(
            "[delivery]\nproxy = \"{}\"\nno_proxy = [\"127.0.0.0/8\"]\n",
            proxy.url()
        ),
    )
    .await;
    let receiver = TestReceiver::start().await;
    gw.receiver_with(&receiver.url(), &[("RUNS", "UPDATE")], json!({}))
        .await;
    gw.publish(run_event(1)).await;
    receiver.wait_for(1, WAIT).await;
    assert_eq!(proxy.connections(), 0);
}

async fn mutual_tls(backend: Backend) {
    let gw = TestGateway::start(
        backend,
        "secret_key = \"a-test-key-of-reasonable-length-0123\"",
    )
    .await;
    let tls = TlsReceiver::start(ClientAuth::Required).await;
    let q = "mutation($input: CreateWebhookReceiverInput!) { createWebhookReceiver(input: $input) { \
             webhookReceiver { id hasClientCertificate caBundlePem } } }";
    let created = gw
        .graphql(
            q,
            json!({"input": {
                "name": "mtls", "webhookUri": tls.url(), "caBundlePem": tls.ca_pem(),
                "clientCertificate": {"certificatePem": tls.client_cert_pem(), "privateKeyPem": tls.client_key_pem()},
            }}),
        )
        .await;
    let r = &created["createWebhookReceiver"]["webhookReceiver"];
    assert_eq!(r["hasClientCertificate"], true, "{created}");
    assert!(
        r["caBundlePem"]
            .as_str()
            .unwrap()
            .contains("BEGIN CERTIFICATE")
    );
    assert!(
        !created.to_string().contains("PRIVATE KEY"),
        "the key never comes back"
    );
    let id = r["id"].as_str().unwrap().to_string();
    gw.graphql(
        &format!("mutation {{ createWebhookSubscription(input: {{ receiverId: \"{id}\", resource: RUNS, action: UPDATE }}) {{ webhookSubscription {{ id }} }} }}"),
        json!({}),
    )
    .await;
    // Sealed at rest, like the shared secret.
    let stored = gw
        .gw()
        .store
        .receiver(id.parse::<i64>().unwrap().into())
        .await
        .unwrap()
        .unwrap();
    let egress = &stored.settings.egress;
    for sealed in [&egress.tls_client_certificate, &egress.tls_client_key] {
        let sealed = sealed.as_deref().unwrap();
        assert!(!sealed.contains("-----BEGIN"), "stored sealed: {sealed}");
    }
    gw.publish(run_event(1)).await;
    tls.wait_for(1, WAIT).await;
    assert_eq!(tls.received()[0].json()["data"]["new"]["status"], "b");

    // The wrong certificate (another CA) is refused by the receiver and
    // nothing is delivered. Under TLS 1.3 the server refuses a client
    // certificate after the client's side of the handshake is done: the
    // client sees its alert (`tls`) or, when the connection closes before
    // hyper reads it, only the closed connection (`io`).
    let stranger = TlsReceiver::start(ClientAuth::Required).await;
    let attempt = one_attempt(&gw, &stranger.url(), json!({"caBundlePem": stranger.ca_pem(),
                   "clientCertificate": {"certificatePem": stranger.stranger_cert_pem(), "privateKeyPem": stranger.stranger_key_pem()}}), 2).await;
    assert!(
        attempt["errorClass"] == "tls" || attempt["errorClass"] == "io",
        "{attempt}"
    );
    assert_eq!(attempt["responseStatus"], Value::Null, "{attempt}");
    assert_eq!(stranger.count(), 0);
    changewire_test_support::eventually("the receiver refused the handshake", WAIT, || async {
        (stranger.handshakes_failed() >= 1).then_some(())
    })
    .await;
    // Without its CA bundle the receiver's certificate is not trusted.
    let attempt = one_attempt(&gw, &tls.url(), json!({}), 3).await;
    assert_eq!(attempt["errorClass"], "tls", "{attempt}");
    assert!(
        attempt["error"].as_str().unwrap().contains("certificate"),
        "{attempt}"
    );
}

async fn bad_tls_and_oauth_input(backend: Backend) {
    let gw = TestGateway::start(backend, "").await;
    let tls = TlsReceiver::start(ClientAuth::Required).await;
    let other = TlsReceiver::start(ClientAuth::Required).await;
    let q = "mutation($input: CreateWebhookReceiverInput!) { createWebhookReceiver(input: $input) { webhookReceiver { id } } }";
    for (extra, field) in [
        (
            json!({"clientCertificate": {"certificatePem": "not a certificate", "privateKeyPem": tls.client_key_pem()}}),
            "clientCertificate.certificatePem",
        ),
        (
            json!({"clientCertificate": {"certificatePem": tls.client_cert_pem(), "privateKeyPem": other.client_key_pem()}}),
            "clientCertificate.privateKeyPem",
        ),
        (
            json!({"caBundlePem": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"}),
            "caBundlePem",
        ),
        (
            json!({"oauth2": {"tokenUrl": "ftp://auth.example/token", "clientId": "a", "clientSecret": "b"}}),
            "oauth2.tokenUrl",
        ),
        (
            json!({"oauth2": {"tokenUrl": "https://auth.example/token", "clientId": "a", "clientSecret": ""}}),
            "oauth2.clientSecret",
        ),
        (
            json!({"basicAuth": {"username": "u", "password": "p"},
                   "oauth2": {"tokenUrl": "https://auth.example/token", "clientId": "a", "clientSecret": "b"}}),
            "oauth2",
        ),
    ] {
        let mut input = json!({"name": "bad", "webhookUri": tls.url()});
        for (k, v) in extra.as_object().unwrap() {
            input[k] = v.clone();
        }
        let response = gw.graphql_raw(q, json!({"input": input})).await;
        let error = &response["errors"][0];
        assert_eq!(error["extensions"]["code"], "BAD_USER_INPUT", "{response}");
        assert_eq!(
            error["extensions"]["field"],
            format!("input.{field}"),
            "{response}"
        );
    }
    let count = gw
        .graphql("{ webhookReceivers { totalCount } }", json!({}))
        .await;
    assert_eq!(
        count["webhookReceivers"]["totalCount"], 0,
        "nothing was created"
    );
}

async fn oauth2_tokens(backend: Backend) {
    let gw = TestGateway::start(backend, "").await;
    let auth = TokenEndpoint::start("changewire", "s3cret").await;
    let (id, _) = gw
        .receiver_with(
            &auth.hook_url(),
            &[("RUNS", "UPDATE")],
            json!({"maxAttempts": 2, "retryPolicy": "FIXED", "retryIntervalSeconds": 1,
                   "oauth2": {"tokenUrl": auth.token_url(), "clientId": "changewire", "clientSecret": "s3cret", "scope": "webhooks"}}),
        )
        .await;
    let read = gw
        .graphql(
            "query($id: ID!) { webhookReceiver(id: $id) { oauth2 { tokenUrl clientId scope } } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(
        read["webhookReceiver"]["oauth2"],
        json!({"tokenUrl": auth.token_url(), "clientId": "changewire", "scope": "webhooks"})
    );
    assert!(!read.to_string().contains("s3cret"));

    // One token serves many deliveries.
    gw.publish(run_event(1)).await;
    gw.publish(run_event(2)).await;
    auth.wait_for_hook(2, WAIT).await;
    assert_eq!(auth.issued(), 1);
    assert_eq!(auth.scopes(), vec![Some("webhooks".to_string())]);
    let sent = auth.hook_received();
    assert_eq!(sent[0].header("authorization"), Some("Bearer tok-1"));
    // The audit trail (once recorded) masks the token.
    let evs = eventually("both attempts are recorded", WAIT, || async {
        let evs = events(&gw, &id).await;
        let recorded = evs
            .as_array()
            .is_some_and(|a| a.iter().all(|e| e["status"] == "succeeded"));
        recorded.then_some(evs)
    })
    .await;
    assert!(
        evs.to_string().contains("Bearer ***") && !evs.to_string().contains("tok-1"),
        "{evs}"
    );

    // A revoked token: the 401 fetches a new one and the attempt succeeds.
    auth.revoke_all();
    gw.publish(run_event(3)).await;
    auth.wait_for_hook(3, WAIT).await;
    assert_eq!(auth.issued(), 2);
    assert_eq!(auth.hook_rejected(), 1);
    assert_eq!(
        auth.hook_received()[2].header("authorization"),
        Some("Bearer tok-2")
    );

    // The token endpoint failing: a clear attempt error, nothing sent.
    auth.revoke_all();
    auth.set_token_status(500);
    let attempt = one_attempt(&gw, &auth.hook_url(), json!({"oauth2": {"tokenUrl": auth.token_url(), "clientId": "changewire", "clientSecret": "s3cret"}}), 4).await;
    assert_eq!(attempt["errorClass"], "oauth", "{attempt}");
    let error = attempt["error"].as_str().unwrap();
    assert!(
        error.contains(&auth.token_url()) && error.contains("answered HTTP 500"),
        "{error}"
    );
    // Wrong credentials say so.
    auth.set_token_status(200);
    let attempt = one_attempt(&gw, &auth.hook_url(), json!({"oauth2": {"tokenUrl": auth.token_url(), "clientId": "changewire", "clientSecret": "nope"}}), 5).await;
    assert!(
        attempt["error"]
            .as_str()
            .unwrap()
            .contains("answered HTTP 401: {\"error\":\"invalid_client\"}"),
        "{attempt}"
    );
}

both_backends! {
    mutual_tls_with_a_client_certificate => mutual_tls,
    bad_tls_and_oauth_input_changes_nothing => bad_tls_and_oauth_input,
    oauth2_client_credentials => oauth2_tokens,
}
