//! Receiver URLs as the HTTP client sends them.
//!
//! The policy reads a URL with the WHATWG parser (the `url` crate), but the
//! delivery client sends it as an `http::Uri`, which is stricter (no space,
//! no `<`) and reads some input differently: WHATWG turns `\` into `/`,
//! drops tabs and newlines, decodes `%61` in a host and maps an IDN host to
//! its ASCII form, where `http::Uri` refuses or keeps them. A URL is
//! therefore stored only in a form both read the same way, and sending
//! checks again that they agree on where the request goes.

use std::net::{Ipv4Addr, Ipv6Addr};

use url::{Host, Url};

use super::{Policy, Refusal};

impl Policy {
    /// Checks a receiver URL for registration and returns the form to
    /// store: the exact string that will be signed and sent.
    ///
    /// The form is normalised conservatively: trimmed, with the scheme and
    /// host as the WHATWG parser serialises them (lower case, an IDN host
    /// in its ASCII form, an IPv6 address compressed) and a default port
    /// dropped. The host stored is therefore the host the policy checked.
    /// The path and query are kept byte for byte, and an empty path stays
    /// empty (no `/` is added): the URL is part of the ION signature (an
    /// HMAC over the URL string), and a receiver verifying with the path it
    /// registered must keep working. WHATWG would also percent-encode `"`,
    /// `{` and `}` in a path and resolve `.`/`..` segments; the HTTP client
    /// sends them as written, so the stored form keeps them as written too.
    ///
    /// Refused, besides what [`Policy::check_url`] refuses: any character
    /// the two parsers read differently or an HTTP request line cannot
    /// carry (space, control characters, backslash; non-ASCII outside the
    /// host, since a request line is ASCII), each reported with its
    /// position and how to write it instead.
    pub(crate) fn accept_url(&self, raw: &str) -> Result<String, Refusal> {
        let raw = raw.trim();
        let url = self.check_url(raw)?;
        check_chars(raw)?;
        let scheme = url.scheme();
        let authority_start = scheme.len() + 3;
        let written_scheme = raw.get(..scheme.len());
        if !written_scheme.is_some_and(|s| s.eq_ignore_ascii_case(scheme))
            || raw.get(scheme.len()..authority_start) != Some("://")
        {
            return Err(Refusal::NotHierarchical);
        }
        let after = raw.get(authority_start..).unwrap_or_default();
        let authority_len = after.find(['/', '?', '#']).unwrap_or(after.len());
        if authority_len == 0 {
            return Err(Refusal::NotHierarchical);
        }
        let rest = after.get(authority_len..).unwrap_or_default();
        let host = url.host_str().ok_or(Refusal::NoHost)?;
        let mut stored = format!("{scheme}://{host}");
        if let Some(port) = url.port() {
            stored.push(':');
            stored.push_str(&port.to_string());
        }
        stored.push_str(rest);
        self.check_sendable(&stored)?;
        // Normalising must not change what the URL means.
        if Url::parse(&stored).ok().as_ref() != Some(&url) {
            return Err(Refusal::NotHierarchical);
        }
        Ok(stored)
    }

    /// Checks a URL about to be sent (as stored, possibly before
    /// [`Policy::accept_url`] existed): the policy, then that the HTTP
    /// client can send it and would send it to the scheme, host and port
    /// the policy checked. Returns what the client sends.
    pub(crate) fn check_sendable(&self, url: &str) -> Result<http::Uri, Refusal> {
        let checked = self.check_url(url)?;
        let uri: http::Uri =
            url.parse()
                .map_err(|e: http::uri::InvalidUri| match check_chars(url) {
                    Err(specific) => specific,
                    Ok(()) => Refusal::Unsendable(e.to_string()),
                })?;
        let default_port = |scheme: &str| match scheme {
            "http" => Some(80),
            "https" => Some(443),
            _ => None,
        };
        let sent_scheme = uri.scheme_str().unwrap_or_default().to_ascii_lowercase();
        let sent_host = uri.host().unwrap_or_default();
        let sent_port = uri.port_u16().or_else(|| default_port(&sent_scheme));
        let same_host = match checked.host() {
            Some(Host::Ipv4(ip)) => sent_host.parse::<Ipv4Addr>() == Ok(ip),
            Some(Host::Ipv6(ip)) => {
                let bare = sent_host.trim_start_matches('[').trim_end_matches(']');
                bare.parse::<Ipv6Addr>() == Ok(ip)
            }
            Some(Host::Domain(name)) => sent_host.eq_ignore_ascii_case(name),
            None => false,
        };
        if sent_scheme != checked.scheme()
            || !same_host
            || sent_port != checked.port_or_known_default()
        {
            let port = checked.port_or_known_default().unwrap_or_default();
            return Err(Refusal::Ambiguous {
                checked: format!(
                    "{}://{}:{port}",
                    checked.scheme(),
                    checked.host_str().unwrap_or_default()
                ),
                sent: format!(
                    "{sent_scheme}://{sent_host}:{}",
                    sent_port.unwrap_or_default()
                ),
            });
        }
        Ok(uri)
    }
}

