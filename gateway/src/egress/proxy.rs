//! The outbound proxy: which one (`[delivery] proxy`, else the usual
//! environment variables) and which hosts bypass it (`no_proxy`).

use std::net::IpAddr;

use ipnet::IpNet;
use url::Url;

use super::EgressError;

/// How the proxy is spoken to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProxyKind {
    /// An HTTP proxy: every request goes through a `CONNECT` tunnel to the
    /// address changewire resolved and checked.
    HttpConnect,
    /// SOCKS5 to the address changewire resolved and checked.
    Socks5,
    /// SOCKS5 with the name resolved by the proxy (`socks5h://`): the
    /// destination rule is then checked on the name only.
    Socks5WithRemoteDns,
}

/// A proxy to send through.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Proxy {
    /// How it is spoken to.
    pub(crate) kind: ProxyKind,
    /// Its host (a name or an address).
    pub(crate) host: String,
    /// Its port.
    pub(crate) port: u16,
    /// User and password, when the URL carries them.
    pub(crate) credentials: Option<(String, String)>,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password.
        write!(f, "{}", self.display())
    }
}

impl Proxy {
    /// Parses `http://[user:pass@]host:port`, `socks5://…` or `socks5h://…`.
    pub(crate) fn parse(setting: &str, raw: &str) -> Result<Proxy, EgressError> {
        let bad = |reason: String| EgressError::Setting {
            setting: setting.to_string(),
            reason,
        };
        let url = Url::parse(raw.trim()).map_err(|e| bad(format!("`{raw}` is not a URL ({e})")))?;
        let (kind, default_port) = match url.scheme() {
            "http" => (ProxyKind::HttpConnect, 80),
            "socks5" => (ProxyKind::Socks5, 1080),
            "socks5h" => (ProxyKind::Socks5WithRemoteDns, 1080),
            other => {
                return Err(bad(format!(
                    "scheme `{other}` is not supported; use http://, socks5:// or socks5h://"
                )));
            }
        };
        let host = url
            .host_str()
            .ok_or_else(|| bad("has no host".into()))?
            .trim_matches(['[', ']'])
            .to_string();
        if url.path() != "/" && !url.path().is_empty() {
            return Err(bad("must not have a path (write scheme://host:port)".into()));
        }
        let decode = |s: &str| {
            percent_decode(s).ok_or_else(|| {
                bad("its user or password is not valid percent-encoded UTF-8".into())
            })
        };
        let credentials = if url.username().is_empty() {
            None
        } else {
            Some((
                decode(url.username())?,
                decode(url.password().unwrap_or_default())?,
            ))
        };
        Ok(Proxy {
            kind,
            host,
            port: url.port().unwrap_or(default_port),
            credentials,
        })
    }

    /// The proxy as it may be logged: scheme, host and port, no password.
    pub(crate) fn display(&self) -> String {
        let scheme = match self.kind {
            ProxyKind::HttpConnect => "http",
            ProxyKind::Socks5 => "socks5",
            ProxyKind::Socks5WithRemoteDns => "socks5h",
        };
        match self.host.parse::<IpAddr>() {
            Ok(IpAddr::V6(v6)) => format!("{scheme}://[{v6}]:{}", self.port),
            _ => format!("{scheme}://{}:{}", self.host, self.port),
        }
    }
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// One `no_proxy` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Bypass {
    /// `*`: nothing goes through the proxy.
    Everything,
    /// A name: itself and every name under it (`example.com`,
    /// `.example.com` and `*.example.com` all mean this).
    Domain(String),
    /// An address or a range (`10.0.0.0/8`), for URLs with an IP literal.
    Network(IpNet),
}

/// Hosts reached directly, not through the proxy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct NoProxy(Vec<Bypass>);

