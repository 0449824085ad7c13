//! axum extractors (feature `axum`): a handler argument that is only ever a
//! verified webhook.
//!
//! Put a [`Webhook`] in the router state (directly, or in your own state
//! with `impl FromRef<AppState> for Webhook`), then take [`VerifiedEvent`]
//! (or [`VerifiedBody`] for bodies that are not ION envelopes) as the last
//! handler argument. A request that does not verify never reaches the
//! handler: it is answered with [`WebhookRejection`] (401 for a bad or
//! missing signature or a stale timestamp, 400 for a body that is not an
//! event, 500 when the configured secret is unusable), with core's reason
//! as the plain-text body.
//!
//! ```no_run
//! use axum::{Router, routing::post};
//! use changewire_sdk::{Webhook, axum::VerifiedEvent};
//!
//! async fn receive(VerifiedEvent { event, .. }: VerifiedEvent) -> &'static str {
//!     println!("{} {} {}", event.resource, event.action.as_str(), event.data.id);
//!     "ok"
//! }
//!
//! # async fn run() -> std::io::Result<()> {
//! let webhook = Webhook::new("s3cret", "https://hooks.example.com/ion-events");
//! let app = Router::new().route("/ion-events", post(receive)).with_state(webhook);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app).await
//! # }
//! ```
//!
//! The body is read with axum's `Bytes` extractor, so `DefaultBodyLimit`
//! applies (2 MB unless you change it).

use ::axum::extract::rejection::BytesRejection;
use ::axum::extract::{FromRef, FromRequest, Request};
use ::axum::http::StatusCode;
use ::axum::response::{IntoResponse, Response};
use bytes::Bytes;

use crate::{Error, Event, EventError, HttpHeaders, Scheme, Webhook, WebhookError, parse_event};

/// A request whose signature verified, and its body.
#[derive(Debug, Clone)]
pub struct VerifiedBody {
    /// The scheme that verified.
    pub scheme: Scheme,
    /// The raw body bytes.
    pub body: Bytes,
}

/// A request whose signature verified and whose body is an [`Event`].
#[derive(Debug, Clone)]
pub struct VerifiedEvent {
    /// The scheme that verified.
    pub scheme: Scheme,
    /// The parsed event.
    pub event: Event,
    /// The raw body bytes (what the signature covers).
    pub body: Bytes,
}

/// Why an extractor refused a request; its response says so.
#[derive(Debug)]
#[non_exhaustive]
pub enum WebhookRejection {
    /// The body could not be read (too large, connection error).
    Body(BytesRejection),
    /// The signature check failed.
    Verification(Error),
    /// The signature is valid but the body is not an event.
    InvalidEvent(EventError),
}

impl std::fmt::Display for WebhookRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WebhookRejection::Body(e) => e.fmt(f),
            WebhookRejection::Verification(e) => e.fmt(f),
            WebhookRejection::InvalidEvent(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for WebhookRejection {}

impl WebhookRejection {
    /// The status the rejection answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            WebhookRejection::Body(e) => e.status(),
            WebhookRejection::Verification(e) => match e {
                Error::SignatureMismatch
                | Error::MissingHeader(_)
                | Error::MalformedHeader { .. }
                | Error::TimestampTooOld { .. }
                | Error::TimestampTooNew { .. } => StatusCode::UNAUTHORIZED,
                Error::InvalidSecret(_) => StatusCode::INTERNAL_SERVER_ERROR,
                _ => StatusCode::BAD_REQUEST,
            },
            WebhookRejection::InvalidEvent(_) => StatusCode::BAD_REQUEST,
        }
    }
}

impl IntoResponse for WebhookRejection {
    fn into_response(self) -> Response {
        match self {
            WebhookRejection::Body(e) => e.into_response(),
            other => (other.status(), other.to_string()).into_response(),
        }
    }
}

impl From<WebhookError> for WebhookRejection {
    fn from(err: WebhookError) -> Self {
        match err {
            WebhookError::Verification(e) => WebhookRejection::Verification(e),
            WebhookError::InvalidEvent(e) => WebhookRejection::InvalidEvent(e),
        }
    }
}

async fn verified<S>(req: Request, state: &S) -> Result<(Scheme, Bytes), WebhookRejection>
where
    S: Send + Sync,
    Webhook: FromRef<S>,
{
    let webhook = Webhook::from_ref(state);
    let (mut parts, body) = req.into_parts();
    let headers = std::mem::take(&mut parts.headers);
    let body = Bytes::from_request(Request::from_parts(parts, body), state)
        .await
        .map_err(WebhookRejection::Body)?;
    let scheme = webhook
        .verify(&body, &HttpHeaders(&headers))
        .map_err(WebhookRejection::Verification)?;
    Ok((scheme, body))
}

impl<S> FromRequest<S> for VerifiedBody
where
    S: Send + Sync,
    Webhook: FromRef<S>,
{
    type Rejection = WebhookRejection;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (scheme, body) = verified(req, state).await?;
        Ok(VerifiedBody { scheme, body })
    }
}

impl<S> FromRequest<S> for VerifiedEvent
where
    S: Send + Sync,
    Webhook: FromRef<S>,
{
    type Rejection = WebhookRejection;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (scheme, body) = verified(req, state).await?;
        let event = parse_event(&body).map_err(WebhookRejection::InvalidEvent)?;
        Ok(VerifiedEvent {
            scheme,
            event,
            body,
        })
    }
}
