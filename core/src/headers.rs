//! Request header names that only changewire may set.
//!
//! One list, used wherever someone other than the gateway adds a header to a
//! delivery: a receiver's custom headers (checked by the API) and the headers
//! a plugin returns (checked by the plugin host). Matching is ASCII
//! case-insensitive, as HTTP header names are.
//!
//! ```
//! use changewire_core::headers::{Reserved, is_reserved, reserved};
//!
//! assert!(is_reserved("User-Agent"));
//! assert_eq!(reserved("X-Ion-Signature-V2"), Some(Reserved::Signature));
//! assert!(!is_reserved("X-Api-Key"));
//! ```

/// Why a header name is reserved: the group it belongs to.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reserved {
    /// Describes the body (`content-type`, `content-length`,
    /// `content-encoding`, `transfer-encoding`). The gateway frames the
    /// exact bytes it signed; a second or different value would misdescribe
    /// them (a gzip `content-encoding` on a plain JSON body, a length that
    /// cuts the body or smuggles a second request).
    Framing,
    /// Belongs to the connection, not the message (`connection`,
    /// `keep-alive`, `te`, `trailer`, `upgrade`, `expect`, `proxy-connection`).
    /// The HTTP client manages these hop-by-hop headers; `expect:
    /// 100-continue` would change the exchange itself.
    Connection,
    /// Says where the request goes and who sends it (`host`, `user-agent`).
    /// `host` is taken from the registered URL, the one the destination
    /// policy checked; the gateway sends its own `user-agent`, so a custom
    /// one would be sent twice.
    Identity,
    /// Carries credentials (`authorization`, `proxy-authorization` and every
    /// `proxy-*` header). `authorization` comes from the receiver's
    /// `basicAuth`; `proxy-*` headers are meant for proxies on the path, to
    /// which a delivery has nothing to say.
    Credentials,
    /// Carries or imitates a signature (`x-ion-signature*`, `webhook-*`).
    /// The gateway computes ION and Standard Webhooks signatures over what
    /// it actually sends; a look-alike such as `x-ion-signature-v2` or
    /// `webhook-signature-x` could be mistaken for one by a verifier.
    Signature,
}

impl Reserved {
    /// A short reason, to follow "`name` is reserved: …" in an error message.
    pub fn reason(self) -> &'static str {
        match self {
            Reserved::Framing => {
                "changewire describes the body it signs (type, length, encoding) itself"
            }
            Reserved::Connection => {
                "it controls the connection (hop-by-hop), which the HTTP client manages"
            }
            Reserved::Identity => "changewire sets it from the registered URL and its own identity",
            Reserved::Credentials => {
                "it carries credentials; use basicAuth for `authorization`, proxies get none"
            }
            Reserved::Signature => {
                "it carries or imitates a changewire signature (x-ion-signature*, webhook-*)"
            }
        }
    }
}

impl std::fmt::Display for Reserved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.reason())
    }
}

/// Reserved names, matched whole (lower case).
pub const RESERVED_NAMES: &[(&str, Reserved)] = &[
    ("content-type", Reserved::Framing),
    ("content-length", Reserved::Framing),
    ("content-encoding", Reserved::Framing),
    ("transfer-encoding", Reserved::Framing),
    ("connection", Reserved::Connection),
    ("keep-alive", Reserved::Connection),
    ("te", Reserved::Connection),
    ("trailer", Reserved::Connection),
    ("upgrade", Reserved::Connection),
    ("expect", Reserved::Connection),
    // Also covered by the `proxy-` prefix; listed because it is hop-by-hop.
    ("proxy-connection", Reserved::Connection),
    ("host", Reserved::Identity),
    ("user-agent", Reserved::Identity),
    ("authorization", Reserved::Credentials),
    ("proxy-authorization", Reserved::Credentials),
];

/// Reserved prefixes (lower case): every name starting with one is reserved.
pub const RESERVED_PREFIXES: &[(&str, Reserved)] = &[
    ("x-ion-signature", Reserved::Signature),
    ("webhook-", Reserved::Signature),
    ("proxy-", Reserved::Credentials),
];

/// Why `name` is reserved, or `None` if anyone may set it.
pub fn reserved(name: &str) -> Option<Reserved> {
    let name = name.as_bytes();
    let exact = RESERVED_NAMES
        .iter()
        .find(|(n, _)| name.eq_ignore_ascii_case(n.as_bytes()));
    let prefix = || {
        RESERVED_PREFIXES.iter().find(|(p, _)| {
            name.get(..p.len())
                .is_some_and(|head| head.eq_ignore_ascii_case(p.as_bytes()))
        })
    };
    exact.or_else(prefix).map(|(_, why)| *why)
}

/// Whether `name` (any case) is one that only changewire may set.
pub fn is_reserved(name: &str) -> bool {
    reserved(name).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_group_is_reserved_in_any_case() {
        for (name, why) in [
            ("Content-Type", Reserved::Framing),
            ("CONTENT-LENGTH", Reserved::Framing),
            ("Content-Encoding", Reserved::Framing),
            ("Transfer-Encoding", Reserved::Framing),
            ("Connection", Reserved::Connection),
            ("Keep-Alive", Reserved::Connection),
            ("TE", Reserved::Connection),
            ("Trailer", Reserved::Connection),
            ("Upgrade", Reserved::Connection),
            ("Expect", Reserved::Connection),
            ("Proxy-Connection", Reserved::Connection),
            ("Host", Reserved::Identity),
            ("User-Agent", Reserved::Identity),
            ("Authorization", Reserved::Credentials),
            ("Proxy-Authorization", Reserved::Credentials),
            ("Proxy-Status", Reserved::Credentials),
            ("x-ion-signature", Reserved::Signature),
            ("X-Ion-Signature-Next", Reserved::Signature),
            ("webhook-id", Reserved::Signature),
            ("Webhook-Timestamp", Reserved::Signature),
            ("webhook-signature", Reserved::Signature),
        ] {
            assert_eq!(reserved(name), Some(why), "{name}");
            assert!(is_reserved(name), "{name}");
        }
    }

    #[test]
    fn signature_look_alikes_are_reserved() {
        for name in [
            "X-Ion-Signature-V2",
            "x-ion-signatures",
            "X-ION-SIGNATURE-2",
            "webhook-signature-x",
            "Webhook-Signature2",
            "webhook-",
        ] {
            assert_eq!(reserved(name), Some(Reserved::Signature), "{name}");
        }
    }

    #[test]
    fn ordinary_and_near_miss_names_are_not_reserved() {
        for name in [
            "X-Api-Key",
            "X-Tenant",
            "Accept",
            "Content",
            "Content-Typex",
            "x-ion",
            "x-ion-signatur",
            "webhook",
            "Webhooks-Source",
            "proxy",
            "Hosts",
            "",
            "é",
        ] {
            assert_eq!(reserved(name), None, "{name}");
        }
    }

    #[test]
    fn the_lists_are_lower_case_and_match_themselves() {
        for (name, why) in RESERVED_NAMES.iter().chain(RESERVED_PREFIXES) {
            assert_eq!(*name, name.to_ascii_lowercase());
            assert_eq!(reserved(name), Some(*why), "{name}");
        }
    }
}
