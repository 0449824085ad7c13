//! Name resolution that returns only addresses the destination policy
//! allows: the connector can therefore never reach a refused address, even
//! if DNS changes between registration and delivery (rebinding).

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use hyper_util::client::legacy::connect::dns::Name;

use crate::destination::Policy;

/// Resolves names and drops every address the policy refuses.
#[derive(Debug, Clone)]
pub struct GuardedResolver {
    policy: Policy,
}

/// The resolver found nothing allowed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ResolveError {
    /// DNS failed.
    #[error("DNS lookup of `{0}` failed: {1}")]
    Lookup(String, String),
    /// Every address is refused.
    #[error("`{name}` resolves only to refused addresses ({detail})")]
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
        let policy = self.policy.clone();
        let host = name.as_str().to_string();
        Box::pin(async move { resolve_allowed(&policy, &host).await })
    }
}

/// The addresses `host` resolves to that `policy` allows, in DNS order; an
/// error when there are none.
pub(crate) async fn resolve_allowed(
    policy: &Policy,
    host: &str,
) -> Result<std::vec::IntoIter<SocketAddr>, ResolveError> {
    let found: Vec<SocketAddr> = tokio::net::lookup_host((host, 0))
        .await
        .map_err(|e| ResolveError::Lookup(host.to_string(), e.to_string()))?
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
            name: host.to_string(),
            detail: refusal.unwrap_or_else(|| "no addresses".into()),
        });
    }
    Ok(allowed.into_iter())
}
