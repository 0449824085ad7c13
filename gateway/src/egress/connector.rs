//! The connection under every request: direct (through the guarded
//! resolver), or a tunnel through the proxy that [`ProxySettings::route`]
//! picks. TLS is layered on top by the caller, end to end with the
//! receiver, so a proxy sees only the tunnel's destination.
//!
//! The destination rule comes first, before any connection: with an HTTP
//! or SOCKS5 proxy the receiver's name is resolved here, only allowed
//! addresses are kept, and the tunnel goes to that address (a proxy that
//! resolved the name itself could be steered to an internal address by DNS
//! rebinding). With `socks5h://` the proxy resolves the name: the rule is
//! then checked on the name (IP literals and local names are refused at
//! registration and before sending), which is as far as it can go.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tower::Service;

use super::resolver::resolve_allowed;
use super::{EgressError, GuardedResolver, Proxy, ProxyKind, ProxySettings, tunnel};
use crate::destination::Policy;

/// How long connecting to a proxy (or a receiver directly) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Connects directly or through the configured proxy.
#[derive(Clone)]
pub(crate) struct EgressConnector {
    direct: HttpConnector<GuardedResolver>,
    proxies: Arc<ProxySettings>,
    policy: Policy,
}

impl EgressConnector {
    /// A connector enforcing `policy` and routing through `proxies`.
    pub(crate) fn new(policy: Policy, proxies: ProxySettings) -> Self {
        let mut direct = HttpConnector::new_with_resolver(GuardedResolver::new(policy.clone()));
        direct.enforce_http(false);
        direct.set_connect_timeout(Some(CONNECT_TIMEOUT));
        direct.set_nodelay(true);
        EgressConnector {
            direct,
            proxies: Arc::new(proxies),
            policy,
        }
    }
}

impl Service<Uri> for EgressConnector {
    type Response = TokioIo<TcpStream>;
    type Error = EgressError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.direct
            .poll_ready(cx)
            .map_err(|e| EgressError::Direct(e.to_string()))
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let scheme = dst.scheme_str().unwrap_or("https").to_ascii_lowercase();
        let host = dst.host().unwrap_or_default().to_string();
        let Some(proxy) = self.proxies.route(&scheme, &host).cloned() else {
            let connecting = self.direct.call(dst);
            return Box::pin(async move { connecting.await.map_err(direct_error) });
        };
        let port = dst
            .port_u16()
            .unwrap_or(if scheme == "http" { 80 } else { 443 });
        let policy = self.policy.clone();
        Box::pin(async move { through(&proxy, &policy, &host, port).await })
    }
}

/// A direct connection's error, with the guarded resolver's refusal kept
/// as such (it is the destination rule, not a network failure).
fn direct_error<E: std::error::Error + 'static>(err: E) -> EgressError {
    let mut text = String::new();
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&err);
    while let Some(e) = source {
        if let Some(r) = e.downcast_ref::<super::ResolveError>() {
            return EgressError::Destination(r.clone());
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&e.to_string());
        source = e.source();
    }
    EgressError::Direct(text)
}

/// The tunnel's destination: an address checked here, or (socks5h) the name.
enum Target {
    Address(SocketAddr),
    Name(String, u16),
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Address(a) => write!(f, "{a}"),
            Target::Name(n, p) => write!(f, "{n}:{p}"),
        }
    }
}

async fn through(
    proxy: &Proxy,
    policy: &Policy,
    host: &str,
    port: u16,
) -> Result<TokioIo<TcpStream>, EgressError> {
    let bare = host.trim_matches(['[', ']']);
    // The destination rule, before connecting to anything.
    let target = match (proxy.kind, bare.parse::<std::net::IpAddr>()) {
        (_, Ok(ip)) => {
            policy
                .check_ip(ip)
                .map_err(|r| super::ResolveError::Refused {
                    name: bare.to_string(),
                    detail: r.to_string(),
                })?;
            Target::Address(SocketAddr::new(ip, port))
        }
        (ProxyKind::Socks5WithRemoteDns, Err(_)) => Target::Name(bare.to_string(), port),
        (_, Err(_)) => {
            let first = resolve_allowed(policy, bare).await?.next().ok_or_else(|| {
                super::ResolveError::Refused {
                    name: bare.to_string(),
                    detail: "no addresses".into(),
                }
            })?;
            Target::Address(SocketAddr::new(first.ip(), port))
        }
    };
    let unreachable = |source: std::io::Error| EgressError::ProxyUnreachable {
        proxy: proxy.display(),
        source,
    };
    let connect = TcpStream::connect((proxy.host.as_str(), proxy.port));
    let mut stream = match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
        Ok(connected) => connected.map_err(unreachable)?,
        Err(_) => {
            return Err(unreachable(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "no connection within 5 s",
            )));
        }
    };
    let _ = stream.set_nodelay(true);
    let refused = |reason: String| EgressError::ProxyRefused {
        proxy: proxy.display(),
        target: target.to_string(),
        reason,
    };
    let stream = match proxy.kind {
        ProxyKind::HttpConnect => {
            tunnel::open(&mut stream, &target.to_string(), proxy.credentials.as_ref())
                .await
                .map_err(refused)?;
            stream
        }
        ProxyKind::Socks5 | ProxyKind::Socks5WithRemoteDns => socks5(stream, proxy, &target)
            .await
            .map_err(|e| refused(e.to_string()))?,
    };
    Ok(TokioIo::new(stream))
}

async fn socks5(
    stream: TcpStream,
    proxy: &Proxy,
    target: &Target,
) -> Result<TcpStream, tokio_socks::Error> {
    use tokio_socks::tcp::Socks5Stream;
    let tunnel = match (target, &proxy.credentials) {
        (Target::Address(a), None) => Socks5Stream::connect_with_socket(stream, *a).await?,
        (Target::Address(a), Some((u, p))) => {
            Socks5Stream::connect_with_password_and_socket(stream, *a, u, p).await?
        }
        (Target::Name(n, port), None) => {
            Socks5Stream::connect_with_socket(stream, (n.as_str(), *port)).await?
        }
        (Target::Name(n, port), Some((u, p))) => {
            Socks5Stream::connect_with_password_and_socket(stream, (n.as_str(), *port), u, p)
                .await?
        }
    };
    Ok(tunnel.into_inner())
}
