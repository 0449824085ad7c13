//! Standard Webhooks' asymmetric signatures: `v1a`, Ed25519 (RFC 8032).
//!
//! `webhook-signature: v1a,<base64(ed25519_sign(seed, "{id}.{timestamp}.{body}"))>`.
//! The sender keeps the secret signing key, `whsk_` + base64 of the 32-byte
//! seed; receivers hold only the public key, `whpk_` + base64 of its 32
//! bytes, so a receiver cannot forge deliveries to other receivers. The
//! header may carry `v1,` (HMAC) entries beside `v1a,` ones, and two `v1a,`
//! entries during a key rotation; any `v1a` entry that verifies passes.
//! The timestamp rules are those of [`verify`](super::verify).

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};

use super::{HEADER_SIGNATURE, check_timestamp, parse_timestamp};
use crate::error::Error;

/// The prefix of an Ed25519 signing key (`whsk_` + base64 of the 32-byte seed).
pub const SIGNING_KEY_PREFIX: &str = "whsk_";
/// The prefix of an Ed25519 public key (`whpk_` + base64 of its 32 bytes).
pub const PUBLIC_KEY_PREFIX: &str = "whpk_";
/// The signature version of Ed25519 entries in `webhook-signature`.
pub const ASYMMETRIC_VERSION: &str = "v1a";

/// An Ed25519 signing key (the sender's secret). `Debug` prints only the
/// public key; the seed is zeroed when the key is dropped.
#[derive(Clone)]
pub struct Ed25519SigningKey(SigningKey);

/// An Ed25519 public key (what a receiver holds), written `whpk_<base64>`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Ed25519PublicKey(VerifyingKey);

/// `{id}.{timestamp}.{body}`: the bytes both schemes sign. Ed25519 hashes
/// the message twice, so it needs it in one piece.
fn signed_content(msg_id: &str, timestamp: i64, body: &[u8]) -> Vec<u8> {
    let timestamp = timestamp.to_string();
    let mut content = Vec::with_capacity(msg_id.len() + timestamp.len() + body.len() + 2);
    content.extend_from_slice(msg_id.as_bytes());
    content.push(b'.');
    content.extend_from_slice(timestamp.as_bytes());
    content.push(b'.');
    content.extend_from_slice(body);
    content
}

/// Decodes `<prefix><base64 of exactly N bytes>`, or `None`.
fn decode_prefixed<const N: usize>(text: &str, prefix: &str) -> Option<[u8; N]> {
    let encoded = text.strip_prefix(prefix)?;
    BASE64.decode(encoded).ok()?.try_into().ok()
}

impl Ed25519SigningKey {
    /// The key whose 32-byte seed (RFC 8032's private key) is `seed`. The
    /// caller generates the seed; the core has no randomness.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Ed25519SigningKey(SigningKey::from_bytes(&seed))
    }

    /// Reads `whsk_<base64 of the 32-byte seed>`, as
    /// [`to_secret_string`](Self::to_secret_string) writes it.
    pub fn parse(s: &str) -> Result<Self, Error> {
        let seed = decode_prefixed::<32>(s, SIGNING_KEY_PREFIX).ok_or(Error::InvalidSecret(
            "an Ed25519 signing key is `whsk_` followed by base64 of its 32-byte seed",
        ))?;
        Ok(Self::from_seed(seed))
    }

    /// The key as `whsk_<base64>`: a secret, to store as one.
    pub fn to_secret_string(&self) -> String {
        format!("{SIGNING_KEY_PREFIX}{}", BASE64.encode(self.0.to_bytes()))
    }

    /// The public key receivers verify with.
    pub fn public_key(&self) -> Ed25519PublicKey {
        Ed25519PublicKey(self.0.verifying_key())
    }

    /// The `v1a,<base64>` signature of one message: Ed25519 over
    /// `{msg_id}.{timestamp}.{body}`.
    pub fn sign(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
        let signature = self.0.sign(&signed_content(msg_id, timestamp, body));
        format!(
            "{ASYMMETRIC_VERSION},{}",
            BASE64.encode(signature.to_bytes())
        )
    }
}