/// Refuses the first character that an HTTP request cannot carry as
/// written: a space, a control character or a backslash anywhere; after the
/// host, anything `http::Uri` refuses in a path or query, and non-ASCII.
/// (In the host, WHATWG decides: it maps an IDN host to ASCII.)
fn check_chars(url: &str) -> Result<(), Refusal> {
    let host_end = url
        .find("://")
        .map(|at| at + 3)
        .and_then(|start| {
            let after = url.get(start..)?;
            Some(start + after.find(['/', '?', '#']).unwrap_or(after.len()))
        })
        .unwrap_or(0);
    let mut in_query = false;
    for (index, (at, c)) in url.char_indices().enumerate() {
        let bad = if c.is_control() || c == ' ' || c == '\\' {
            true
        } else if at < host_end {
            false
        } else {
            let sendable = c.is_ascii() && http_accepts(c, in_query);
            in_query |= c == '?';
            !sendable
        };
        if bad {
            let (what, fix) = describe(c);
            return Err(Refusal::Character {
                what,
                position: index + 1,
                fix,
            });
        }
    }
    Ok(())
}

/// Whether `http::Uri` accepts `c` in a path (or, after `?`, in a query).
fn http_accepts(c: char, in_query: bool) -> bool {
    let probe = if in_query {
        format!("/?{c}")
    } else {
        format!("/{c}")
    };
    http::uri::PathAndQuery::try_from(probe.as_str()).is_ok()
}

