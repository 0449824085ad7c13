//! The API without a socket: requests go straight into the router
//! (`tower::ServiceExt::oneshot`), on a store with no delivery engine.

use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use changewire_gateway::Config;
use changewire_test_support::Backend;
use changewire_test_support::gateway::{ADMIN_TOKEN, store_for};
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use tower::ServiceExt as _;

struct Api {
    router: axum::Router,
    _guards: (
        Option<changewire_test_support::pg::TestDatabase>,
        tempfile::TempDir,
    ),
}

async fn api(backend: Backend) -> Api {
    let (store_url, db, dir) = store_for(backend).await;
    let toml = format!("store = \"{store_url}\"\nadmin_token = \"{ADMIN_TOKEN}\"");
    let config = Arc::new(Config::from_toml(&toml).unwrap());
    let router = changewire_gateway::testing::api_router(config)
        .await
        .unwrap();
    Api {
        router,
        _guards: (db, dir),
    }
}

async fn call(api: &Api, request: Request<Body>) -> (u16, Value) {
    let response = api.router.clone().oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn graphql(token: Option<&str>, query: &str, variables: Value) -> Request<Body> {
    let mut request = Request::post("/graphql").header("content-type", "application/json");
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    request
        .body(Body::from(
            json!({"query": query, "variables": variables}).to_string(),
        ))
        .unwrap()
}

const CREATE: &str = "mutation($i: CreateWebhookReceiverInput!) { createWebhookReceiver(input: $i) { webhookReceiver { id name webhookUri signatureSchemes retryPolicy maxAttempts } } }";

/// Creating a receiver and reading it back, with the defaults the model
/// gives a new receiver, through the router alone.
async fn a_receiver_round_trips_through_the_router(backend: Backend) {
    let api = api(backend).await;
    let (status, body) = call(
        &api,
        graphql(
            Some(ADMIN_TOKEN),
            CREATE,
            json!({"i": {"name": " ERP ", "webhookUri": "HTTPS://ERP.Example.com/hooks"}}),
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let receiver = &body["data"]["createWebhookReceiver"]["webhookReceiver"];
    assert_eq!(receiver["name"], "ERP");
    assert_eq!(receiver["webhookUri"], "https://erp.example.com/hooks");
    assert_eq!(receiver["signatureSchemes"], json!(["ION"]));
    assert_eq!(receiver["retryPolicy"], "EXPONENTIAL");
    assert_eq!(receiver["maxAttempts"], 8);
    let id = receiver["id"].as_str().unwrap();
    let (_, read) = call(
        &api,
        graphql(
            Some(ADMIN_TOKEN),
            "query($id: ID!) { webhookReceiver(id: $id) { id name } }",
            json!({"id": id}),
        ),
    )
    .await;
    assert_eq!(read["data"]["webhookReceiver"]["name"], "ERP", "{read}");
}

/// A rule of the model reaches the client as BAD_USER_INPUT naming the
/// input field, and nothing is created.
async fn a_broken_rule_names_its_field_and_creates_nothing(backend: Backend) {
    let api = api(backend).await;
    let (_, body) = call(
        &api,
        graphql(
            Some(ADMIN_TOKEN),
            CREATE,
            json!({"i": {"name": "x", "webhookUri": "https://x.example.com/", "maxAttempts": 0}}),
        ),
    )
    .await;
    let error = &body["errors"][0];
    assert_eq!(error["extensions"]["code"], "BAD_USER_INPUT", "{body}");
    assert_eq!(error["extensions"]["field"], "input.maxAttempts", "{body}");
    let (_, list) = call(
        &api,
        graphql(
            Some(ADMIN_TOKEN),
            "{ webhookReceivers { totalCount } }",
            json!({}),
        ),
    )
    .await;
    assert_eq!(list["data"]["webhookReceivers"]["totalCount"], 0, "{list}");
}

/// Without a token the API answers 401 with a JSON error; `/healthz` and
/// `/readyz` answer without one.
async fn the_router_refuses_strangers_and_reports_health(backend: Backend) {
    let api = api(backend).await;
    let (status, body) = call(&api, graphql(None, "{ resources { name } }", json!({}))).await;
    assert_eq!(status, 401);
    assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
    let health = api
        .router
        .clone()
        .oneshot(Request::get("/healthz").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let (status, ready) = call(&api, Request::get("/readyz").body(Body::empty()).unwrap()).await;
    assert_eq!(status, 200, "{ready}");
    assert_eq!(ready["components"]["store"]["ready"], true, "{ready}");
}

/// A GET through the router: status, headers and body bytes.
async fn get(api: &Api, path: &str) -> (u16, axum::http::HeaderMap, Vec<u8>) {
    let response = api
        .router
        .clone()
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, headers, bytes.to_vec())
}

fn header<'a>(headers: &'a axum::http::HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .map(|v| v.to_str().unwrap())
        .unwrap_or_default()
}

/// Every `src="…"` and `href="…"` value in `html`.
fn links(html: &str) -> Vec<&str> {
    let mut found = Vec::new();
    for attribute in ["src=\"", "href=\""] {
        for (at, _) in html.match_indices(attribute) {
            let rest = &html[at + attribute.len()..];
            found.push(&rest[..rest.find('"').unwrap()]);
        }
    }
    found
}

/// `GET /graphql` is our GraphiQL page: HTML that links only to paths of
/// this origin (no scheme, no `//` anywhere), loads no inline script, and
/// comes with a Content-Security-Policy that allows scripts from this origin
/// only. (The page and its assets touch no store: SQLite alone.)
#[tokio::test]
async fn graphiql_page_links_only_to_this_origin() {
    let api = api(Backend::Sqlite).await;
    let (status, headers, body) = get(&api, "/graphql").await;
    assert_eq!(status, 200);
    assert!(header(&headers, "content-type").starts_with("text/html"));
    let csp = header(&headers, "content-security-policy");
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(!csp.contains("unsafe-eval"), "{csp}");
    let page = String::from_utf8(body).unwrap();
    assert!(
        page.contains("<title>changewire GraphiQL</title>"),
        "{page}"
    );
    for needle in ["http://", "https://", "//"] {
        assert!(!page.contains(needle), "the page contains {needle}: {page}");
    }
    assert_eq!(
        page.matches("<script").count(),
        page.matches("<script src=\"").count(),
        "an inline script: {page}"
    );
    let links = links(&page);
    assert!(links.len() >= 4, "{links:?}");
    for link in links {
        assert!(link.starts_with("/graphql/assets/"), "{link}");
    }
}

/// Every asset the page links is served from the binary with a JS or CSS
/// type and its real size; the versioned URL the page uses may be cached
/// forever, the bare name only briefly.
#[tokio::test]
async fn graphiql_assets_are_served_from_the_binary() {
    let api = api(Backend::Sqlite).await;
    let (_, _, body) = get(&api, "/graphql").await;
    let page = String::from_utf8(body).unwrap();
    let mut total = 0;
    for link in links(&page) {
        let (status, headers, bytes) = get(&api, link).await;
        assert_eq!(status, 200, "{link}");
        let path = link.split('?').next().unwrap();
        let expected = if path.ends_with(".js") {
            "text/javascript"
        } else {
            assert!(path.ends_with(".css"), "{link}");
            "text/css"
        };
        assert!(
            header(&headers, "content-type").starts_with(expected),
            "{link}"
        );
        assert_eq!(
            header(&headers, "x-content-type-options"),
            "nosniff",
            "{link}"
        );
        assert!(bytes.len() > 100, "{link}: {} bytes", bytes.len());
        if path.contains(".min.") {
            assert!(bytes.len() > 10_000, "{link}: {} bytes", bytes.len());
        }
        total += bytes.len();
        assert_eq!(
            header(&headers, "cache-control"),
            "public, max-age=31536000, immutable",
            "{link}"
        );
        for unversioned in [path.to_string(), format!("{path}?v=0123456789abcdef")] {
            let (status, headers, again) = get(&api, &unversioned).await;
            assert_eq!(status, 200, "{unversioned}");
            assert_eq!(again, bytes, "{unversioned}");
            let cache = header(&headers, "cache-control");
            assert!(!cache.contains("immutable"), "{unversioned}: {cache}");
            assert!(cache.contains("max-age="), "{unversioned}: {cache}");
        }
    }
    // React, ReactDOM and GraphiQL with its stylesheet are over a megabyte.
    assert!(total > 1_000_000, "{total} bytes");
}

/// Only the listed assets are served: not the README or licenses beside
/// them, nothing outside their directory.
#[tokio::test]
async fn an_unknown_graphiql_asset_is_404() {
    let api = api(Backend::Sqlite).await;
    for path in [
        "/graphql/assets/nope.js",
        "/graphql/assets/README.md",
        "/graphql/assets/LICENSE.react",
        "/graphql/assets/..%2F..%2FCargo.toml",
        "/graphql/assets/graphiql.min.js.map",
    ] {
        let (status, _, _) = get(&api, path).await;
        assert_eq!(status, 404, "{path}");
    }
}

both_backends! {
    router_round_trip => a_receiver_round_trips_through_the_router,
    router_bad_input => a_broken_rule_names_its_field_and_creates_nothing,
    router_auth_and_health => the_router_refuses_strangers_and_reports_health,
}
