//! The ION scheme: `x-ion-signature`.
//!
//! ```text
//! params = [f"{k}:{v}" for k, v in sorted(data.items()) if v is not None]
//! signed = f"{url}?{'&'.join(params)}".encode("utf-8")
//! header = base64(hmac_sha1(secret.encode("utf-8"), signed))
//! ```
//!
//! `data` is the `data` member of the body as Python's `json.loads` builds
//! it, and `v` is formatted with Python's `str()` (see [`crate::canonical`]).
//! Pairs are sorted by key, as `sorted(data.items())` sorts them; that differs
//! from sorting the `k:v` strings when one key is a prefix of another (`a`,
//! `a-`), and the reference code is what receivers run.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use subtle::ConstantTimeEq;

use crate::canonical::{self, FormatError};
use crate::error::Error;
use crate::json::{Object, Text, Value};

/// The header carrying the signature.
pub const HEADER: &str = "x-ion-signature";

/// During a secret rotation's overlap window, the header carrying the
/// signature made with the *new* secret (`x-ion-signature` keeps the old one
/// until the window closes, so receivers that have not switched yet keep
/// verifying).
pub const HEADER_NEXT: &str = "x-ion-signature-next";

type HmacSha1 = Hmac<Sha1>;

/// One `key:value` pair of the signed string, its value already formatted.
struct Param<'d> {
    key: &'d [u8],
    range: std::ops::Range<usize>,
}

/// Formats the non-null pairs of `data` into `values`, sorted by key.
fn collect_params<'d>(data: &'d Object<'_>, values: &mut Vec<u8>) -> Result<Vec<Param<'d>>, Error> {
    let mut params = Vec::with_capacity(data.len());
    for (key, value) in data {
        if matches!(value, Value::Null) {
            continue;
        }
        let unencodable = || Error::Unencodable { key: lossy(key) };
        if canonical::has_surrogate(key.as_bytes()) {
            return Err(unencodable());
        }
        let start = values.len();
        canonical::write_str(values, value).map_err(|FormatError::LoneSurrogate| unencodable())?;
        params.push(Param {
            key: key.as_bytes(),
            range: start..values.len(),
        });
    }
    // Keys of a dict are unique, so comparing keys alone is `sorted(items())`;
    // byte order of UTF-8 is code point order, which is Python's str order.
    params.sort_unstable_by(|a, b| a.key.cmp(b.key));
    Ok(params)
}

