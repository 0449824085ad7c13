//! Where webhooks may go: the same rules at registration and at send time.
//!
//! At registration a URL is checked without any network access: scheme
//! (https, or http with `--allow-http`), no userinfo, a host; an IP literal
//! or a name such as `localhost` in a refused range is rejected. A DNS name is
//! accepted even when it does not resolve here. At send time the addresses a
//! name resolves to are checked again, and the connection goes only to an
//! allowed one, so DNS rebinding cannot reach an internal service.
//!
//! - `address.rs` — which IP addresses are public ([`non_public_kind`]).
//! - `uri.rs` — a URL is stored only in a form the HTTP client sends as
//!   checked ([`Policy::accept_url`], [`Policy::check_sendable`]).

mod address;
mod uri;

use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;
use url::{Host, Url};

pub(crate) use address::non_public_kind;

/// The rules in force.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Policy {
    /// Plain http allowed.
    pub allow_http: bool,
    /// Loopback, private, link-local… allowed.
    pub allow_private_networks: bool,
    /// Non-public ranges allowed all the same (`[delivery] allow_networks`):
    /// receivers inside the company's network, the rest still refused.
    pub allow_networks: Arc<[IpNet]>,
}

/// Why a destination is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Refusal {
    /// Not a URL at all, or relative.
    #[error("is not an absolute URL ({0})")]
    Malformed(String),
    /// Neither http nor https.
    #[error("must use https (found `{0}`)")]
    Scheme(String),
    /// http without `--allow-http`.
    #[error("uses plain http; use https or start changewire with --allow-http")]
    PlainHttp,
    /// Has `user:password@`.
    #[error("must not carry credentials (user:password@); use basicAuth or a header instead")]
    Userinfo,
    /// Has no host.
    #[error("has no host")]
    NoHost,
    /// Has a fragment.
    #[error("must not have a #fragment")]
    Fragment,
    /// A refused address.
    #[error(
        "points to {0} address {1}, which is refused without --allow-private-networks or a [delivery] allow_networks range holding it"
    )]
    PrivateAddress(&'static str, IpAddr),
    /// A refused name.
    #[error(
        "points to `{0}`, a local name, which is refused without --allow-private-networks or [delivery] allow_networks"
    )]
    LocalName(String),
    /// A character that an HTTP request cannot carry, or that the URL check
    /// and the HTTP client would read differently.
    #[error(
        "contains {what} at character {position}, which cannot be sent in an HTTP request as written; {fix}"
    )]
    Character {
        /// The character, described ("a space", "`é`").
        what: String,
        /// Its position in the URL, counted in characters from 1.
        position: usize,
        /// How to write it instead.
        fix: String,
    },
    /// Not written as `scheme://host…`.
    #[error("must be written as scheme://host/path (for example https://hooks.example.com/events)")]
    NotHierarchical,
    /// The HTTP client cannot build a request from it.
    #[error("cannot be sent as an HTTP request ({0})")]
    Unsendable(String),
    /// The URL check and the HTTP client see different destinations.
    #[error(
        "is read as {checked} by the URL check but as {sent} by the HTTP client; register it again in its plain form"
    )]
    Ambiguous {
        /// scheme://host:port as the policy checked it.
        checked: String,
        /// scheme://host:port as the request would go.
        sent: String,
    },
}

/// Names that always mean "this machine" or "this network".
fn is_local_name(host: &str) -> bool {
    let h = host.trim_end_matches('.').to_ascii_lowercase();
    h == "localhost"
        || h.ends_with(".localhost")
        || h.ends_with(".local")
        || h.ends_with(".internal")
        || h == "metadata.google.internal"
        || !h.contains('.')
}

impl Policy {
    /// The rules: plain http, every private network, or only these ranges.
    pub(crate) fn new(
        allow_http: bool,
        allow_private_networks: bool,
        allow_networks: &[IpNet],
    ) -> Self {
        Policy {
            allow_http,
            allow_private_networks,
            allow_networks: allow_networks.into(),
        }
    }

