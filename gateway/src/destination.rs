//! Where webhooks may go: the same rules at registration and at send time.
//!
//! At registration a URL is checked without any network access: scheme
//! (https, or http with `--allow-http`), no userinfo, a host; an IP literal
//! or a name such as `localhost` in a refused range is rejected. A DNS name is
//! accepted even when it does not resolve here. At send time the addresses a
//! name resolves to are checked again, and the connection goes only to an
//! allowed one, so DNS rebinding cannot reach an internal service.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use url::{Host, Url};

/// The rules in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Policy {
    /// Plain http allowed.
    pub allow_http: bool,
    /// Loopback, private, link-local… allowed.
    pub allow_private_networks: bool,
}

/// Why a destination is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
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
    #[error("points to {0} address {1}, which is refused without --allow-private-networks")]
    PrivateAddress(&'static str, IpAddr),
    /// A refused name.
    #[error("points to `{0}`, a local name, which is refused without --allow-private-networks")]
    LocalName(String),
}

/// The kind of a non-public address, if it is one.
pub fn non_public_kind(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_kind(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return v4_kind(v4);
            }
            v6_kind(v6)
        }
    }
}

fn v4_kind(ip: Ipv4Addr) -> Option<&'static str> {
    let o = ip.octets();
    Some(match o {
        [127, ..] => "a loopback",
        [10, ..] | [172, 16..=31, ..] | [192, 168, ..] => "a private",
        [169, 254, 169, 254] | [100, 100, 100, 200] => "a cloud metadata",
        [169, 254, ..] => "a link-local",
        [100, 64..=127, ..] => "a carrier-grade NAT",
        [0, ..] => "an unspecified",
        [224..=239, ..] => "a multicast",
        [255, 255, 255, 255] => "a broadcast",
        [240..=255, ..] => "a reserved",
        [192, 0, 0, _] => "an IETF protocol",
        [192, 0, 2, _] | [198, 51, 100, _] | [203, 0, 113, _] => "a documentation",
        [198, 18..=19, ..] => "a benchmarking",
        _ => return None,
    })
}

fn v6_kind(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    if ip.is_loopback() {
        return Some("a loopback");
    }
    if ip.is_unspecified() {
        return Some("an unspecified");
    }
    if ip == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) {
        return Some("a cloud metadata");
    }
    Some(match s[0] {
        0xfc00..=0xfdff => "a private",
        0xfe80..=0xfebf => "a link-local",
        0xfec0..=0xfeff => "a site-local",
        0xff00..=0xffff => "a multicast",
        0x2001 if s[1] == 0x0db8 => "a documentation",
        0x0064 if s[1] == 0xff9b => {
            return v4_kind(Ipv4Addr::new(
                (s[6] >> 8) as u8,
                s[6] as u8,
                (s[7] >> 8) as u8,
                s[7] as u8,
            ));
        }
        _ => return None,
    })
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
    /// Checks a receiver URL without touching the network.
    pub fn check_url(&self, raw: &str) -> Result<Url, Refusal> {
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
                if !self.allow_private_networks && is_local_name(name) {
                    return Err(Refusal::LocalName(name.to_string()));
                }
            }
        }
        Ok(url)
    }

    /// Checks an address about to be connected to.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), Refusal> {
        if self.allow_private_networks {
            return Ok(());
        }
        match non_public_kind(ip) {
            Some(kind) => Err(Refusal::PrivateAddress(kind, ip)),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STRICT: Policy = Policy {
        allow_http: false,
        allow_private_networks: false,
    };

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
            let err = STRICT.check_url(url).expect_err(url).to_string();
            assert!(err.contains(expect), "{url}: {err}");
        }
    }

    #[test]
    fn accepts_public_and_unresolvable_names() {
        assert!(
            STRICT
                .check_url("https://hooks.example.com/ion-events")
                .is_ok()
        );
        assert!(
            STRICT
                .check_url("https://does-not-resolve.invalid-tld-xyz.test/h")
                .is_ok()
        );
        assert!(STRICT.check_url("https://8.8.8.8/h").is_ok());
        let open = Policy {
            allow_http: true,
            allow_private_networks: true,
        };
        assert!(open.check_url("http://127.0.0.1:9000/h").is_ok());
        assert!(open.check_url("http://localhost:9000/h").is_ok());
    }
}
