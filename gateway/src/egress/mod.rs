//! How requests leave the gateway: directly or through a proxy, with a
//! receiver's own TLS identity and trusted CAs, and with OAuth2 tokens.
//!
//! - `proxy.rs` — which proxy (`[delivery] proxy` or `HTTPS_PROXY`…) and
//!   which hosts bypass it (`no_proxy`).
//! - `resolver.rs` — DNS that returns only addresses the destination
//!   policy allows.
//! - `connector.rs` — the connection under every request: direct, or a
//!   `CONNECT` / SOCKS5 tunnel; the destination rule is applied before any
//!   connection, to the proxy or elsewhere.
//! - `tunnel.rs` — the HTTP `CONNECT` handshake.
//! - `tls.rs` — a receiver's client certificate and CA bundle (mutual TLS).
//!
//! OAuth2 tokens are fetched by the delivery engine (`delivery/oauth.rs`)
//! through the same client, so they take the same way out.

mod connector;
mod proxy;
pub(crate) mod resolver;
pub(crate) mod tls;
mod tunnel;

pub(crate) use connector::EgressConnector;
pub(crate) use proxy::{NoProxy, Proxy, ProxyKind};
pub use resolver::GuardedResolver;
pub(crate) use resolver::ResolveError;

/// What can go wrong on the way out (besides the receiver's answer).
#[derive(Debug, thiserror::Error)]
pub(crate) enum EgressError {
    /// A setting is not usable.
    #[error("`{setting}`: {reason}")]
    Setting {
        /// The setting, as written in the configuration.
        setting: String,
        /// Why.
        reason: String,
    },
    /// The proxy cannot be reached.
    #[error("proxy {proxy} cannot be reached: {source}")]
    ProxyUnreachable {
        /// The proxy (no password).
        proxy: String,
        /// The connection error.
        source: std::io::Error,
    },
    /// The proxy refused or failed to open the tunnel.
    #[error("proxy {proxy} did not open a tunnel to {target}: {reason}")]
    ProxyRefused {
        /// The proxy (no password).
        proxy: String,
        /// Where the tunnel was to go.
        target: String,
        /// Its answer, or the protocol error.
        reason: String,
    },
    /// The destination is refused by the policy (before any connection).
    #[error(transparent)]
    Destination(#[from] ResolveError),
    /// A direct connection failed.
    #[error("{0}")]
    Direct(String),
}

/// Where outbound connections go: the proxies and what bypasses them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ProxySettings {
    /// The proxy for https:// receivers.
    pub(crate) https: Option<Proxy>,
    /// The proxy for http:// receivers.
    pub(crate) http: Option<Proxy>,
    /// Hosts reached directly.
    pub(crate) no_proxy: NoProxy,
}

impl ProxySettings {
    /// `[delivery] proxy` and `no_proxy`; where the proxy is not set, the
    /// environment's `HTTPS_PROXY` / `https_proxy`, `http_proxy` (lower case
    /// only, as curl does) and `ALL_PROXY` / `all_proxy`. The environment's
    /// `NO_PROXY` / `no_proxy` is always added to the bypass list.
    pub(crate) fn resolve(
        proxy: &str,
        no_proxy: &[String],
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<ProxySettings, EgressError> {
        let first = |names: &[&str]| {
            names.iter().find_map(|n| {
                env(n)
                    .filter(|v| !v.trim().is_empty())
                    .map(|v| (n.to_string(), v))
            })
        };
        let parse = |found: Option<(String, String)>| {
            found.map(|(name, v)| Proxy::parse(&name, &v)).transpose()
        };
        let (https, http) = if proxy.trim().is_empty() {
            let all = ["ALL_PROXY", "all_proxy"];
            (
                parse(first(&["HTTPS_PROXY", "https_proxy"]).or_else(|| first(&all)))?,
                parse(first(&["http_proxy"]).or_else(|| first(&all)))?,
            )
        } else {
            let p = Proxy::parse("delivery.proxy", proxy)?;
            (Some(p.clone()), Some(p))
        };
        let mut bypass = NoProxy::parse("delivery.no_proxy", no_proxy.iter().map(String::as_str))?;
        if let Some((name, list)) = first(&["NO_PROXY", "no_proxy"]) {
            bypass.extend(NoProxy::parse(&name, list.split(','))?);
        }
        Ok(ProxySettings {
            https,
            http,
            no_proxy: bypass,
        })
    }

    /// The proxy a request to `scheme://host` goes through, if any.
    pub(crate) fn route(&self, scheme: &str, host: &str) -> Option<&Proxy> {
        let proxy = match scheme {
            "https" => self.https.as_ref(),
            _ => self.http.as_ref(),
        }?;
        (!self.no_proxy.bypasses(host)).then_some(proxy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn the_setting_wins_over_the_environment_and_no_proxy_bypasses() {
        let vars = [("HTTPS_PROXY", "http://env-proxy:3128")];
        let s = ProxySettings::resolve(
            "socks5://cfg:1080",
            &["internal.example".into()],
            env(&vars),
        )
        .unwrap();
        assert_eq!(
            s.route("https", "hooks.example")
                .map(Proxy::display)
                .as_deref(),
            Some("socks5://cfg:1080")
        );
        assert_eq!(
            s.route("http", "hooks.example")
                .map(Proxy::display)
                .as_deref(),
            Some("socks5://cfg:1080")
        );
        assert!(s.route("https", "a.internal.example").is_none());
        let vars = [("NO_PROXY", "hooks.example")];
        let s = ProxySettings::resolve("http://cfg:3128", &[], env(&vars)).unwrap();
        assert!(
            s.route("https", "hooks.example").is_none(),
            "NO_PROXY is honoured too"
        );
    }

    #[test]
    fn the_environment_is_read_per_scheme_with_its_no_proxy() {
        let vars = [
            ("https_proxy", "http://secure:3128"),
            ("HTTP_PROXY", "http://ignored-upper-case:1"),
            ("all_proxy", "socks5h://all:1080"),
            ("NO_PROXY", "localhost,.corp.example,10.0.0.0/8"),
        ];
        let s = ProxySettings::resolve("", &[], env(&vars)).unwrap();
        assert_eq!(
            s.route("https", "hooks.example")
                .map(Proxy::display)
                .as_deref(),
            Some("http://secure:3128")
        );
        assert_eq!(
            s.route("http", "hooks.example")
                .map(Proxy::display)
                .as_deref(),
            Some("socks5h://all:1080")
        );
        for host in ["localhost", "x.corp.example", "10.1.1.1"] {
            assert!(s.route("https", host).is_none(), "{host}");
        }
        let none = ProxySettings::resolve("", &[], env(&[])).unwrap();
        assert!(none.route("https", "hooks.example").is_none());
        let err = ProxySettings::resolve("", &[], env(&[("HTTPS_PROXY", "ftp://x")])).unwrap_err();
        assert!(err.to_string().starts_with("`HTTPS_PROXY`: "), "{err}");
    }
}
