//! Checking what a plugin returned before the gateway signs and sends it.

use changewire_core::headers;

use crate::bindings::Outcome;
use crate::host::truncate;
use crate::{Error, PluginHeader, PluginLimits, PluginOutcome};

/// The most of a drop reason that is kept (longer ones are cut, on a
/// character boundary).
pub const MAX_REASON_BYTES: usize = 1024;
/// The most headers one outcome may add.
pub const MAX_HEADERS: usize = 32;
/// The longest header value accepted, in bytes.
pub const MAX_HEADER_VALUE_BYTES: usize = 4096;

/// Check the size, the body and the headers; return the outcome with
/// header names lowercased.
pub(crate) fn validate(outcome: Outcome, limits: &PluginLimits) -> Result<PluginOutcome, Error> {
    let size = match &outcome {
        Outcome::Deliver(d) => {
            d.body.as_ref().map_or(0, String::len)
                + d.headers
                    .iter()
                    .map(|h| h.name.len() + h.value.len())
                    .sum::<usize>()
        }
        Outcome::Drop(reason) => reason.len(),
    } as u64;
    if size > limits.max_output_bytes {
        return Err(Error::OutputTooLarge {
            size,
            limit: limits.max_output_bytes,
        });
    }
    let invalid = |reason: String| Err(Error::InvalidOutput { reason });
    match outcome {
        Outcome::Drop(reason) => Ok(PluginOutcome::Drop {
            reason: truncate(&reason, MAX_REASON_BYTES).to_owned(),
        }),
        Outcome::Deliver(d) => {
            if let Some(body) = &d.body
                && let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(body)
            {
                return invalid(format!("the body is not valid JSON: {e}"));
            }
            if d.headers.len() > MAX_HEADERS {
                return invalid(format!(
                    "{} headers, more than the {MAX_HEADERS} allowed",
                    d.headers.len()
                ));
            }
            let mut headers: Vec<PluginHeader> = Vec::with_capacity(d.headers.len());
            for h in d.headers {
                let name = h.name.to_ascii_lowercase();
                if let Err(reason) = check_header(&name, &h.value) {
                    return invalid(reason);
                }
                if headers.iter().any(|seen| seen.name == name) {
                    return invalid(format!("header `{name}` is set twice"));
                }
                headers.push(PluginHeader {
                    name,
                    value: h.value,
                });
            }
            Ok(PluginOutcome::Deliver {
                body: d.body,
                headers,
            })
        }
    }
}

