//! Shared secrets: generated with a CSPRNG, encrypted at rest when a key is
//! configured, and hashed API tokens.
//!
//! Stored form: plain text, or `enc:v1:<base64(nonce ‖ ciphertext)>` with
//! XChaCha20-Poly1305 under SHA-256(`CHANGEWIRE_SECRET_KEY`). A store written
//! without a key stays readable after one is set (plain values are read as
//! they are and encrypted on their next write).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use changewire_core::Secret;
use rand::RngCore;
use sha2::{Digest, Sha256};

const PREFIX: &str = "enc:v1:";

/// Errors reading a stored secret.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    /// The value is encrypted but no key is configured.
    #[error("a stored secret is encrypted but CHANGEWIRE_SECRET_KEY is not set")]
    KeyMissing,
    /// The value does not decrypt with the configured key.
    #[error("a stored secret does not decrypt with the configured CHANGEWIRE_SECRET_KEY")]
    WrongKey,
}

/// Encrypts and decrypts stored secrets.
#[derive(Clone)]
pub(crate) struct SecretBox {
    cipher: Option<XChaCha20Poly1305>,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretBox")
            .field("encrypting", &self.cipher.is_some())
            .finish()
    }
}

impl SecretBox {
    /// A box that encrypts with `key` (any string; hashed to 256 bits), or stores plain text.
    pub(crate) fn new(key: Option<&Secret>) -> Self {
        let cipher = key.map(|k| {
            let digest = Sha256::digest(k.expose().as_bytes());
            XChaCha20Poly1305::new(&digest)
        });
        SecretBox { cipher }
    }

    /// Whether this box encrypts (a secret key is configured).
    pub(crate) fn encrypts(&self) -> bool {
        self.cipher.is_some()
    }

    /// The stored form of a secret.
    pub(crate) fn seal(&self, plain: &str) -> String {
        let Some(cipher) = &self.cipher else {
            return plain.to_string();
        };
        let mut nonce = [0u8; 24];
        rand::rng().fill_bytes(&mut nonce);
        match cipher.encrypt(XNonce::from_slice(&nonce), plain.as_bytes()) {
            Ok(ct) => {
                let mut blob = nonce.to_vec();
                blob.extend_from_slice(&ct);
                format!("{PREFIX}{}", BASE64.encode(blob))
            }
            // Encryption of an in-memory buffer cannot fail; keep the value rather than lose it.
            Err(_) => plain.to_string(),
        }
    }

    /// The secret from its stored form.
    pub(crate) fn open(&self, stored: &str) -> Result<Secret, Error> {
        let Some(encoded) = stored.strip_prefix(PREFIX) else {
            return Ok(Secret::new(stored));
        };
        let cipher = self.cipher.as_ref().ok_or(Error::KeyMissing)?;
        let blob = BASE64.decode(encoded).map_err(|_| Error::WrongKey)?;
        if blob.len() < 24 {
            return Err(Error::WrongKey);
        }
        let (nonce, ct) = blob.split_at(24);
        let plain = cipher
            .decrypt(XNonce::from_slice(nonce), ct)
            .map_err(|_| Error::WrongKey)?;
        String::from_utf8(plain)
            .map(Secret::new)
            .map_err(|_| Error::WrongKey)
    }
}

/// How a custom header's value is shown after it was set: never in full
/// (it is often an API key). Long values keep their last four characters,
/// so two keys can be told apart; short ones show only asterisks.
pub(crate) fn mask_header_value(value: &str) -> String {
    let chars: Vec<char> = value.chars().collect();
    if chars.len() < 16 {
        return "********".into();
    }
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("********{tail}")
}

/// A new receiver secret: `whsec_` + base64 of 32 random bytes. One secret
/// serves both schemes: ION uses the whole string as the HMAC key, Standard
/// Webhooks the decoded bytes.
pub(crate) fn generate_receiver_secret() -> Secret {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    Secret::new(format!("whsec_{}", BASE64.encode(bytes)))
}

/// A receiver's Ed25519 signing key as stored: the `whsk_` seed sealed like
/// a shared secret, and its `whpk_` public key in clear.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSigningKey {
    /// The `whsk_…` key, sealed.
    pub sealed: String,
    /// The `whpk_…` public key.
    pub public: String,
}

impl SecretBox {
    /// A new Ed25519 key pair (32 random bytes of seed), the secret half sealed.
    pub(crate) fn new_signing_key(&self) -> StoredSigningKey {
        let mut seed = [0u8; 32];
        rand::rng().fill_bytes(&mut seed);
        let key = changewire_core::standard::Ed25519SigningKey::from_seed(seed);
        StoredSigningKey {
            sealed: self.seal(&key.to_secret_string()),
            public: key.public_key().to_string(),
        }
    }
}

/// A new console token (session, link or CSRF): `prefix` and 32 random
/// bytes, URL-safe base64.
pub(crate) fn generate_url_token(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!(
        "{prefix}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// A new API token: `cw_` + 40 random base62 characters.
pub fn generate_api_token() -> Secret {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    let token: String = (0..40)
        .map(|_| ALPHABET[(rng.next_u32() as usize) % ALPHABET.len()] as char)
        .collect();
    Secret::new(format!("cw_{token}"))
}

/// How a token is stored: hex SHA-256 (tokens are long and random, so a fast
/// hash is enough).
pub fn hash_token(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_secrets_round_trip_and_need_the_key() {
        let key = Secret::new("a very secret key of some length");
        let boxed = SecretBox::new(Some(&key));
        let sealed = boxed.seal("whsec_abc");
        assert!(sealed.starts_with(PREFIX) && !sealed.contains("abc"));
        assert_eq!(boxed.open(&sealed).unwrap().expose(), "whsec_abc");
        assert!(matches!(
            SecretBox::new(None).open(&sealed),
            Err(Error::KeyMissing)
        ));
        let other = SecretBox::new(Some(&Secret::new("another key, also long enough")));
        assert!(matches!(other.open(&sealed), Err(Error::WrongKey)));
        // Plain values stay readable once a key is set.
        assert_eq!(boxed.open("plain").unwrap().expose(), "plain");
    }

    #[test]
    fn header_values_are_never_shown_in_full() {
        assert_eq!(mask_header_value("short-key"), "********");
        assert_eq!(
            mask_header_value("sk_live_0123456789abcdef"),
            "********cdef"
        );
        assert!(!mask_header_value("sk_live_0123456789abcdef").contains("sk_live"));
    }

    #[test]
    fn generated_secrets_are_distinct_and_usable_by_both_schemes() {
        let a = generate_receiver_secret();
        let b = generate_receiver_secret();
        assert_ne!(a, b);
        assert!(changewire_core::standard::SigningKey::from_secret(a.expose()).is_ok());
        let t = generate_api_token();
        assert_eq!(t.expose().len(), 43);
        assert_eq!(hash_token("x").len(), 64);
    }
}
