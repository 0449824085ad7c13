//! Test harness shared by changewire's integration and end-to-end tests:
//!
//! * [`pg`]: a fresh PostgreSQL database per test, on the local server or on
//!   a throwaway cluster started with `initdb`/`pg_ctl` when none answers;
//! * [`receiver`]: a loopback webhook receiver that records every request
//!   and answers with a status that can be switched mid-test (or hangs);
//! * [`gateway`]: a gateway on a port of its own, with a GraphQL client;
//! * [`egress`]: proxies (HTTP `CONNECT`, SOCKS5), an HTTPS receiver with
//!   mutual TLS and an OAuth2 token endpoint, for the egress features;
//! * [`otlp`]: an OTLP/HTTP collector that records the spans it receives.

#![forbid(unsafe_code)]

pub mod egress;
pub mod gateway;
pub mod http;
pub mod otlp;
pub mod pg;
pub mod receiver;

/// Which store a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file in a temporary directory.
    Sqlite,
    /// A fresh PostgreSQL database.
    Postgres,
}

/// Polls `check` every 20 ms until it returns `Some`, or fails after `timeout`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: std::time::Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
