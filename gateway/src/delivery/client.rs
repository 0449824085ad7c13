//! The HTTP client: hyper with connection pooling and keep-alive, rustls for
//! https, and the SSRF guard applied to the address actually connected to.
//!
//! Names are resolved by [`GuardedResolver`], which returns only addresses
//! the destination policy allows; the connector can therefore never reach a
//! refused address, even if DNS changes between registration and delivery
//! (rebinding). URLs with an IP literal never reach the resolver, so
//! [`Client::send`] checks every URL first with the same policy, and checks
//! that the request it builds goes where the policy looked
//! ([`Policy::check_sendable`]).

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::rt::TokioExecutor;

use crate::destination::Policy;

/// Resolves names and drops every address the policy refuses.
#[derive(Debug, Clone, Copy)]
pub struct GuardedResolver {
    policy: Policy,
}

/// The resolver found nothing allowed.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// DNS failed.
    #[error("DNS lookup of `{0}` failed: {1}")]
    Lookup(String, std::io::Error),
    /// Every address is refused.
    #[error(
        "`{name}` resolves only to refused addresses ({detail}); allow with --allow-private-networks"
    )]
    Refused {
        /// The name.
        name: String,
        /// The first refusal.
        detail: String,
    },
}

impl GuardedResolver {
    /// A resolver enforcing `policy`.
    pub fn new(policy: Policy) -> Self {
        GuardedResolver { policy }
    }
}

impl tower::Service<Name> for GuardedResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = ResolveError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let policy = self.policy;
        Box::pin(async move {
            let host = name.as_str().to_string();
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|e| ResolveError::Lookup(host.clone(), e))?
                .collect();
            let mut refusal = None;
            let allowed: Vec<SocketAddr> = found
                .into_iter()
                .filter(|a| match policy.check_ip(a.ip()) {
                    Ok(()) => true,
                    Err(r) => {
                        refusal.get_or_insert_with(|| r.to_string());
                        false
                    }
                })
                .collect();
            if allowed.is_empty() {
                return Err(ResolveError::Refused {
                    name: host,
                    detail: refusal.unwrap_or_else(|| "no addresses".into()),
                });
            }
            Ok(allowed.into_iter())
        })
    }
}

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

/// The pooled client.
#[derive(Clone)]
pub(crate) struct Client {
    inner: HyperClient<HttpsConnector<HttpConnector<GuardedResolver>>, Full<Bytes>>,
    policy: Policy,
    keep_bytes: usize,
}

/// Bytes of a response read (beyond those kept) so the connection can be reused.
const DRAIN_LIMIT: usize = 64 * 1024;

impl Client {
    /// Builds the client.
    pub(crate) fn new(policy: Policy, keep_bytes: usize) -> Client {
        let mut http = HttpConnector::new_with_resolver(GuardedResolver { policy });
        http.enforce_http(false);
        http.set_connect_timeout(Some(Duration::from_secs(5)));
        http.set_nodelay(true);
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let https = match hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(provider)
        {
            Ok(builder) => builder.https_or_http().enable_http1().wrap_connector(http),
            // The ring provider supports the default protocol versions; fall back to the defaults.
            Err(_) => hyper_rustls::HttpsConnectorBuilder::new()
                .with_webpki_roots()
                .https_or_http()
                .enable_http1()
                .wrap_connector(http),
        };
        let inner = HyperClient::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(256)
            .build(https);
        Client {
            inner,
            policy,
            keep_bytes,
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

fn classify(err: hyper_util::client::legacy::Error) -> SendError {
    let mut chain = String::new();
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(&err);
    let mut refused_by_policy = None;
    let mut dns = None;
    let mut tls = false;
    while let Some(e) = source {
        if let Some(r) = e.downcast_ref::<ResolveError>() {
            match r {
                ResolveError::Refused { .. } => refused_by_policy = Some(r.to_string()),
                ResolveError::Lookup(..) => dns = Some(r.to_string()),
            }
        }
        if e.downcast_ref::<rustls::Error>().is_some() {
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
        let client = Client::new(Policy::default(), 1024);
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
