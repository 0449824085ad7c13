//! A body `POST /graphql` or `POST /v1/events` cannot use is refused like
//! every other refusal: status 400, `application/json`, a GraphQL error
//! with `extensions.code = "BAD_USER_INPUT"`, `field = "body"` and, when
//! the JSON parser stopped somewhere, its line and column. The `Bearer`
//! scheme of `Authorization` is case-insensitive.

use changewire_test_support::Backend;
use changewire_test_support::gateway::{ADMIN_TOKEN, TestGateway};
use changewire_test_support::http::{Response, request};
use serde_json::{Value, json};

async fn post(gw: &TestGateway, path: &str, content_type: Option<&str>, body: &[u8]) -> Response {
    let auth = format!("Bearer {ADMIN_TOKEN}");
    let mut headers = vec![("authorization", auth.as_str())];
    if let Some(ct) = content_type {
        headers.push(("content-type", ct));
    }
    request(
        "POST",
        &format!("{}{path}", gw.base()),
        &headers,
        Some(body.to_vec()),
    )
    .await
}

/// Asserts a JSON refusal of the body whose message contains `needle`;
/// returns the error.
fn refused(r: &Response, needle: &str) -> Value {
    assert_eq!(r.status, 400, "{needle}: {}", r.body);
    assert_eq!(
        r.content_type.as_deref(),
        Some("application/json"),
        "{needle}: {}",
        r.body
    );
    let v = r.json();
    let errors = v["errors"].as_array().expect("an errors list");
    assert_eq!(errors.len(), 1, "{v}");
    let err = errors[0].clone();
    assert_eq!(err["extensions"]["code"], "BAD_USER_INPUT", "{err}");
    assert_eq!(err["extensions"]["field"], "body", "{err}");
    let message = err["message"].as_str().unwrap();
    assert!(
        message.starts_with("`body`: ") && message.contains(needle),
        "`{needle}` not in {message}"
    );
    err
}

/// Asserts the error carries the parser's position (before the first
/// character of an empty body).
fn at_start(err: &Value) {
    assert_eq!(err["extensions"]["line"], 1, "{err}");
    assert_eq!(err["extensions"]["column"], 0, "{err}");
}

/// Asserts the error carries the parser's position, also written in the message.
fn at(err: &Value, line: u64, column: u64) {
    assert_eq!(err["extensions"]["line"], line, "{err}");
    assert_eq!(err["extensions"]["column"], column, "{err}");
    let message = err["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("line {line} column {column}")),
        "{message}"
    );
}

