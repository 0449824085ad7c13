//! Why does my signature not match? — the question every integrator asks.
//!
//! [`diagnose`] recomputes the ION signature and, on a mismatch, retries the
//! mistakes seen most often in receivers: a URL that differs from the one
//! registered (trailing slash, `http` vs `https`, query string), a body that
//! was parsed and re-serialized before verification (keys reordered), and
//! pairs sorted as `k:v` strings instead of by key. When none explains it,
//! the secret is wrong or the body was changed.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::error::Error;
use crate::ion;
use crate::json::{Object, Value};

/// The likely cause of a mismatch.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Cause {
    /// The signature is not base64 of a 20-byte HMAC-SHA1.
    MalformedSignature,
    /// It matches another spelling of the URL: the receiver must use the URL
    /// exactly as registered.
    DifferentUrl {
        /// The URL the signature was made for.
        signed_url: String,
        /// What differs (`trailing slash`, `scheme`, `query string`).
        difference: &'static str,
    },
    /// It matches once nested keys are put in another order: the body was
    /// parsed and re-serialized (JavaScript moves integer-like keys first,
    /// some frameworks sort keys) before verification. Verify the raw body.
    ReorderedBody {
        /// Which reordering reproduces the signature.
        order: &'static str,
    },
    /// It matches when the `k:v` strings are sorted instead of the keys,
    /// which differs when one key is a prefix of another.
    SortedPairStrings,
    /// Nothing above reproduces it: the secret differs, or the body changed.
    WrongSecretOrModifiedBody,
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cause::MalformedSignature => f.write_str(
                "the signature is not base64 of a 20-byte HMAC-SHA1; check the header you read",
            ),
            Cause::DifferentUrl { signed_url, difference } => write!(
                f,
                "the signature matches the URL `{signed_url}` ({difference}); verify with the URL exactly as registered"
            ),
            Cause::ReorderedBody { order } => write!(
                f,
                "the signature matches the body with {order}: the body was parsed and re-serialized before verification; verify the raw body bytes"
            ),
            Cause::SortedPairStrings => f.write_str(
                "the signature matches when the `k:v` strings are sorted; sort the pairs by key, as `sorted(data.items())` does",
            ),
            Cause::WrongSecretOrModifiedBody => f.write_str(
                "no URL or ordering variant matches: the secret is wrong, or the body changed after signing",
            ),
        }
    }
}

/// What [`diagnose`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnosis {
    /// The exact string the ION scheme signs for this URL and body.
    pub signed_string: String,
    /// The signature this secret gives.
    pub expected_signature: String,
    /// Whether the given signature matches.
    pub matches: bool,
    /// On a mismatch, the most likely cause.
    pub cause: Option<Cause>,
}

/// Recomputes the ION signature of `body` and explains a mismatch.
pub fn diagnose(secret: &str, url: &str, body: &[u8], signature: &str) -> Result<Diagnosis, Error> {
    let value = Value::parse(body)?;
    let data = ion::data_of(&value)?;
    let signed_string = ion::signed_string(url, data)?;
    let expected_signature = ion::sign_data(secret, url, data)?;
    let signature = signature.trim();
    let matches = ion::constant_time_eq(&expected_signature, signature);
    let cause = if matches {
        None
    } else {
        Some(find_cause(secret, url, data, signature)?)
    };
    Ok(Diagnosis {
        signed_string,
        expected_signature,
        matches,
        cause,
    })
}

fn find_cause(secret: &str, url: &str, data: &Object<'_>, signature: &str) -> Result<Cause, Error> {
    if BASE64.decode(signature).map(|raw| raw.len()) != Ok(20) {
        return Ok(Cause::MalformedSignature);
    }
    for (candidate, difference) in url_variants(url) {
        if ion::sign_data(secret, &candidate, data)? == signature {
            return Ok(Cause::DifferentUrl {
                signed_url: candidate,
                difference,
            });
        }
    }
    for (order, label) in [
        (Order::Sorted, "every nested object's keys sorted"),
        (
            Order::JavaScript,
            "integer-like keys first, as JavaScript orders them",
        ),
    ] {
        let reordered: Object<'_> = data
            .iter()
            .map(|(k, v)| (k.clone(), reorder(v, order)))
            .collect();
        if ion::sign_data(secret, url, &reordered)? == signature {
            return Ok(Cause::ReorderedBody { order: label });
        }
    }
    if sign_pair_string_sorted(secret, url, data)? == signature {
        return Ok(Cause::SortedPairStrings);
    }
    Ok(Cause::WrongSecretOrModifiedBody)
}

fn url_variants(url: &str) -> Vec<(String, &'static str)> {
    let mut out = Vec::new();
    match url.strip_suffix('/') {
        Some(trimmed) => out.push((trimmed.to_string(), "without the trailing slash")),
        None => out.push((format!("{url}/"), "with a trailing slash")),
    }
    if let Some(rest) = url.strip_prefix("https://") {
        out.push((format!("http://{rest}"), "http instead of https"));
    } else if let Some(rest) = url.strip_prefix("http://") {
        out.push((format!("https://{rest}"), "https instead of http"));
    }
    if let Some((base, _)) = url.split_once('?') {
        out.push((base.to_string(), "without the query string"));
    }
    out
}