fn lossy(text: &Text<'_>) -> String {
    text.code_points()
        .map(|cp| char::from_u32(cp).unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect()
}

/// Writes `url?k:v&k:v…` into `out`.
fn write_signed(url: &str, params: &[Param<'_>], values: &[u8], out: &mut Vec<u8>) {
    out.reserve(url.len() + 1 + values.len() + params.len() * (16 + 2));
    out.extend_from_slice(url.as_bytes());
    out.push(b'?');
    for (i, param) in params.iter().enumerate() {
        if i > 0 {
            out.push(b'&');
        }
        out.extend_from_slice(param.key);
        out.push(b':');
        out.extend_from_slice(&values[param.range.clone()]);
    }
}

/// The signed message for a `data` object (the tree path).
fn signed_message(url: &str, data: &Object<'_>) -> Result<Vec<u8>, Error> {
    let mut values = Vec::new();
    let params = collect_params(data, &mut values)?;
    let mut out = Vec::new();
    write_signed(url, &params, &values, &mut out);
    Ok(out)
}

/// An `x-ion-signature` value: base64 of an HMAC-SHA1, 28 ASCII bytes.
pub(crate) struct Base64Digest([u8; 28]);

impl Base64Digest {
    pub(crate) fn as_str(&self) -> &str {
        // Base64 output is ASCII; the fallback is unreachable.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

/// `base64(hmac_sha1(secret, message))`.
fn mac_base64(secret: &[u8], message: &[u8]) -> Result<Base64Digest, Error> {
    let mut mac = HmacSha1::new_from_slice(secret)
        .map_err(|_| Error::InvalidSecret("HMAC rejected the key"))?;
    mac.update(message);
    let mut out = [0u8; 28];
    BASE64
        .encode_slice(mac.finalize().into_bytes(), &mut out)
        .map_err(|_| Error::InvalidSecret("HMAC output does not fit"))?;
    Ok(Base64Digest(out))
}

/// The signature of a `data` object.
fn expected_for_data(secret: &str, url: &str, data: &Object<'_>) -> Result<Base64Digest, Error> {
    mac_base64(secret.as_bytes(), &signed_message(url, data)?)
}

/// The signature of a raw body: straight from the bytes in one pass
/// (`canonical::with_signed`) or, for the bodies that path leaves alone,
/// through the parsed tree. Both give the same bytes.
pub(crate) fn expected_for_body(
    secret: &str,
    url: &str,
    body: &[u8],
) -> Result<Base64Digest, Error> {
    if let Some(signature) =
        canonical::with_signed(url, body, |message| mac_base64(secret.as_bytes(), message))
    {
        return signature;
    }
    let value = Value::parse(body)?;
    expected_for_data(secret, url, data_of(&value)?)
}

/// The `data` object of a body, as the reference code sees it.
pub fn data_of<'v, 'a>(body: &'v Value<'a>) -> Result<&'v Object<'a>, Error> {
    let Value::Object(_) = body else {
        return Err(Error::NotAnObject {
            field: "body",
            found: body.type_name(),
        });
    };
    match body.get("data") {
        None => Err(Error::MissingData),
        Some(Value::Object(members)) => Ok(members),
        Some(other) => Err(Error::NotAnObject {
            field: "data",
            found: other.type_name(),
        }),
    }
}

/// The exact string the ION scheme signs for this `data` object.
pub fn signed_string(url: &str, data: &Object<'_>) -> Result<String, Error> {
    let out = signed_message(url, data)?;
    // Every piece is UTF-8: the URL, keys and top-level strings checked for
    // lone surrogates, repr() output. The fallback is unreachable.
    Ok(String::from_utf8(out).unwrap_or_default())
}

/// The exact string the ION scheme signs for a raw webhook body.
pub fn signed_string_from_body(url: &str, body: &[u8]) -> Result<String, Error> {
    if let Some(signed) = canonical::with_signed(url, body, |message| {
        String::from_utf8(message.to_vec()).unwrap_or_default()
    }) {
        return Ok(signed);
    }
    let value = Value::parse(body)?;
    signed_string(url, data_of(&value)?)
}

/// Signs a `data` object: the `x-ion-signature` header value.
pub fn sign_data(secret: &str, url: &str, data: &Object<'_>) -> Result<String, Error> {
    Ok(expected_for_data(secret, url, data)?.as_str().to_owned())
}

/// Signs a raw webhook body (its `data` member): the `x-ion-signature` value.
pub fn sign_body(secret: &str, url: &str, body: &[u8]) -> Result<String, Error> {
    Ok(expected_for_body(secret, url, body)?.as_str().to_owned())
}

/// Signs an already-built signed message (`url?k:v&k:v…`, UTF-8) with a
/// secret's UTF-8 bytes: the `x-ion-signature` value. For bindings that
/// format `data` themselves (from their own objects) with
/// [`crate::canonical`]'s writers.
pub fn sign_message(secret: &[u8], message: &[u8]) -> Result<String, Error> {
    Ok(mac_base64(secret, message)?.as_str().to_owned())
}

/// Verifies an `x-ion-signature` value against an already-built signed
/// message (see [`sign_message`]), comparing the base64 text in constant time.
pub fn verify_message(secret: &[u8], message: &[u8], signature: &[u8]) -> Result<(), Error> {
    let expected = mac_base64(secret, message)?;
    if expected.0.ct_eq(signature).into() {
        Ok(())
    } else {
        Err(Error::SignatureMismatch)
    }
}

/// Compares two header values in constant time (for equal lengths).
pub(crate) fn constant_time_eq(expected: &str, given: &str) -> bool {
    expected.as_bytes().ct_eq(given.as_bytes()).into()
}

/// Verifies a `data` object against an `x-ion-signature` value, exactly as
/// the reference function does (`hmac.compare_digest` on the base64 text).
pub fn verify_data(
    secret: &str,
    url: &str,
    data: &Object<'_>,
    signature: &str,
) -> Result<(), Error> {
    let expected = expected_for_data(secret, url, data)?;
    if constant_time_eq(expected.as_str(), signature) {
        Ok(())
    } else {
        Err(Error::SignatureMismatch)
    }
}

/// Verifies a raw webhook body against an `x-ion-signature` value.
///
/// This is the safe call for receivers: it reads the body exactly as Python
/// does, so key order, number spelling and duplicate keys all count.
pub fn verify_body(secret: &str, url: &str, body: &[u8], signature: &str) -> Result<(), Error> {
    let expected = expected_for_body(secret, url, body)?;
    if constant_time_eq(expected.as_str(), signature) {
        Ok(())
    } else {
        Err(Error::SignatureMismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &str = r#"{"event_id": 123456, "subscription_id": 42, "resource": "run_step", "action": "update", "transaction_id": 9876543, "occurred_at": "2026-04-26T19:33:42.108Z", "data": {"id": 1234, "etag": "abc123", "old": {"status": "in_progress"}, "new": {"status": "complete", "completed_at": "2026-04-26T19:33:42.108Z"}}}"#;

    #[test]
    fn signed_string_of_the_reference_example() {
        let s = signed_string_from_body("https://x.test/hook", BODY.as_bytes()).unwrap();
        assert_eq!(
            s,
            "https://x.test/hook?etag:abc123&id:1234&new:{'status': 'complete', 'completed_at': '2026-04-26T19:33:42.108Z'}&old:{'status': 'in_progress'}"
        );
    }

    #[test]
    fn nulls_are_left_out_and_keys_sort_by_key() {
        let body = br#"{"data": {"a-": 1, "a": 2, "old": null, "b": [null]}}"#;
        let s = signed_string_from_body("u", body).unwrap();
        assert_eq!(s, "u?a:2&a-:1&b:[None]");
    }

    #[test]
    fn sign_and_verify_round_trip() {
        let sig = sign_body("s", "https://x.test/hook", BODY.as_bytes()).unwrap();
        assert_eq!(sig.len(), 28);
        verify_body("s", "https://x.test/hook", BODY.as_bytes(), &sig).unwrap();
        assert_eq!(
            verify_body("s", "https://x.test/hook/", BODY.as_bytes(), &sig),
            Err(Error::SignatureMismatch)
        );
        assert_eq!(
            verify_body("t", "https://x.test/hook", BODY.as_bytes(), &sig),
            Err(Error::SignatureMismatch)
        );
    }

    #[test]
    fn typed_errors_for_bad_bodies() {
        assert!(matches!(
            sign_body("s", "u", b"{"),
            Err(Error::InvalidJson(_))
        ));
        assert_eq!(sign_body("s", "u", b"{}"), Err(Error::MissingData));
        assert_eq!(
            sign_body("s", "u", br#"{"data": []}"#),
            Err(Error::NotAnObject {
                field: "data",
                found: "array"
            })
        );
        assert_eq!(
            sign_body("s", "u", b"[]"),
            Err(Error::NotAnObject {
                field: "body",
                found: "array"
            })
        );
        assert!(matches!(
            sign_body("s", "u", br#"{"data": {"k": "\udc00"}}"#),
            Err(Error::Unencodable { .. })
        ));
        // Inside a container a lone surrogate is escaped by repr, so it signs.
        assert!(sign_body("s", "u", br#"{"data": {"k": ["\udc00"]}}"#).is_ok());
    }
}
