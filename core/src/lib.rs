//! # changewire-core
//!
//! What changewire signs, and how a receiver checks it — byte for byte the
//! same in the gateway, the Rust, Python and Node SDKs, and the WebAssembly
//! build, because they all run this crate.
//!
//! ```text
//!  raw body bytes ──json::Value::parse──▶ Value (as Python's json.loads sees it)
//!        │                                   │
//!        │                      ion: data → sorted "k:str(v)" pairs → "url?k:v&k:v"
//!        │                                   │            HMAC-SHA1 → base64 → x-ion-signature
//!        └── standard: "{id}.{timestamp}.{body}" ─┬─ HMAC-SHA256 (whsec_ secret) → "v1,…" ─┐
//!                                                 └─ Ed25519 (whsk_ seed)      → "v1a,…" ──┴→ webhook-signature
//! ```
//!
//! A receiver verifies `v1a` with the `whpk_` public key alone
//! ([`standard::Ed25519PublicKey`]; [`verify_request`] takes it where the
//! secret goes and answers [`Scheme::Ed25519`]).
//!
//! The core does no I/O: no sockets, no files, no clock, no randomness. The
//! caller passes the time (`now`) and generates secrets. It never panics on
//! input; every failure is an [`Error`] whose message says what to fix.
//!
//! ```
//! use changewire_core::{ion, verify_request, Scheme, VerifyOptions};
//!
//! let body = br#"{"event_id": 1, "data": {"id": 7, "old": null, "new": {"status": "complete"}}}"#;
//! let url = "https://hooks.example.com/ion-events";
//! let signature = ion::sign_body("s3cret", url, body)?;
//!
//! // What was signed: the URL, then the non-null pairs of `data` in Python's str().
//! assert_eq!(
//!     ion::signed_string_from_body(url, body)?,
//!     "https://hooks.example.com/ion-events?id:7&new:{'status': 'complete'}"
//! );
//!
//! let headers = vec![("x-ion-signature", signature)];
//! let scheme = verify_request("s3cret", url, body, &headers, 0, &VerifyOptions::default())?;
//! assert_eq!(scheme, Scheme::Ion);
//! # Ok::<(), changewire_core::Error>(())
//! ```
//!
//! See [`manual`] for why the canonical form is what it is.

#![forbid(unsafe_code)]
#![deny(missing_docs, unreachable_pub)]

pub mod canonical;
pub mod diagnose;
pub mod envelope;
mod error;
pub mod headers;
pub mod ion;
pub mod json;
pub mod manual;
mod request;
mod secret;
pub mod standard;

pub use envelope::{Action, Event, EventData, UnknownAction};
pub use error::{Error, JsonError, UnknownScheme};
pub use request::{Headers, Scheme, VerifyOptions, verify_request};
pub use secret::Secret;