async fn malformed_graphql_bodies_get_json_errors(backend: Backend) {
    let gw = TestGateway::start(backend, "").await;
    let json_ct = Some("application/json");

    let err = refused(&post(&gw, "/graphql", json_ct, b"").await, "is empty");
    at_start(&err);

    let truncated = br#"{"query": "{ webhookReceivers { totalCount } }""#;
    let err = refused(
        &post(&gw, "/graphql", json_ct, truncated).await,
        "is not valid JSON: EOF while parsing an object",
    );
    at(&err, 1, truncated.len() as u64);

    let multiline = b"{\n  \"query\": \"{ resources { name } }\",\n  \"variables\": {\"a\": }\n}";
    let err = refused(
        &post(&gw, "/graphql", json_ct, multiline).await,
        "is not valid JSON",
    );
    at(&err, 3, 22);

    let err = refused(
        &post(&gw, "/graphql", json_ct, b"query { resources { name } }").await,
        "is not valid JSON: expected value",
    );
    at(&err, 1, 1);

    // JSON, but not a GraphQL request.
    let err = refused(
        &post(&gw, "/graphql", json_ct, b"{}").await,
        "is not a GraphQL request",
    );
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("missing field `query`")
    );
    at(&err, 1, 2);
    let err = refused(
        &post(&gw, "/graphql", json_ct, br#"{"query": 5}"#).await,
        "invalid type: integer `5`, expected a string",
    );
    at(&err, 1, 11);
    refused(
        &post(
            &gw,
            "/graphql",
            json_ct,
            br#"{"query": "{ resources { name } }", "variables": [1]}"#,
        )
        .await,
        "is not a GraphQL request",
    );
    refused(
        &post(&gw, "/graphql", json_ct, b"42").await,
        "is not a GraphQL request",
    );

    // A GraphQL document sent as such: the content type is named.
    refused(
        &post(
            &gw,
            "/graphql",
            Some("application/graphql"),
            b"{ resources { name } }",
        )
        .await,
        "(content-type `application/graphql`: send application/json)",
    );

    // Batches were never accepted; they are refused in JSON too.
    refused(
        &post(
            &gw,
            "/graphql",
            json_ct,
            br#"[{"query": "{ resources { name } }"}]"#,
        )
        .await,
        "batches are not supported",
    );

    // Valid requests run as before, with or without a content type.
    let valid =
        json!({ "query": "query($x: Boolean!) { resources @include(if: $x) { name } }", "variables": { "x": true } })
            .to_string();
    for ct in [json_ct, None, Some("text/plain")] {
        let r = post(&gw, "/graphql", ct, valid.as_bytes()).await;
        assert_eq!(r.status, 200, "{ct:?}: {}", r.body);
        assert_eq!(
            r.json()["data"]["resources"][0]["name"],
            "RUNS",
            "{}",
            r.body
        );
    }
    let r = post(
        &gw,
        "/graphql",
        json_ct,
        br#"{"query": "{ resources { name } }", "variables": null, "operationName": null}"#,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);

    // Without a token the caller is refused first, in JSON as well.
    let r = request(
        "POST",
        &format!("{}/graphql", gw.base()),
        &[("content-type", "application/json")],
        Some(b"{".to_vec()),
    )
    .await;
    assert_eq!(r.status, 401, "{}", r.body);
    assert_eq!(r.content_type.as_deref(), Some("application/json"));
    assert_eq!(
        r.json()["errors"][0]["extensions"]["code"],
        "UNAUTHENTICATED"
    );
}

async fn malformed_event_bodies_name_the_position(backend: Backend) {
    let gw = TestGateway::start(backend, "").await;
    let json_ct = Some("application/json");
    let err = refused(&post(&gw, "/v1/events", json_ct, b"").await, "is empty");
    at_start(&err);
    let truncated = br#"{"resource": "RUNS", "action": "CREATE""#;
    let err = refused(
        &post(&gw, "/v1/events", json_ct, truncated).await,
        "is not valid JSON: EOF while parsing an object",
    );
    at(&err, 1, truncated.len() as u64);
    let err = refused(
        &post(&gw, "/v1/events", json_ct, b"[\n oops]").await,
        "is not valid JSON",
    );
    at(&err, 2, 2);
    let err = refused(
        &post(
            &gw,
            "/v1/events",
            json_ct,
            br#"{"resource": "RUNS", "action": "CREATE", "id": 1, "new": {}, "bogus": 1}"#,
        )
        .await,
        "is not an event or a list of events: unknown field `bogus`",
    );
    assert_eq!(err["extensions"]["line"], 1);
    assert_eq!(gw.gw().store.change_count().await.unwrap(), 0);
}

async fn bearer_scheme_is_case_insensitive(backend: Backend) {
    let gw = TestGateway::start(backend, "").await;
    let token = changewire_gateway::testing::generate_api_token();
    gw.gw()
        .store
        .insert_api_key(
            "dashboards",
            "viewer",
            &changewire_gateway::testing::hash_token(token.expose()),
            "cw_",
        )
        .await
        .unwrap();
    let body = json!({ "query": "{ webhookReceivers { totalCount } }" }).to_string();
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        for secret in [ADMIN_TOKEN, token.expose()] {
            let auth = format!("{scheme} {secret}");
            let r = request(
                "POST",
                &format!("{}/graphql", gw.base()),
                &[
                    ("authorization", &auth),
                    ("content-type", "application/json"),
                ],
                Some(body.clone().into_bytes()),
            )
            .await;
            assert_eq!(r.status, 200, "{scheme}: {}", r.body);
            assert_eq!(r.json()["data"]["webhookReceivers"]["totalCount"], 0);
        }
    }
    // Ingest reads the same header.
    let r = request(
        "POST",
        &format!("{}/v1/events", gw.base()),
        &[
            ("authorization", &format!("BEARER {ADMIN_TOKEN}")),
            ("content-type", "application/json"),
        ],
        Some(br#"{"resource":"RUNS","action":"CREATE","id":1,"new":{"a":1}}"#.to_vec()),
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.body);
    // Another scheme, or the scheme glued to the token, is not a bearer token.
    for auth in [
        format!("Basic {ADMIN_TOKEN}"),
        format!("Bearer{ADMIN_TOKEN}"),
        format!("Bearer:{ADMIN_TOKEN}"),
    ] {
        let r = request(
            "POST",
            &format!("{}/graphql", gw.base()),
            &[
                ("authorization", &auth),
                ("content-type", "application/json"),
            ],
            Some(body.clone().into_bytes()),
        )
        .await;
        assert_eq!(r.status, 401, "{auth}: {}", r.body);
        assert_eq!(r.content_type.as_deref(), Some("application/json"));
    }
}

both_backends! {
    graphql_bodies => malformed_graphql_bodies_get_json_errors,
    event_bodies => malformed_event_bodies_name_the_position,
    bearer_case => bearer_scheme_is_case_insensitive,
}

/// The same refusal from the router alone, without a socket
/// (`tower::ServiceExt::oneshot`).
#[tokio::test]
async fn router_refuses_a_truncated_body_without_a_socket() {
    use std::sync::Arc;

    use changewire_gateway::Config;
    use tower::ServiceExt as _;

    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "store = \"sqlite://{}\"\nadmin_token = \"{ADMIN_TOKEN}\"",
        dir.path().join("store.db").display()
    );
    let config = Arc::new(Config::from_toml(&toml).unwrap());
    let router = changewire_gateway::testing::api_router(config)
        .await
        .unwrap();
    let request = axum::http::Request::post("/graphql")
        .header("authorization", format!("bearer {ADMIN_TOKEN}"))
        .header("content-type", "application/json")
        .body(axum::body::Body::from(
            r#"{"query": "{ resources { name } }"#,
        ))
        .unwrap();
    let response = router.oneshot(request).await.unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "application/json"
    );
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let v: Value = serde_json::from_slice(&body).unwrap();
    let err = &v["errors"][0];
    assert_eq!(err["extensions"]["code"], "BAD_USER_INPUT", "{v}");
    at(err, 1, 33);
}