impl NoProxy {
    /// Parses entries (`example.com`, `.example.com`, `*.example.com`, `*`,
    /// `10.0.0.0/8`, `127.0.0.1`, `::1`). A `:port` suffix on a name is
    /// ignored, as curl does.
    pub(crate) fn parse<'a>(
        setting: &str,
        entries: impl IntoIterator<Item = &'a str>,
    ) -> Result<NoProxy, EgressError> {
        let mut parsed = Vec::new();
        for entry in entries {
            let e = entry.trim();
            if e.is_empty() {
                continue;
            }
            let bypass = if e == "*" {
                Bypass::Everything
            } else if let Ok(net) = e.parse::<IpNet>() {
                Bypass::Network(net)
            } else if let Ok(ip) = e.trim_matches(['[', ']']).parse::<IpAddr>() {
                Bypass::Network(IpNet::from(ip))
            } else {
                let name = e.trim_start_matches("*.").trim_start_matches('.');
                let name = name.rsplit_once(':').map_or(name, |(n, port)| {
                    if port.parse::<u16>().is_ok() { n } else { name }
                });
                if name.is_empty()
                    || !name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_')
                {
                    return Err(EgressError::Setting {
                        setting: setting.to_string(),
                        reason: format!(
                            "`{e}` is not a host name, an address, a range like 10.0.0.0/8 or `*`"
                        ),
                    });
                }
                Bypass::Domain(name.trim_end_matches('.').to_ascii_lowercase())
            };
            parsed.push(bypass);
        }
        Ok(NoProxy(parsed))
    }

    /// Adds `other`'s entries.
    pub(crate) fn extend(&mut self, other: NoProxy) {
        self.0.extend(other.0);
    }

    /// Whether `host` (as in a URL: a name, an IPv4 address or a bracketed
    /// IPv6 address) bypasses the proxy.
    pub(crate) fn bypasses(&self, host: &str) -> bool {
        let host = host.trim_matches(['[', ']']).trim_end_matches('.');
        let ip = host.parse::<IpAddr>().ok();
        self.0.iter().any(|b| match (b, ip) {
            (Bypass::Everything, _) => true,
            (Bypass::Network(net), Some(ip)) => net.contains(&ip),
            (Bypass::Network(_), None) => false,
            (Bypass::Domain(_), Some(_)) => false,
            (Bypass::Domain(d), None) => {
                let h = host.to_ascii_lowercase();
                h == *d || h.strip_suffix(d.as_str()).is_some_and(|p| p.ends_with('.'))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxies_parse_with_their_kind_port_and_credentials() {
        let p = Proxy::parse("delivery.proxy", "http://proxy.corp:3128").unwrap();
        assert_eq!(
            (p.kind, p.host.as_str(), p.port),
            (ProxyKind::HttpConnect, "proxy.corp", 3128)
        );
        assert_eq!(p.credentials, None);
        let p = Proxy::parse("delivery.proxy", "socks5h://u%40x:p%3Aw@10.0.0.1").unwrap();
        assert_eq!((p.kind, p.port), (ProxyKind::Socks5WithRemoteDns, 1080));
        assert_eq!(p.credentials, Some(("u@x".into(), "p:w".into())));
        assert_eq!(format!("{p:?}"), "socks5h://10.0.0.1:1080");
        let p = Proxy::parse("delivery.proxy", "socks5://[::1]:9050").unwrap();
        assert_eq!(
            (p.host.as_str(), p.display()),
            ("::1", "socks5://[::1]:9050".to_string())
        );
        for (raw, why) in [
            ("https://proxy:443", "https` is not supported"),
            ("proxy:3128", "not supported"),
            ("http://proxy:3128/path", "must not have a path"),
            ("not a url", "is not a URL"),
        ] {
            let err = Proxy::parse("delivery.proxy", raw)
                .expect_err(raw)
                .to_string();
            assert!(
                err.contains("delivery.proxy") && err.contains(why),
                "{raw}: {err}"
            );
        }
    }

    #[test]
    fn no_proxy_matches_names_under_a_domain_addresses_and_ranges() {
        let np = NoProxy::parse(
            "delivery.no_proxy",
            [
                "corp.example",
                ".internal",
                "*.svc.local",
                "10.0.0.0/8",
                "::1",
                "api.example:8443",
            ],
        )
        .unwrap();
        for host in [
            "corp.example",
            "a.corp.example",
            "x.internal",
            "b.svc.local",
            "10.2.3.4",
            "[::1]",
            "api.example",
        ] {
            assert!(np.bypasses(host), "{host}");
        }
        for host in [
            "evilcorp.example",
            "internal.com",
            "11.0.0.1",
            "[::2]",
            "example",
        ] {
            assert!(!np.bypasses(host), "{host}");
        }
        assert!(
            NoProxy::parse("x", ["*"])
                .unwrap()
                .bypasses("anything.example")
        );
        let err = NoProxy::parse("delivery.no_proxy", ["bad host!"])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("delivery.no_proxy") && err.contains("bad host!"),
            "{err}"
        );
    }
}