#[derive(Clone, Copy)]
enum Order {
    Sorted,
    JavaScript,
}

fn is_array_index(key: &[u8]) -> bool {
    !key.is_empty()
        && key.len() <= 10
        && key.iter().all(u8::is_ascii_digit)
        && (key == b"0" || key[0] != b'0')
        && std::str::from_utf8(key)
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .is_some_and(|n| n < u64::from(u32::MAX))
}

fn reorder<'a>(value: &Value<'a>, order: Order) -> Value<'a> {
    match value {
        Value::Array(items) => Value::Array(items.iter().map(|v| reorder(v, order)).collect()),
        Value::Object(members) => {
            let mut members: Object<'a> = members
                .iter()
                .map(|(k, v)| (k.clone(), reorder(v, order)))
                .collect();
            match order {
                Order::Sorted => members.sort_by(|a, b| a.0.cmp(&b.0)),
                Order::JavaScript => {
                    // Integer-like keys first, ascending numerically; the rest keep their order.
                    let index_of = |key: &[u8]| -> Option<u64> {
                        is_array_index(key).then(|| std::str::from_utf8(key).ok()?.parse().ok())?
                    };
                    members.sort_by_key(|(k, _)| index_of(k.as_bytes()).map_or((1, 0), |n| (0, n)));
                }
            }
            Value::Object(members)
        }
        other => other.clone(),
    }
}

fn sign_pair_string_sorted(secret: &str, url: &str, data: &Object<'_>) -> Result<String, Error> {
    // Recompute the pairs, sort the joined strings, and sign that.
    let signed = ion::signed_string(url, data)?;
    let query = signed.get(url.len() + 1..).unwrap_or("");
    let mut pairs: Vec<&str> = if query.is_empty() {
        Vec::new()
    } else {
        query.split('&').collect()
    };
    pairs.sort_unstable();
    // Pair values may themselves contain '&'; then this variant is approximate,
    // which is acceptable for a diagnostic.
    let joined = format!("{url}?{}", pairs.join("&"));
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes())
        .map_err(|_| Error::InvalidSecret("HMAC rejected the key"))?;
    mac.update(joined.as_bytes());
    Ok(BASE64.encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] =
        br#"{"data": {"id": 1, "new": {"10": "a", "2": "b", "z": 1, "a": 2}, "a-": 1, "a": 2}}"#;

    #[test]
    fn matching_signature_has_no_cause() {
        let sig = ion::sign_body("s", "https://r.test/h", BODY).unwrap();
        let d = diagnose("s", "https://r.test/h", BODY, &sig).unwrap();
        assert!(d.matches);
        assert_eq!(d.cause, None);
        assert!(
            d.signed_string
                .starts_with("https://r.test/h?a:2&a-:1&id:1&new:{'10': 'a'")
        );
    }

    #[test]
    fn finds_a_trailing_slash() {
        let sig = ion::sign_body("s", "https://r.test/h/", BODY).unwrap();
        let d = diagnose("s", "https://r.test/h", BODY, &sig).unwrap();
        assert_eq!(
            d.cause,
            Some(Cause::DifferentUrl {
                signed_url: "https://r.test/h/".into(),
                difference: "with a trailing slash"
            })
        );
    }

    #[test]
    fn finds_a_javascript_reordering() {
        // The sender signed JS order; the receiver holds the original order.
        let js = br#"{"data": {"id": 1, "new": {"2": "b", "10": "a", "z": 1, "a": 2}, "a-": 1, "a": 2}}"#;
        let sig = ion::sign_body("s", "https://r.test/h", js).unwrap();
        let d = diagnose("s", "https://r.test/h", BODY, &sig).unwrap();
        assert!(
            matches!(d.cause, Some(Cause::ReorderedBody { .. })),
            "{:?}",
            d.cause
        );
    }

    #[test]
    fn finds_pair_string_sorting_and_wrong_secret() {
        let d = diagnose("s", "u", BODY, "not base64!").unwrap();
        assert_eq!(d.cause, Some(Cause::MalformedSignature));
        let other = ion::sign_body("t", "u", BODY).unwrap();
        let d = diagnose("s", "u", BODY, &other).unwrap();
        assert_eq!(d.cause, Some(Cause::WrongSecretOrModifiedBody));
        let sorted = sign_pair_string_sorted(
            "s",
            "u",
            &ion::data_of(&Value::parse(BODY).unwrap()).unwrap().clone(),
        )
        .unwrap();
        let d = diagnose("s", "u", BODY, &sorted).unwrap();
        assert_eq!(d.cause, Some(Cause::SortedPairStrings));
    }
}
