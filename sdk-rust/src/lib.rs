//! # changewire-sdk
//!
//! The receiver side of changewire: check that a webhook really comes from
//! your changewire (or First Resonance ION) gateway, read the event it
//! carries, and process each event once.
//!
//! ```
//! use changewire_sdk::{Idempotency, Scheme, Webhook, ion, parse_event};
//!
//! // What the gateway sends (normally it arrives over HTTP).
//! let url = "https://hooks.example.com/ion-events"; // exactly as registered
//! let body = br#"{"event_id": 17, "subscription_id": 3, "resource": "run_steps",
//!     "action": "update", "transaction_id": 99, "occurred_at": "2026-04-26T19:33:42.108Z",
//!     "data": {"id": 7, "etag": "e1", "old": {"status": "open"}, "new": {"status": "done"}}}"#;
//! let signature = ion::sign_body("s3cret", url, body)?;
//! let headers = vec![("content-type", "application/json".to_string()), ("x-ion-signature", signature)];
//!
//! // The receiver: verify the raw body, then parse it.
//! let webhook = Webhook::new("s3cret", url);
//! let (scheme, event) = webhook.verify_event(body, &headers)?;
//! assert_eq!(scheme, Scheme::Ion);
//! assert_eq!(event.data.new.as_ref().and_then(|new| new.get("status")), Some(&"done".into()));
//!
//! // At-least-once delivery: the same event_id may come again.
//! let seen = Idempotency::new(10_000);
//! assert!(seen.first_time(event.event_id));
//! assert!(!seen.first_time(event.event_id));
//!
//! // A tampered body is refused, with the reason.
//! let forged = String::from_utf8_lossy(body).replace("done", "paid");
//! let err = webhook.verify(forged.as_bytes(), &headers).unwrap_err();
//! assert_eq!(err.to_string(), "signature does not match");
//! # let _ = parse_event(body)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## What to get right
//!
//! * **Verify the raw body bytes**, before any JSON library touches them. The
//!   ION signature covers Python's `str()` of every value of `data`, so key
//!   order, `1.0` vs `1` and duplicate keys all count; [`Webhook::verify`]
//!   reads the bytes exactly as the sender's Python did.
//! * **Use the URL exactly as registered** with the gateway, not the one your
//!   server sees behind a proxy (scheme, host, port, path, trailing slash and
//!   query all count). [`diagnose::diagnose`] tells you when that is the
//!   problem.
//! * Comparison is constant time; during a secret rotation the gateway also
//!   sends `x-ion-signature-next`, which [`Webhook::verify`] checks too.
//! * Standard Webhooks headers (`webhook-id`, `webhook-timestamp`,
//!   `webhook-signature`), when the receiver asked for them, are preferred:
//!   they cover the whole body and stop replays (the timestamp must be within
//!   [`VerifyOptions::tolerance_secs`] of the receiver's clock).
//! * **Public-key signatures.** A receiver given a `whpk_…` public key
//!   instead of a `whsec_…` secret passes it where the secret goes
//!   ([`Webhook::new`], [`verify_request`]): the Standard Webhooks headers are
//!   then checked for an Ed25519 `v1a` signature and the scheme is
//!   [`Scheme::Ed25519`]. A public key cannot sign, so a leaked one lets
//!   nobody forge deliveries.
//!
//! ## Features
//!
//! | feature | default | what it adds |
//! | --- | --- | --- |
//! | `http` | yes | [`HttpHeaders`]: verify requests whose headers are an `http::HeaderMap` |
//! | `axum` | no | [`axum`] module: `VerifiedEvent` / `VerifiedBody` extractors; see `examples/axum_receiver.rs` |
//!
//! ## The signing core
//!
//! Everything that decides whether a signature is valid lives in
//! `changewire-core`, shared byte for byte with the gateway and the Python,
//! Node and WebAssembly SDKs; this crate re-exports it ([`ion`],
//! [`standard`], [`json`], [`canonical`], [`diagnose`], [`Error`], …).

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub use changewire_core::{
    Action, Error, Event, EventData, Headers, JsonError, Scheme, Secret, UnknownScheme,
    VerifyOptions, canonical, diagnose, ion, json, manual, standard,
};

mod event;
mod headers;
mod idempotency;
mod webhook;

#[cfg(feature = "axum")]
pub mod axum;

pub use event::{EventError, WebhookError, parse_event};
#[cfg(feature = "http")]
pub use headers::HttpHeaders;
pub use idempotency::{Claim, ClaimGuard, Idempotency};
pub use webhook::{Webhook, unix_now, verify_request};
