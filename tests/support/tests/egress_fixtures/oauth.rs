//! The token endpoint and its protected receiver, over plain HTTP.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use changewire_test_support::egress::TokenEndpoint;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use super::WAIT;

/// Sends a request; returns status, `www-authenticate` and body.
async fn send(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, Option<String>, String) {
    let client: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build(HttpConnector::new());
    let mut request = hyper::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let request = request
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    let response = client.request(request).await.unwrap();
    let status = response.status().as_u16();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_string());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        challenge,
        String::from_utf8_lossy(&body).into_owned(),
    )
}

const FORM: (&str, &str) = ("content-type", "application/x-www-form-urlencoded");

#[tokio::test(flavor = "multi_thread")]
async fn token_endpoint_issues_checks_and_revokes_tokens() {
    let idp = TokenEndpoint::start("client 1", "s3cr:t&=").await;
    assert_eq!(
        idp.token_url(),
        format!("http://{}/oauth/token", idp.addr())
    );
    assert_eq!(idp.hook_url(), format!("http://{}/hook", idp.addr()));
    let basic = format!("Basic {}", BASE64.encode("client+1:s3cr%3At%26%3D"));
    let auth = ("authorization", basic.as_str());
    let url = idp.token_url();

    let (status, _, body) = send(
        "POST",
        &url,
        &[FORM, auth],
        "grant_type=client_credentials&scope=hooks%3Awrite",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let token: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(token["access_token"], "tok-1");
    assert_eq!(token["token_type"], "Bearer");
    assert_eq!(token["expires_in"], 3600);
    let form = "grant_type=client_credentials&client_id=client+1&client_secret=s3cr%3At%26%3D";
    let (status, _, body) = send("POST", &url, &[FORM], form).await;
    assert_eq!((status, body.contains("\"tok-2\"")), (200, true), "{body}");

    let wrong = format!("Basic {}", BASE64.encode("client+1:nope"));
    let (status, _, body) = send(
        "POST",
        &url,
        &[FORM, ("authorization", &wrong)],
        "grant_type=client_credentials",
    )
    .await;
    assert_eq!(
        (status, body.as_str()),
        (401, r#"{"error":"invalid_client"}"#)
    );
    let (status, _, body) = send("POST", &url, &[FORM, auth], "grant_type=password").await;
    assert_eq!(
        (status, body.as_str()),
        (400, r#"{"error":"unsupported_grant_type"}"#)
    );
    assert_eq!(idp.issued(), 2);
    assert_eq!(idp.scopes(), vec![Some("hooks:write".to_string()), None]);
    assert_eq!(idp.token_requests().len(), 4);

    let hook = idp.hook_url();
    let (status, challenge, _) = send("POST", &hook, &[], "{}").await;
    assert_eq!(
        (status, challenge.as_deref()),
        (401, Some(r#"Bearer error="invalid_token""#))
    );
    let (status, _, body) = send("POST", &hook, &[("authorization", "Bearer tok-1")], "{}").await;
    assert_eq!((status, body.as_str()), (200, "ok"));
    assert_eq!(
        idp.wait_for_hook(1, WAIT).await[0].header("authorization"),
        Some("Bearer tok-1")
    );
    idp.revoke_all();
    let (status, _, _) = send("POST", &hook, &[("authorization", "Bearer tok-1")], "{}").await;
    assert_eq!(status, 401);
    assert_eq!((idp.hook_count(), idp.hook_rejected()), (1, 2));

    idp.set_expires_in(0);
    let (_, _, body) = send("POST", &url, &[FORM, auth], "grant_type=client_credentials").await;
    assert!(body.contains(r#""expires_in":0"#), "{body}");
    let (status, _, _) = send("POST", &hook, &[("authorization", "Bearer tok-3")], "{}").await;
    assert_eq!(status, 401, "an expired token was accepted");

    idp.set_token_status(500);
    let (status, _, body) =
        send("POST", &url, &[FORM, auth], "grant_type=client_credentials").await;
    assert_eq!(
        (status, body.as_str()),
        (500, r#"{"error":"server_error"}"#)
    );
    assert_eq!(idp.issued(), 3);
}
