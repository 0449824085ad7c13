//! The HTTP client: hyper with connection pooling and keep-alive, rustls for
//! https, and the SSRF guard applied to the address actually connected to.
//!
//! Connections come from [`EgressConnector`]: directly, with names resolved
//! only to addresses the destination policy allows (so DNS changing between
//! registration and delivery cannot reach an internal service), or through
//! the configured proxy after the same check. URLs with an IP literal never
//! reach the resolver, so [`Client::send`] checks every URL first with the
//! same policy, and checks that the request it builds goes where the policy
//! looked ([`Policy::check_sendable`]). A receiver with its own TLS settings
//! (client certificate, CA bundle) gets its own pool ([`Client::with_tls`]).

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::TokioExecutor;

use crate::destination::Policy;
use crate::egress::{EgressConnector, EgressError, ProxySettings, ResolveError};

/// What went wrong with a request, by class (recorded as `error_class`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SendError {
    /// The destination is refused by policy (before any connection).
    Refused(String),
    /// DNS failed.
    Dns(String),
    /// Connecting failed (refused, unreachable).
    Connect(String),
    /// The TLS handshake failed.
    Tls(String),
    /// The proxy is down or refused the tunnel.
    Proxy(String),
    /// No OAuth2 token could be had.
    Auth(String),
    /// No complete answer within the timeout.
    Timeout,
    /// The connection broke mid-request.
    Io(String),
}

impl SendError {
    /// The class name stored with the attempt.
    pub(crate) fn class(&self) -> &'static str {
        match self {
            SendError::Refused(_) => "ssrf",
            SendError::Dns(_) => "dns",
            SendError::Connect(_) => "connect",
            SendError::Tls(_) => "tls",
            SendError::Proxy(_) => "proxy",
            SendError::Auth(_) => "oauth",
            SendError::Timeout => "timeout",
            SendError::Io(_) => "io",
        }
    }
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Refused(m) => write!(f, "destination refused: {m}"),
            SendError::Dns(m) => write!(f, "DNS: {m}"),
            SendError::Connect(m) => write!(f, "connection failed: {m}"),
            SendError::Tls(m) => write!(f, "TLS: {m}"),
            SendError::Proxy(m) => f.write_str(m),
            SendError::Auth(m) => f.write_str(m),
            SendError::Timeout => f.write_str("timed out"),
            SendError::Io(m) => write!(f, "connection error: {m}"),
        }
    }
}

/// A receiver's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Answer {
    /// Status code.
    pub(crate) status: u16,
    /// First bytes of the body.
    pub(crate) body: String,
    /// `Retry-After`, raw.
    pub(crate) retry_after: Option<String>,
}

type Pool = HyperClient<HttpsConnector<EgressConnector>, Full<Bytes>>;

/// The pooled client.
#[derive(Clone)]
pub(crate) struct Client {
    inner: Pool,
    connector: EgressConnector,
    policy: Policy,
    keep_bytes: usize,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Client { .. }")
    }
}

/// Bytes of a response read (beyond those kept) so the connection can be reused.
const DRAIN_LIMIT: usize = 64 * 1024;

impl Client {
    /// Builds the client: the public CA roots, no client certificate.
    pub(crate) fn new(policy: Policy, proxies: ProxySettings, keep_bytes: usize) -> Client {
        let connector = EgressConnector::new(policy.clone(), proxies);
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let https = match hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(provider)
        {
            Ok(builder) => builder
                .https_or_http()
                .enable_http1()
                .wrap_connector(connector.clone()),
            // The ring provider supports the default protocol versions; fall back to the defaults.
            Err(_) => hyper_rustls::HttpsConnectorBuilder::new()
                .with_webpki_roots()
                .https_or_http()
                .enable_http1()
                .wrap_connector(connector.clone()),
        };
        Client {
            inner: pool(https),
            connector,
            policy,
            keep_bytes,
        }
    }

    /// The same client (policy, proxy) with a receiver's own TLS settings:
    /// its client certificate, its trusted CAs. It has its own connections.
    pub(crate) fn with_tls(&self, tls: rustls::ClientConfig) -> Client {
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(self.connector.clone());
        Client {
            inner: pool(https),
            connector: self.connector.clone(),
            policy: self.policy.clone(),
            keep_bytes: self.keep_bytes,
        }
    }