/// `name` is already lowercase.
fn check_header(name: &str, value: &str) -> Result<(), String> {
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if name.is_empty() || !name.bytes().all(token) {
        return Err(format!(
            "header name {name:?} is not a valid HTTP header name"
        ));
    }
    if let Some(why) = headers::reserved(name) {
        return Err(format!(
            "header `{name}` is set by the gateway and cannot be set by a plugin: {why}"
        ));
    }
    if value.len() > MAX_HEADER_VALUE_BYTES {
        return Err(format!(
            "header `{name}` value is longer than {MAX_HEADER_VALUE_BYTES} bytes"
        ));
    }
    if let Some(bad) = value
        .bytes()
        .find(|&b| !(b == b'\t' || (b' '..=b'~').contains(&b)))
    {
        return Err(format!(
            "header `{name}` value contains byte 0x{bad:02x}; only printable ASCII, space and tab are allowed"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bindings::{Deliver, Header};

    /// The outcome a guest would return, in the generated types.
    fn deliver(body: Option<&str>, headers: &[(&str, &str)]) -> Outcome {
        Outcome::Deliver(Deliver {
            body: body.map(str::to_owned),
            headers: headers
                .iter()
                .map(|(n, v)| Header {
                    name: (*n).to_owned(),
                    value: (*v).to_owned(),
                })
                .collect(),
        })
    }

    fn reason(o: Outcome) -> String {
        match validate(o, &PluginLimits::default()) {
            Err(Error::InvalidOutput { reason }) => reason,
            other => panic!("expected InvalidOutput, got {other:?}"),
        }
    }

    #[test]
    fn accepts_valid_output_and_lowercases_names() {
        let out = validate(
            deliver(Some(r#"{"a":1}"#), &[("X-Team", "pay ments\t1")]),
            &PluginLimits::default(),
        );
        assert_eq!(
            out.ok(),
            Some(PluginOutcome::Deliver {
                body: Some(r#"{"a":1}"#.to_owned()),
                headers: vec![PluginHeader {
                    name: "x-team".into(),
                    value: "pay ments\t1".into()
                }],
            })
        );
        let drop = validate(Outcome::Drop("no".into()), &PluginLimits::default());
        assert_eq!(
            drop.ok(),
            Some(PluginOutcome::Drop {
                reason: "no".into()
            })
        );
    }

    #[test]
    fn refuses_each_kind_of_garbage() {
        assert!(reason(deliver(Some("{nope"), &[])).starts_with("the body is not valid JSON: "));
        assert!(reason(deliver(Some(""), &[])).starts_with("the body is not valid JSON: "));
        assert!(reason(deliver(None, &[("x", "a\r\nb: c")])).contains("contains byte 0x0d"));
        assert!(reason(deliver(None, &[("x", "\u{e9}")])).contains("contains byte 0xc3"));
        assert!(reason(deliver(None, &[("x y", "1")])).contains("not a valid HTTP header name"));
        assert!(reason(deliver(None, &[("", "1")])).contains("not a valid HTTP header name"));
        for name in [
            "Content-Type",
            "authorization",
            "HOST",
            "content-length",
            "transfer-encoding",
        ] {
            assert!(
                reason(deliver(None, &[(name, "1")])).contains("set by the gateway"),
                "{name}"
            );
        }
        for name in [
            "x-ion-signature",
            "X-ION-Signature-2",
            "webhook-signature",
            "webhook-id",
        ] {
            assert!(
                reason(deliver(None, &[(name, "1")])).contains("set by the gateway"),
                "{name}"
            );
        }
        assert!(reason(deliver(None, &[("a", "1"), ("A", "2")])).contains("set twice"));
        let many: Vec<(String, &str)> =
            (0..=MAX_HEADERS).map(|i| (format!("x-{i}"), "1")).collect();
        let many: Vec<(&str, &str)> = many.iter().map(|(n, v)| (n.as_str(), *v)).collect();
        assert!(reason(deliver(None, &many)).contains("more than the 32 allowed"));
    }

    #[test]
    fn refuses_every_header_on_the_shared_reserved_list() {
        use changewire_core::headers::{RESERVED_NAMES, RESERVED_PREFIXES};
        let names = RESERVED_NAMES.iter().map(|(n, _)| n.to_string());
        // A prefix alone and a look-alike that merely starts with it.
        let prefixed = RESERVED_PREFIXES
            .iter()
            .flat_map(|(p, _)| [p.to_string(), format!("{p}x-v2")]);
        for name in names.chain(prefixed) {
            let upper = name.to_ascii_uppercase();
            let got = reason(deliver(None, &[(&upper, "1")]));
            assert!(
                got.starts_with(&format!("header `{name}` is set by the gateway")),
                "{name}: {got}"
            );
        }
        // The two the old plugin list let through.
        assert!(reason(deliver(None, &[("User-Agent", "evil/1")])).contains("identity"));
        assert!(reason(deliver(None, &[("Proxy-Status", "x")])).contains("credentials"));
    }

    #[test]
    fn refuses_oversized_output() {
        let limits = PluginLimits {
            max_output_bytes: 1024,
            ..PluginLimits::default()
        };
        let body = format!("\"{}\"", "x".repeat(1023));
        match validate(deliver(Some(&body), &[]), &limits) {
            Err(Error::OutputTooLarge {
                size: 1025,
                limit: 1024,
            }) => {}
            other => panic!("expected OutputTooLarge, got {other:?}"),
        }
    }
}
