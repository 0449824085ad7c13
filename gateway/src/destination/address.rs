//! Which IP addresses are public: the one classification used for IP
//! literals at registration and for every address a name resolves to at
//! connect time.
//!
//! IPv6 is checked as an allow-list: only global unicast (`2000::/3`) can be
//! public, minus the special-purpose blocks inside it that are not globally
//! reachable (IANA IPv6 Special-Purpose Address Registry). Outside it, two
//! forms are judged by the IPv4 address they carry: IPv4-mapped
//! (`::ffff:a.b.c.d`, what a dual-stack socket connects to) and the NAT64
//! well-known prefix (`64:ff9b::/96`, translated to that IPv4 address).
//! Every other form that embeds an IPv4 address names the embedded kind when
//! that address is not public, and is refused for its own kind otherwise.
//!
//! Decisions (none of these is a plausible webhook receiver, and each can
//! reach an address the policy would refuse if written plainly):
//! - `2001::/23` (IETF protocol assignments) is refused whole: its globally
//!   reachable entries are anycast protocol services (PCP, TURN, AMT relays,
//!   AS112) and ORCHID identifiers, not HTTP endpoints. Teredo
//!   (`2001::/32`) inside it is named separately.
//! - 6to4 (`2002::/16`) is refused whole (deprecated by RFC 7526): a relay
//!   or a local 6to4 router decapsulates to the embedded IPv4 address, and
//!   behind a public one sits a whole /48 of its owner's network.
//! - IPv4-compatible (`::/96`) and IPv4-translated (`::ffff:0:0/96`)
//!   addresses are not routable on the Internet and are refused.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The kind of a non-public address (an adjective phrase such as
/// "a loopback"), or `None` if it is public.
pub(crate) fn non_public_kind(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_kind(v4),
        IpAddr::V6(v6) => v6_kind(v6),
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
        [0, 0, 0, 0] => "an unspecified",
        [0, ..] => "a this-network",
        [224..=239, ..] => "a multicast",
        [255, 255, 255, 255] => "a broadcast",
        [240..=255, ..] => "a reserved",
        [192, 0, 0, _] => "an IETF protocol",
        [192, 0, 2, _] | [198, 51, 100, _] | [203, 0, 113, _] => "a documentation",
        [192, 88, 99, _] => "a 6to4 relay anycast",
        [198, 18..=19, ..] => "a benchmarking",
        _ => return None,
    })
}

/// The IPv4 address in the last 32 bits.
fn low_v4(s: &[u16; 8]) -> Ipv4Addr {
    Ipv4Addr::from((u32::from(s[6]) << 16) | u32::from(s[7]))
}