    /// POSTs a body; the whole exchange (connect, send, read) within `timeout`.
    pub(crate) async fn send(
        &self,
        url: &str,
        headers: &[(String, String)],
        body: Bytes,
        timeout: Duration,
    ) -> (Result<Answer, SendError>, Duration) {
        let started = Instant::now();
        // A stored URL the client cannot send (a row from before URLs were
        // checked as sent) is refused like a private address: permanently,
        // with the reason, not as a connection error worth retrying.
        let result = match self.policy.check_sendable(url) {
            Err(refusal) => Err(SendError::Refused(refusal.to_string())),
            Ok(uri) => match tokio::time::timeout(timeout, self.exchange(uri, headers, body)).await
            {
                Ok(r) => r,
                Err(_) => Err(SendError::Timeout),
            },
        };
        (result, started.elapsed())
    }

    async fn exchange(
        &self,
        uri: http::Uri,
        headers: &[(String, String)],
        body: Bytes,
    ) -> Result<Answer, SendError> {
        let mut builder = Request::builder().method(Method::POST).uri(uri);
        for (k, v) in headers {
            builder = builder.header(k.as_str(), v.as_str());
        }
        let request = builder
            .body(Full::new(body))
            .map_err(|e| SendError::Io(e.to_string()))?;
        let response = self.inner.request(request).await.map_err(classify)?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(http::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let mut body = response.into_body();
        let mut kept: Vec<u8> = Vec::new();
        let mut read = 0usize;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| SendError::Io(e.to_string()))?;
            if let Some(data) = frame.data_ref() {
                read += data.len();
                let room = self.keep_bytes.saturating_sub(kept.len());
                kept.extend_from_slice(&data[..data.len().min(room)]);
                if read > DRAIN_LIMIT {
                    break; // stop reading; the connection is not reused
                }
            }
        }
        Ok(Answer {
            status,
            body: String::from_utf8_lossy(&kept).into_owned(),
            retry_after,
        })
    }
}

fn pool(https: HttpsConnector<EgressConnector>) -> Pool {
    HyperClient::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(256)
        .build(https)
}

fn classify(err: hyper_util::client::legacy::Error) -> SendError {
    let mut chain = String::new();
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(&err);
    let mut refused_by_policy = None;
    let mut dns = None;
    let mut tls = false;
    while let Some(e) = source {
        match e.downcast_ref::<EgressError>() {
            Some(EgressError::Destination(r @ ResolveError::Refused { .. })) => {
                refused_by_policy = Some(r.to_string())
            }
            Some(EgressError::Destination(r @ ResolveError::Lookup(..))) => {
                dns = Some(r.to_string())
            }
            Some(p @ (EgressError::ProxyUnreachable { .. } | EgressError::ProxyRefused { .. })) => {
                return SendError::Proxy(p.to_string());
            }
            _ => {}
        }
        // rustls errors surface directly, or inside an io::Error (an alert
        // the receiver sent after the handshake, as TLS 1.3 servers do when
        // they refuse a client certificate).
        let in_io = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .is_some_and(|inner| inner.is::<rustls::Error>());
        if e.is::<rustls::Error>() || in_io {
            tls = true;
        }
        if !chain.is_empty() {
            chain.push_str(": ");
        }
        chain.push_str(&e.to_string());
        source = e.source();
    }
    if chain.is_empty() {
        chain = err.to_string();
    }
    if let Some(r) = refused_by_policy {
        return SendError::Refused(r);
    }
    if let Some(d) = dns {
        return SendError::Dns(d);
    }
    if tls || chain.contains("certificate") || chain.contains("tls") || chain.contains("TLS") {
        return SendError::Tls(chain);
    }
    if err.is_connect() {
        return SendError::Connect(chain);
    }
    SendError::Io(chain)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_stored_url_the_client_cannot_send_is_refused_not_an_io_error() {
        // As a row stored before URLs were checked as sent could hold. The
        // refusal comes before any connection (and the host is not reachable
        // from tests anyway: nothing here may connect).
        let client = Client::new(Policy::default(), ProxySettings::default(), 1024);
        let (result, _) = client
            .send(
                "https://hooks.example.com/a b",
                &[],
                Bytes::from_static(b"{}"),
                Duration::from_secs(1),
            )
            .await;
        let err = result.expect_err("a URL with a space cannot be sent");
        assert_eq!(err.class(), "ssrf", "{err}");
        assert!(err.to_string().contains("a space at character 28"), "{err}");
    }
}
