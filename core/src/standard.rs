//! The Standard Webhooks scheme (<https://www.standardwebhooks.com>).
//!
//! `webhook-signature: v1,<base64(hmac_sha256(key, "{id}.{timestamp}.{body}"))>`,
//! where the key is the base64 text after `whsec_` in the secret. The header
//! may carry several space-separated signatures (one per active secret during
//! a rotation); any `v1` match verifies. The timestamp must be within a
//! tolerance of the receiver's clock, which stops replays of old requests.
//!
//! The asymmetric variant, `v1a` (Ed25519, verified with a `whpk_` public
//! key), is [`Ed25519SigningKey`] and [`Ed25519PublicKey`].

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::Error;
use crate::ion::constant_time_eq;

mod asymmetric;

pub use asymmetric::{
    ASYMMETRIC_VERSION, Ed25519PublicKey, Ed25519SigningKey, PUBLIC_KEY_PREFIX, SIGNING_KEY_PREFIX,
};

/// Header carrying the message id (changewire: the `event_id`).
pub const HEADER_ID: &str = "webhook-id";
/// Header carrying the Unix timestamp, in seconds, of this attempt.
pub const HEADER_TIMESTAMP: &str = "webhook-timestamp";
/// Header carrying the signatures.
pub const HEADER_SIGNATURE: &str = "webhook-signature";
/// Default tolerance between the timestamp and the receiver's clock, in seconds.
pub const DEFAULT_TOLERANCE_SECS: u64 = 300;
/// The prefix of a Standard Webhooks secret.
pub const SECRET_PREFIX: &str = "whsec_";

type HmacSha256 = Hmac<Sha256>;

/// A Standard Webhooks signing key (the decoded bytes of a `whsec_` secret).
#[derive(Clone)]
pub struct SigningKey(Vec<u8>);

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey([redacted])")
    }
}

impl SigningKey {
    /// Reads `whsec_<base64>` (the prefix is optional).
    pub fn from_secret(secret: &str) -> Result<Self, Error> {
        let encoded = secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret);
        let key = BASE64.decode(encoded).map_err(|_| {
            Error::InvalidSecret("a Standard Webhooks secret is `whsec_` followed by base64")
        })?;
        if key.is_empty() {
            return Err(Error::InvalidSecret("the Standard Webhooks key is empty"));
        }
        Ok(SigningKey(key))
    }

    /// Wraps raw key bytes.
    pub fn from_bytes(key: impl Into<Vec<u8>>) -> Self {
        SigningKey(key.into())
    }

    /// The `v1,<base64>` signature of one message.
    pub fn sign(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
        let mut mac = self.mac();
        mac.update(msg_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", BASE64.encode(mac.finalize().into_bytes()))
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC accepts keys of any length; the fallback is unreachable.
        HmacSha256::new_from_slice(&self.0).unwrap_or_else(|_| HmacSha256::new(&Default::default()))
    }
}

/// Parses a `webhook-timestamp` value.
pub fn parse_timestamp(value: &str) -> Result<i64, Error> {
    value
        .trim()
        .parse::<i64>()
        .map_err(|_| Error::MalformedHeader {
            header: HEADER_TIMESTAMP,
            reason: "not an integer number of seconds",
        })
}

/// Checks a timestamp against the receiver's clock.
pub fn check_timestamp(timestamp: i64, now: i64, tolerance_secs: u64) -> Result<(), Error> {
    let diff = i128::from(now) - i128::from(timestamp);
    let tolerance = i128::from(tolerance_secs);
    if diff > tolerance {
        return Err(Error::TimestampTooOld {
            age: u64::try_from(diff).unwrap_or(u64::MAX),
            tolerance: tolerance_secs,
        });
    }
    if -diff > tolerance {
        return Err(Error::TimestampTooNew {
            ahead: u64::try_from(-diff).unwrap_or(u64::MAX),
            tolerance: tolerance_secs,
        });
    }
    Ok(())
}

/// Verifies one message: timestamp within `tolerance_secs` of `now`, and any
/// `v1` signature of `signature_header` made with `key`.
pub fn verify(
    key: &SigningKey,
    msg_id: &str,
    timestamp_header: &str,
    signature_header: &str,
    body: &[u8],
    now: i64,
    tolerance_secs: u64,
) -> Result<(), Error> {
    let timestamp = parse_timestamp(timestamp_header)?;
    check_timestamp(timestamp, now, tolerance_secs)?;
    let expected = key.sign(msg_id, timestamp, body);
    let mut saw_v1 = false;
    let mut matched = false;
    for entry in signature_header.split(' ').filter(|e| !e.is_empty()) {
        let Some((version, _)) = entry.split_once(',') else {
            return Err(Error::MalformedHeader {
                header: HEADER_SIGNATURE,
                reason: "each signature is `<version>,<base64>`",
            });
        };
        if version == "v1" {
            saw_v1 = true;
            // No early exit: every candidate is compared.
            matched |= constant_time_eq(&expected, entry);
        }
    }
    if !saw_v1 {
        return Err(Error::MalformedHeader {
            header: HEADER_SIGNATURE,
            reason: "no `v1,` signature",
        });
    }
    if matched {
        Ok(())
    } else {
        Err(Error::SignatureMismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rotation() {
        let key = SigningKey::from_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let other = SigningKey::from_secret("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSx").unwrap();
        let sig = key.sign("msg_1", 1_700_000_000, b"{}");
        verify(&key, "msg_1", "1700000000", &sig, b"{}", 1_700_000_100, 300).unwrap();
        let both = format!("{} {}", other.sign("msg_1", 1_700_000_000, b"{}"), sig);
        verify(
            &key,
            "msg_1",
            "1700000000",
            &both,
            b"{}",
            1_700_000_000,
            300,
        )
        .unwrap();
        assert_eq!(
            verify(
                &key,
                "msg_1",
                "1700000000",
                &sig,
                b"{ }",
                1_700_000_000,
                300
            ),
            Err(Error::SignatureMismatch)
        );
    }

    #[test]
    fn timestamps_outside_the_tolerance_are_refused() {
        let key = SigningKey::from_bytes(*b"k");
        let sig = key.sign("m", 1000, b"");
        assert_eq!(
            verify(&key, "m", "1000", &sig, b"", 1301, 300),
            Err(Error::TimestampTooOld {
                age: 301,
                tolerance: 300
            })
        );
        assert_eq!(
            verify(&key, "m", "1000", &sig, b"", 699, 300),
            Err(Error::TimestampTooNew {
                ahead: 301,
                tolerance: 300
            })
        );
        verify(&key, "m", "1000", &sig, b"", 1300, 300).unwrap();
    }

    #[test]
    fn malformed_inputs_are_typed_errors() {
        assert!(SigningKey::from_secret("whsec_***").is_err());
        assert!(SigningKey::from_secret("whsec_").is_err());
        let key = SigningKey::from_bytes(*b"k");
        assert!(matches!(
            verify(&key, "m", "x", "v1,a", b"", 0, 300),
            Err(Error::MalformedHeader { .. })
        ));
        assert!(matches!(
            verify(&key, "m", "0", "nocomma", b"", 0, 300),
            Err(Error::MalformedHeader { .. })
        ));
        assert!(matches!(
            verify(&key, "m", "0", "v2,abc", b"", 0, 300),
            Err(Error::MalformedHeader { .. })
        ));
        assert!(matches!(
            verify(&key, "m", "0", "", b"", 0, 300),
            Err(Error::MalformedHeader { .. })
        ));
        assert!(format!("{key:?}").contains("redacted"));
    }
}