fn v6_kind(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    // AWS's instance metadata service over IPv6 (inside fc00::/7, named for clarity).
    if ip == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) {
        return Some("a cloud metadata");
    }
    Some(match s {
        [0, 0, 0, 0, 0, 0, 0, 0] => "an unspecified",
        [0, 0, 0, 0, 0, 0, 0, 1] => "a loopback",
        // Judged by the IPv4 address they reach.
        [0, 0, 0, 0, 0, 0xffff, _, _] | [0x64, 0xff9b, 0, 0, 0, 0, _, _] => {
            return v4_kind(low_v4(&s));
        }
        // Embed an IPv4 address but are not routable: the embedded kind if
        // it is not public, else the form's own.
        [0, 0, 0, 0, 0, 0, _, _] => {
            v4_kind(low_v4(&s)).unwrap_or("an IPv4-compatible (deprecated)")
        }
        [0, 0, 0, 0, 0xffff, 0, _, _] => v4_kind(low_v4(&s)).unwrap_or("an IPv4-translated"),
        [0x2002, hi, lo, ..] => {
            let embedded = Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
            v4_kind(embedded).unwrap_or("a 6to4 (deprecated)")
        }
        [0x2001, 0, ..] => "a Teredo",
        [0x0100, 0, 0, 0, ..] => "a discard-only",
        [0x64, 0xff9b, 1, ..] => "a NAT64 local-use",
        [0xfc00..=0xfdff, ..] => "a private",
        [0xfe80..=0xfebf, ..] => "a link-local",
        [0xfec0..=0xfeff, ..] => "a site-local",
        [0xff00..=0xffff, ..] => "a multicast",
        // Inside global unicast: the special-purpose blocks that are not public.
        [0x2001, 0x0000..=0x01ff, ..] => "an IETF protocol",
        [0x2001, 0x0db8, ..] => "a documentation",
        [0x3fff, 0x0000..=0x0fff, ..] => "a documentation",
        [0x2000..=0x3fff, ..] => return None,
        // Everything else is not global unicast.
        _ => "a reserved (not global unicast)",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(ip: &str) -> Option<&'static str> {
        non_public_kind(ip.parse().unwrap_or_else(|e| panic!("{ip}: {e}")))
    }

    #[test]
    fn every_address_form_is_classified() {
        for (ip, want) in [
            // IPv4.
            ("127.0.0.1", "a loopback"),
            ("10.1.2.3", "a private"),
            ("172.16.0.1", "a private"),
            ("192.168.1.1", "a private"),
            ("169.254.169.254", "a cloud metadata"),
            ("100.100.100.200", "a cloud metadata"),
            ("169.254.1.1", "a link-local"),
            ("100.64.0.1", "a carrier-grade NAT"),
            ("0.0.0.0", "an unspecified"),
            ("0.1.2.3", "a this-network"),
            ("224.0.0.1", "a multicast"),
            ("255.255.255.255", "a broadcast"),
            ("240.0.0.1", "a reserved"),
            ("192.0.0.9", "an IETF protocol"),
            ("192.0.2.1", "a documentation"),
            ("198.51.100.1", "a documentation"),
            ("203.0.113.1", "a documentation"),
            ("192.88.99.1", "a 6to4 relay anycast"),
            ("198.18.0.1", "a benchmarking"),
            ("198.19.255.255", "a benchmarking"),
            // IPv6 outside global unicast.
            ("::", "an unspecified"),
            ("::1", "a loopback"),
            ("fd00:ec2::254", "a cloud metadata"),
            ("fd00::1", "a private"),
            ("fc00::1", "a private"),
            ("fe80::1", "a link-local"),
            ("fec0::1", "a site-local"),
            ("ff02::1", "a multicast"),
            ("100::1", "a discard-only"),
            ("64:ff9b:1::a00:1", "a NAT64 local-use"),
            ("64:ff9b:1::808:808", "a NAT64 local-use"),
            ("4000::1", "a reserved (not global unicast)"),
            ("5f00::1", "a reserved (not global unicast)"),
            ("1::1", "a reserved (not global unicast)"),
            ("::1:0:0:1", "a reserved (not global unicast)"),
            // Forms that embed IPv4: the embedded kind when it is not public.
            ("::ffff:127.0.0.1", "a loopback"),
            ("::ffff:10.0.0.1", "a private"),
            ("64:ff9b::7f00:1", "a loopback"),
            ("64:ff9b::a9fe:a9fe", "a cloud metadata"),
            ("::127.0.0.1", "a loopback"),
            ("::10.0.0.1", "a private"),
            ("::8.8.8.8", "an IPv4-compatible (deprecated)"),
            ("::ffff:0:127.0.0.1", "a loopback"),
            ("::ffff:0:7f00:1", "a loopback"),
            ("::ffff:0:8.8.8.8", "an IPv4-translated"),
            ("2002:7f00:1::", "a loopback"),
            ("2002:a00:1::1", "a private"),
            ("2002:a9fe:a9fe::", "a cloud metadata"),
            ("2002:808:808::1", "a 6to4 (deprecated)"),
            // Special-purpose blocks inside 2000::/3.
            ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "a Teredo"),
            ("2001::1", "a Teredo"),
            ("2001:1::1", "an IETF protocol"),
            ("2001:2::1", "an IETF protocol"),
            ("2001:10::1", "an IETF protocol"),
            ("2001:1ff::1", "an IETF protocol"),
            ("2001:db8::1", "a documentation"),
            ("3fff::1", "a documentation"),
            ("3fff:fff::1", "a documentation"),
        ] {
            assert_eq!(kind(ip), Some(want), "{ip}");
        }
    }

    #[test]
    fn public_addresses_are_not_classified() {
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "100.63.255.255",
            "100.128.0.1",
            "172.32.0.1",
            "192.88.98.1",
            "198.20.0.1",
            "2606:4700::1111",
            "2a00:1450:4001::1",
            "2001:200::1",
            "2001:4860:4860::8888",
            "3fff:1000::1",
            "2003::1",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ] {
            assert_eq!(kind(ip), None, "{ip}");
        }
    }
}
