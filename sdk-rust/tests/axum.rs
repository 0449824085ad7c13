//! The axum extractors, driven through a real `Router` (no network).

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, FromRef, State};
use axum::http::{Request, StatusCode};
use axum::routing::post;
use changewire_sdk::axum::{VerifiedBody, VerifiedEvent};
use changewire_sdk::{Claim, Idempotency, Scheme, Webhook, ion, standard, unix_now};
use http_body_util::BodyExt;
use tower::ServiceExt;

const URL: &str = "https://hooks.example.com/ion-events";
const SECRET: &str = "whsec_c2VjcmV0LWtleS1ieXRlcw==";
const BODY: &str = r#"{"event_id": 17, "subscription_id": 3, "resource": "run_steps", "action": "update", "transaction_id": 99, "occurred_at": "2026-04-26T19:33:42.108Z", "data": {"id": 7, "etag": "e1", "old": {"status": "open"}, "new": {"status": "done", "10": 1, "2": 2.0}}}"#;

#[derive(Clone)]
struct AppState {
    webhook: Webhook,
    seen: Idempotency,
}

impl FromRef<AppState> for Webhook {
    fn from_ref(state: &AppState) -> Webhook {
        state.webhook.clone()
    }
}

async fn receive(
    State(state): State<AppState>,
    VerifiedEvent { event, scheme, .. }: VerifiedEvent,
) -> (StatusCode, String) {
    match state.seen.claim(event.event_id) {
        Claim::New(guard) => {
            guard.complete();
            let status = event
                .data
                .new
                .as_ref()
                .and_then(|n| n.get("status"))
                .cloned();
            (
                StatusCode::OK,
                format!("{} {:?} {status:?}", scheme.as_str(), event.action),
            )
        }
        Claim::Done => (StatusCode::OK, "duplicate".into()),
        Claim::InFlight => (StatusCode::CONFLICT, "in flight".into()),
    }
}

async fn raw(VerifiedBody { scheme, body }: VerifiedBody) -> String {
    format!("{} {}", scheme.as_str(), body.len())
}

fn app() -> Router {
    let state = AppState {
        webhook: Webhook::new(SECRET, URL),
        seen: Idempotency::new(100),
    };
    Router::new()
        .route("/ion-events", post(receive))
        .route("/raw", post(raw))
        .layer(DefaultBodyLimit::max(64 * 1024))
        .with_state(state)
}

async fn send(
    app: &Router,
    path: &str,
    body: &str,
    headers: &[(&str, String)],
) -> (StatusCode, String) {
    let mut req = Request::post(path);
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let resp = app
        .clone()
        .oneshot(req.body(Body::from(body.to_string())).expect("request"))
        .await
        .expect("router answers");
    let status = resp.status();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    (
        status,
        String::from_utf8(bytes.to_vec()).expect("utf-8 body"),
    )
}

#[tokio::test]
async fn verified_events_reach_the_handler_once() {
    let app = app();
    let sig = ion::sign_body(SECRET, URL, BODY.as_bytes()).unwrap();
    let headers = [("x-ion-signature", sig)];
    assert_eq!(
        send(&app, "/ion-events", BODY, &headers).await,
        (StatusCode::OK, "ion Update Some(String(\"done\"))".into())
    );
    assert_eq!(
        send(&app, "/ion-events", BODY, &headers).await,
        (StatusCode::OK, "duplicate".into())
    );
    assert_eq!(
        send(&app, "/raw", BODY, &headers).await,
        (StatusCode::OK, format!("ion {}", BODY.len()))
    );
}

#[tokio::test]
async fn standard_webhooks_headers_are_checked_with_the_clock() {
    let app = app();
    let key = standard::SigningKey::from_secret(SECRET).unwrap();
    let now = unix_now();
    let fresh = [
        ("webhook-id", "17".to_string()),
        ("webhook-timestamp", now.to_string()),
        ("webhook-signature", key.sign("17", now, BODY.as_bytes())),
    ];
    let (status, text) = send(&app, "/raw", BODY, &fresh).await;
    assert_eq!(
        (status, text),
        (StatusCode::OK, format!("standard {}", BODY.len()))
    );
    let old = now - 3600;
    let stale = [
        ("webhook-id", "17".to_string()),
        ("webhook-timestamp", old.to_string()),
        ("webhook-signature", key.sign("17", old, BODY.as_bytes())),
    ];
    let (status, text) = send(&app, "/raw", BODY, &stale).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(text.starts_with("timestamp is 36"), "{text}");
    assert!(
        text.ends_with("s old, beyond the 300s tolerance (replay?)"),
        "{text}"
    );
    assert_eq!(Scheme::Standard.as_str(), "standard");
}

#[tokio::test]
async fn refusals_say_why() {
    let app = app();
    let sig = ion::sign_body(SECRET, URL, BODY.as_bytes()).unwrap();
    // Reordered integer-like keys (what JSON.parse + JSON.stringify does) break the signature.
    let reordered = BODY.replace(
        r#""status": "done", "10": 1, "2": 2.0"#,
        r#""2": 2.0, "10": 1, "status": "done""#,
    );
    assert_ne!(reordered, BODY);
    assert_eq!(
        send(
            &app,
            "/ion-events",
            &reordered,
            &[("x-ion-signature", sig.clone())]
        )
        .await,
        (StatusCode::UNAUTHORIZED, "signature does not match".into())
    );
    assert_eq!(
        send(&app, "/ion-events", BODY, &[]).await,
        (
            StatusCode::UNAUTHORIZED,
            "missing `x-ion-signature` header".into()
        )
    );
    let not_json = "id=1";
    let (status, text) = send(
        &app,
        "/ion-events",
        not_json,
        &[("x-ion-signature", sig.clone())],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        text.starts_with("body is not valid JSON: invalid JSON at byte 0"),
        "{text}"
    );
    // Signed, but not an event envelope.
    let bare = r#"{"data": {"id": 1}}"#;
    let bare_sig = ion::sign_body(SECRET, URL, bare.as_bytes()).unwrap();
    let (status, text) = send(
        &app,
        "/ion-events",
        bare,
        &[("x-ion-signature", bare_sig.clone())],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        text.starts_with("body is not a changewire event: missing field `event_id`"),
        "{text}"
    );
    assert_eq!(
        send(&app, "/raw", bare, &[("x-ion-signature", bare_sig)]).await,
        (StatusCode::OK, format!("ion {}", bare.len()))
    );
    // Over the body limit: axum's own rejection.
    let huge = format!(r#"{{"data": {{"x": "{}"}}}}"#, "a".repeat(70 * 1024));
    let (status, _) = send(&app, "/raw", &huge, &[("x-ion-signature", sig)]).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
}