impl fmt::Debug for Ed25519SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Ed25519SigningKey({}, seed [redacted])",
            self.public_key()
        )
    }
}

impl Ed25519PublicKey {
    /// Reads `whpk_<base64 of the 32-byte public key>`. Refuses bytes that
    /// are not a point of the curve, and small-order points (weak keys,
    /// which accept signatures anyone can make).
    pub fn parse(s: &str) -> Result<Self, Error> {
        let bytes = decode_prefixed::<32>(s, PUBLIC_KEY_PREFIX).ok_or(Error::InvalidSecret(
            "an Ed25519 public key is `whpk_` followed by base64 of its 32 bytes",
        ))?;
        let key = VerifyingKey::from_bytes(&bytes).map_err(|_| {
            Error::InvalidSecret("the `whpk_` public key is not a point of the Ed25519 curve")
        })?;
        if key.is_weak() {
            return Err(Error::InvalidSecret(
                "the `whpk_` public key is a small-order point, which accepts forged signatures",
            ));
        }
        Ok(Ed25519PublicKey(key))
    }

    /// The public key's 32 bytes.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// Verifies one message: timestamp within `tolerance_secs` of `now` (as
    /// [`verify`](super::verify) checks it), and any `v1a` signature of
    /// `signature_header` made by this key's signing key. `v1` (HMAC) and
    /// other entries are ignored; a header without any `v1a` entry is a
    /// [`Error::MalformedHeader`].
    pub fn verify(
        &self,
        msg_id: &str,
        timestamp_header: &str,
        signature_header: &str,
        body: &[u8],
        now: i64,
        tolerance_secs: u64,
    ) -> Result<(), Error> {
        let timestamp = parse_timestamp(timestamp_header)?;
        check_timestamp(timestamp, now, tolerance_secs)?;
        let mut saw_v1a = false;
        let mut saw_well_formed = false;
        let mut content = None;
        for entry in signature_header.split(' ').filter(|e| !e.is_empty()) {
            let Some((version, encoded)) = entry.split_once(',') else {
                return Err(Error::MalformedHeader {
                    header: HEADER_SIGNATURE,
                    reason: "each signature is `<version>,<base64>`",
                });
            };
            if version != ASYMMETRIC_VERSION {
                continue;
            }
            saw_v1a = true;
            // Only the exact (padded, canonical) base64 of 64 bytes counts.
            let Some(bytes) = BASE64
                .decode(encoded)
                .ok()
                .and_then(|raw| <[u8; 64]>::try_from(raw).ok())
            else {
                continue;
            };
            saw_well_formed = true;
            let message = content.get_or_insert_with(|| signed_content(msg_id, timestamp, body));
            // Strict: canonical S, no small-order R (no malleable signatures).
            if self
                .0
                .verify_strict(message, &Signature::from_bytes(&bytes))
                .is_ok()
            {
                return Ok(());
            }
        }
        if !saw_v1a {
            return Err(Error::MalformedHeader {
                header: HEADER_SIGNATURE,
                reason: "no `v1a,` signature (a `whpk_` public key verifies only Ed25519 `v1a` signatures)",
            });
        }
        if !saw_well_formed {
            return Err(Error::MalformedHeader {
                header: HEADER_SIGNATURE,
                reason: "a `v1a,` signature is not base64 of 64 bytes",
            });
        }
        Err(Error::SignatureMismatch)
    }
}

impl fmt::Display for Ed25519PublicKey {
    /// Writes `whpk_<base64>`, which [`Ed25519PublicKey::parse`] reads back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PUBLIC_KEY_PREFIX}{}", BASE64.encode(self.0.as_bytes()))
    }
}

impl fmt::Debug for Ed25519PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Ed25519PublicKey({self})")
    }
}

#[cfg(test)]
mod tests;