/// The character named for a person, and how to write it instead.
fn describe(c: char) -> (String, String) {
    let mut utf8 = [0u8; 4];
    let encoded: String = c
        .encode_utf8(&mut utf8)
        .bytes()
        .map(|b| format!("%{b:02X}"))
        .collect();
    match c {
        ' ' => ("a space".into(), format!("percent-encode it as {encoded}")),
        '\\' => (
            "a backslash".into(),
            format!("write `/` to separate path segments, or percent-encode it as {encoded}"),
        ),
        c if c.is_control() => (
            format!("a control character (U+{:04X})", u32::from(c)),
            "remove it".into(),
        ),
        c => (format!("`{c}`"), format!("percent-encode it as {encoded}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn strict() -> Policy {
        Policy::default()
    }
    fn open() -> Policy {
        Policy::new(true, true, &[])
    }

    #[test]
    fn stores_scheme_and_host_normalised_and_the_rest_as_written() {
        for (given, stored) in [
            ("HTTPS://Example.COM/path", "https://example.com/path"),
            (
                "  https://example.com/Path?Q=A%2f  ",
                "https://example.com/Path?Q=A%2f",
            ),
            ("https://example.com", "https://example.com"),
            ("https://example.com?x=1", "https://example.com?x=1"),
            ("https://example.com:443/h", "https://example.com/h"),
            ("https://example.com:8443/h", "https://example.com:8443/h"),
            (
                "https://bücher.example/h",
                "https://xn--bcher-kva.example/h",
            ),
            ("https://ex%61mple.com/h", "https://example.com/h"),
            (
                "https://[2606:4700:0:0::1111]/h",
                "https://[2606:4700::1111]/h",
            ),
            (
                "https://example.com/a/../b/./c",
                "https://example.com/a/../b/./c",
            ),
            (
                "https://example.com/{x}\"y\"",
                "https://example.com/{x}\"y\"",
            ),
            (
                "https://example.com/a?b=%zz&c=|^`",
                "https://example.com/a?b=%zz&c=|^`",
            ),
        ] {
            assert_eq!(strict().accept_url(given).as_deref(), Ok(stored), "{given}");
        }
        assert_eq!(
            open().accept_url("HTTP://LocalHost:80/hook").as_deref(),
            Ok("http://localhost/hook")
        );
    }

    #[test]
    fn refuses_what_the_sender_cannot_send_with_position_and_fix() {
        for (given, what, position, fix) in [
            ("https://example.com/a b", "a space", 22, "%20"),
            ("https://example.com/a\\b", "a backslash", 22, "%5C"),
            ("https://example.com\\a", "a backslash", 20, "write `/`"),
            (
                "https://exa\tmple.com/",
                "a control character (U+0009)",
                12,
                "remove it",
            ),
            ("https://example.com/caf\u{e9}", "`\u{e9}`", 24, "%C3%A9"),
            ("https://example.com/x?q=<1>", "`<`", 25, "%3C"),
            ("https://example.com/a`b", "```", 22, "%60"),
        ] {
            let err = strict().accept_url(given).expect_err(given);
            let Refusal::Character {
                what: got_what,
                position: got_position,
                fix: got_fix,
            } = &err
            else {
                panic!("{given}: {err:?}")
            };
            assert_eq!(got_what, what, "{given}");
            assert_eq!(*got_position, position, "{given}");
            assert!(got_fix.contains(fix), "{given}: {got_fix}");
        }
    }

    #[test]
    fn refuses_urls_not_written_as_scheme_slash_slash_host() {
        for given in [
            "https:example.com/h",
            "https:/example.com/h",
            "https:////example.com/h",
        ] {
            assert_eq!(
                strict().accept_url(given),
                Err(Refusal::NotHierarchical),
                "{given}"
            );
        }
    }

    #[test]
    fn sending_refuses_a_stored_url_the_client_cannot_send_or_reads_differently() {
        assert!(matches!(
            strict().check_sendable("https://example.com/a b"),
            Err(Refusal::Character { position: 22, .. })
        ));
        // Stored before normalisation: still sent as it always was.
        assert!(strict().check_sendable("https://Example.COM:443/h").is_ok());
        // WHATWG reads `https:example.com` as host example.com, http::Uri as host `https`.
        assert!(matches!(
            strict().check_sendable("https:example.com"),
            Err(Refusal::Ambiguous { .. })
        ));
        // WHATWG reads 127.1 as 127.0.0.1; the client would resolve the name `127.1`.
        assert!(matches!(
            open().check_sendable("http://127.1/h"),
            Err(Refusal::Ambiguous { .. })
        ));
    }

    /// URL-ish strings: a scheme, an authority and a path/query drawn from
    /// every character class that the two parsers treat differently.
    fn urlish() -> impl Strategy<Value = String> {
        let scheme = prop::sample::select(vec![
            "https", "HTTPS", "Https", "http", "ftp", "https:", "https:/",
        ]);
        let host = prop_oneof![
            prop::sample::select(vec![
                "example.com",
                "Example.COM",
                "bücher.example",
                "ex%61mple.com",
                "example.com.",
                "a_b.example",
                "8.8.8.8",
                "127.0.0.1",
                "0x7f.1",
                "[2606:4700:0:0::1111]",
                "[::ffff:8.8.8.8]",
                "user@example.com",
                "",
            ])
            .prop_map(str::to_owned),
            "[a-zA-Z0-9.\\-_%é ]{1,12}",
        ];
        let port = prop::sample::select(vec!["", ":", ":443", ":80", ":0443", ":8443", ":99999"]);
        let rest = prop_oneof![
            "[/?a-zA-Z0-9%\"{}|^'.]{0,16}",
            "[/?#a-zA-Z0-9 \\\\%\"{}<>|^`'.\t\u{e9}\u{3000}]{0,16}",
        ];
        (scheme, host, port, rest).prop_map(|(s, h, p, r)| format!(" {s}://{h}{p}{r} "))
    }

    proptest! {
        #[test]
        fn every_accepted_url_is_sent_as_checked(raw in urlish()) {
            for policy in [strict(), open()] {
                let Ok(stored) = policy.accept_url(&raw) else { continue };
                // What hyper sends parses, to the destination the policy checked.
                let parsed = stored.parse::<http::Uri>();
                prop_assert!(parsed.is_ok(), "{stored} does not parse as http::Uri: {parsed:?}");
                let uri = policy.check_sendable(&stored);
                prop_assert!(uri.is_ok(), "{stored}: {uri:?}");
                let uri = uri.unwrap();
                prop_assert!(stored.is_ascii(), "{stored}");
                // The WHATWG meaning is unchanged, and normalising twice changes nothing.
                prop_assert_eq!(Url::parse(&stored).ok(), Url::parse(raw.trim()).ok());
                prop_assert_eq!(policy.accept_url(&stored), Ok(stored.clone()));
                // The path and query are sent exactly as stored.
                let sent = uri.path_and_query().map_or("/", |pq| pq.as_str());
                let authority = uri.authority().map_or("", |a| a.as_str());
                let rest = stored.split_once(authority).map_or("", |(_, rest)| rest);
                let as_stored = sent == rest
                    || (rest.is_empty() && sent == "/")
                    || (rest.starts_with('?') && sent == format!("/{rest}"));
                prop_assert!(as_stored, "{stored}: sends {sent}");
            }
        }
    }
}
