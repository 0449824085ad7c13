//! The egress fixtures, each driven by a real client: the proxies by hand
//! over TCP, the TLS receiver with tokio-rustls, the token endpoint over HTTP.

#![allow(clippy::unwrap_used)] // in tests a failed unwrap is a failed test, with its location

use std::time::Duration;

mod oauth;
mod proxies;
mod tls;

/// How long a test waits for a request to arrive.
const WAIT: Duration = Duration::from_secs(5);