    /// Checks a receiver URL without touching the network, as the WHATWG
    /// parser reads it. Registration uses [`Policy::accept_url`] and sending
    /// [`Policy::check_sendable`], which both start here and also check what
    /// the HTTP client will make of it.
    pub(crate) fn check_url(&self, raw: &str) -> Result<Url, Refusal> {
        let url = Url::parse(raw.trim()).map_err(|e| Refusal::Malformed(e.to_string()))?;
        match url.scheme() {
            "https" => {}
            "http" if self.allow_http => {}
            "http" => return Err(Refusal::PlainHttp),
            other => return Err(Refusal::Scheme(other.to_string())),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Refusal::Userinfo);
        }
        if url.fragment().is_some() {
            return Err(Refusal::Fragment);
        }
        match url.host() {
            None => return Err(Refusal::NoHost),
            Some(Host::Ipv4(ip)) => self.check_ip(IpAddr::V4(ip))?,
            Some(Host::Ipv6(ip)) => self.check_ip(IpAddr::V6(ip))?,
            Some(Host::Domain(name)) => {
                // With allowed ranges, an internal name is accepted here and
                // judged by the addresses it resolves to when sending.
                let names_checked_later = !self.allow_networks.is_empty();
                if !self.allow_private_networks && !names_checked_later && is_local_name(name) {
                    return Err(Refusal::LocalName(name.to_string()));
                }
            }
        }
        Ok(url)
    }

    /// Checks an address about to be connected to.
    pub(crate) fn check_ip(&self, ip: IpAddr) -> Result<(), Refusal> {
        if self.allow_private_networks {
            return Ok(());
        }
        match non_public_kind(ip) {
            Some(_) if self.allows_network_of(ip) => Ok(()),
            Some(kind) => Err(Refusal::PrivateAddress(kind, ip)),
            None => Ok(()),
        }
    }

    /// `ip` (or the IPv4 address an IPv4-mapped IPv6 address carries) is in
    /// an allowed range.
    fn allows_network_of(&self, ip: IpAddr) -> bool {
        let plain = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.allow_networks
            .iter()
            .any(|net| net.contains(&ip) || net.contains(&plain))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strict() -> Policy {
        Policy::default()
    }

    #[test]
    fn refuses_without_network_access() {
        for (url, expect) in [
            ("/relative", "absolute"),
            ("ftp://x.example.com/", "https"),
            ("http://x.example.com/", "plain http"),
            ("https://user:pw@x.example.com/", "credentials"),
            ("https://127.0.0.1/h", "loopback"),
            ("https://[::1]/h", "loopback"),
            ("https://10.1.2.3/", "private"),
            ("https://172.20.0.1/", "private"),
            ("https://192.168.1.1/", "private"),
            ("https://169.254.169.254/latest/meta-data", "cloud metadata"),
            ("https://169.254.1.1/", "link-local"),
            ("https://100.64.0.1/", "carrier-grade NAT"),
            ("https://224.0.0.1/", "multicast"),
            ("https://[fe80::1]/", "link-local"),
            ("https://[fd00::1]/", "private"),
            ("https://[::ffff:10.0.0.1]/", "private"),
            ("https://0.0.0.0/", "unspecified"),
            ("https://localhost/", "local name"),
            ("https://api.localhost/", "local name"),
            ("https://intranet/", "local name"),
            ("https://x.example.com/h#frag", "fragment"),
            ("https://2130706433/", "loopback"),
        ] {
            let err = strict().check_url(url).expect_err(url).to_string();
            assert!(err.contains(expect), "{url}: {err}");
        }
    }

    #[test]
    fn accepts_public_and_unresolvable_names() {
        assert!(
            strict()
                .check_url("https://hooks.example.com/ion-events")
                .is_ok()
        );
        assert!(
            strict()
                .check_url("https://does-not-resolve.invalid-tld-xyz.test/h")
                .is_ok()
        );
        assert!(strict().check_url("https://8.8.8.8/h").is_ok());
        let open = Policy::new(true, true, &[]);
        assert!(open.check_url("http://127.0.0.1:9000/h").is_ok());
        assert!(open.check_url("http://localhost:9000/h").is_ok());
    }

    #[test]
    fn allowed_networks_let_named_ranges_through_and_refuse_the_rest() {
        let nets: Vec<IpNet> = vec![
            "10.20.0.0/16".parse().unwrap(),
            "fd00:1::/32".parse().unwrap(),
        ];
        let policy = Policy::new(false, false, &nets);
        for ip in [
            "10.20.1.2",
            "10.20.255.255",
            "::ffff:10.20.0.1",
            "fd00:1::5",
        ] {
            assert_eq!(policy.check_ip(ip.parse().unwrap()), Ok(()), "{ip}");
        }
        for (ip, kind) in [
            ("10.21.0.1", "private"),
            ("127.0.0.1", "loopback"),
            ("169.254.169.254", "cloud metadata"),
            ("fd00:2::1", "private"),
        ] {
            let err = policy
                .check_ip(ip.parse().unwrap())
                .expect_err(ip)
                .to_string();
            assert!(
                err.contains(kind) && err.contains("allow_networks"),
                "{ip}: {err}"
            );
        }
        assert!(policy.check_url("https://10.20.3.4/h").is_ok());
        assert!(policy.check_url("https://10.30.3.4/h").is_err());
        // Internal names are judged by what they resolve to when sending.
        assert!(policy.check_url("https://crm.internal/h").is_ok());
        assert!(strict().check_url("https://crm.internal/h").is_err());
    }
}
