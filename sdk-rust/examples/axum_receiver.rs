//! A webhook receiver with axum: verify, deduplicate, process.
//!
//! ```text
//! CHANGEWIRE_SECRET=s3cret CHANGEWIRE_URL=https://hooks.example.com/ion-events \
//!     cargo run -p changewire-sdk --features axum --example axum_receiver
//! ```
//!
//! It listens on 127.0.0.1:3000 (`PORT` to change) and answers `POST /ion-events`.
//! `CHANGEWIRE_URL` is the URL *as registered with the gateway*, which is
//! what the signature covers — not whatever address this process binds.
//!
//! With `--self-test` it binds an ephemeral port on 127.0.0.1, sends itself
//! a signed event, the same event again, and a forged one, checks the three
//! answers (200 processed, 200 duplicate, 401) and exits.

use std::time::Duration;

use axum::Router;
use axum::extract::{FromRef, State};
use axum::http::StatusCode;
use axum::routing::post;
use changewire_sdk::axum::VerifiedEvent;
use changewire_sdk::{Claim, Idempotency, Webhook};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

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

/// Only verified events get here; anything else was answered 400/401 already.
async fn receive(
    State(state): State<AppState>,
    VerifiedEvent { event, scheme, .. }: VerifiedEvent,
) -> (StatusCode, &'static str) {
    let guard = match state.seen.claim(event.event_id) {
        Claim::New(guard) => guard,
        // Already processed: acknowledge so the gateway stops retrying.
        Claim::Done => return (StatusCode::OK, "duplicate"),
        // Another delivery of this event is being processed: retry later.
        Claim::InFlight => return (StatusCode::CONFLICT, "in flight"),
    };
    println!(
        "event {} ({}): {} {} id={} old={:?} new={:?}",
        event.event_id,
        scheme.as_str(),
        event.action.as_str(),
        event.resource,
        event.data.id,
        event.data.old,
        event.data.new,
    );
    // Processing succeeded: remember the id. (Dropping the guard instead, on
    // an error, lets the gateway's retry be processed.)
    guard.complete();
    (StatusCode::OK, "processed")
}

fn app(secret: &str, url: &str) -> Router {
    let state = AppState {
        webhook: Webhook::new(secret, url),
        seen: Idempotency::new(10_000),
    };
    Router::new()
        .route("/ion-events", post(receive))
        .with_state(state)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let secret = std::env::var("CHANGEWIRE_SECRET").unwrap_or_else(|_| "s3cret".into());
    let url = std::env::var("CHANGEWIRE_URL")
        .unwrap_or_else(|_| "https://hooks.example.com/ion-events".into());
    if std::env::args().any(|a| a == "--self-test") {
        return self_test(&secret, &url).await;
    }
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(3000);
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    println!(
        "listening on http://{}/ion-events, verifying for {url}",
        listener.local_addr()?
    );
    axum::serve(listener, app(&secret, &url)).await?;
    Ok(())
}

/// Sends one HTTP/1.1 request and returns the status code and body.
async fn post_once(
    addr: std::net::SocketAddr,
    body: &str,
    signature: &str,
) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(addr).await?;
    let request = format!(
        "POST /ion-events HTTP/1.1\r\nHost: {addr}\r\ncontent-type: application/json\r\n\
         x-ion-signature: {signature}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let text = response.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    Ok((status, text))
}

async fn self_test(secret: &str, url: &str) -> Result<(), Box<dyn std::error::Error>> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(axum::serve(listener, app(secret, url)).into_future());

    let body = r#"{"event_id": 42, "subscription_id": 1, "resource": "run_steps", "action": "update", "transaction_id": 7, "occurred_at": "2026-04-26T19:33:42.108Z", "data": {"id": 1234, "etag": "abc123", "old": {"status": "in_progress"}, "new": {"status": "complete"}}}"#;
    let signature = changewire_sdk::ion::sign_body(secret, url, body.as_bytes())?;
    let forged = body.replace("complete", "cancelled");

    let mut answers = Vec::new();
    for (body, label) in [
        (body, "signed"),
        (body, "again"),
        (forged.as_str(), "forged"),
    ] {
        let answer =
            tokio::time::timeout(Duration::from_secs(10), post_once(addr, body, &signature))
                .await??;
        println!("{label}: {} {}", answer.0, answer.1);
        answers.push(answer);
    }
    server.abort();
    let expected = [
        (200, "processed".to_string()),
        (200, "duplicate".to_string()),
        (401, "signature does not match".to_string()),
    ];
    if answers != expected {
        return Err(format!("self-test failed: {answers:?}").into());
    }
    println!("self-test passed");
    Ok(())
}
