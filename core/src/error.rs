//! The error types of the signing core: [`Error`] for signing and verifying,
//! [`JsonError`] inside it, and [`UnknownScheme`] for a bad scheme name.

use std::fmt;

/// Where and why a body is not JSON that Python's `json.loads` would accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid JSON at byte {offset}: {reason}")]
pub struct JsonError {
    /// Byte offset into the body (after any UTF-8 byte-order mark).
    pub offset: usize,
    /// What the reader expected or refused there.
    pub reason: &'static str,
}

/// A signature scheme name that is none of [`Scheme::ALL`](crate::Scheme::ALL),
/// from [`Scheme`](crate::Scheme)'s `FromStr`.
///
/// It is about an argument, not a request, so it is not an [`Error`] and has
/// no [`Error::code`]: the SDKs raise it as their usual bad-argument error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown signature scheme `{}`; expected {}", .input.escape_debug(), SchemeNames)]
pub struct UnknownScheme {
    input: String,
}

impl UnknownScheme {
    pub(crate) fn new(input: &str) -> Self {
        UnknownScheme {
            input: input.to_owned(),
        }
    }

    /// The name as given.
    pub fn input(&self) -> &str {
        &self.input
    }
}

/// Writes the accepted names: "`ion`, `standard` or `ed25519`".
struct SchemeNames;

impl fmt::Display for SchemeNames {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let all = crate::Scheme::ALL;
        for (i, scheme) in all.iter().enumerate() {
            let separator = match i {
                0 => "",
                _ if i + 1 == all.len() => " or ",
                _ => ", ",
            };
            write!(f, "{separator}`{scheme}`")?;
        }
        Ok(())
    }
}

/// Everything that can go wrong while signing or verifying.
///
/// Verification never panics: every malformed input maps to one of these.
/// `Display` gives a sentence an integrator can act on; the SDKs reuse it as
/// their exception message.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The body is not valid JSON (or not UTF-8).
    #[error("body is not valid JSON: {0}")]
    InvalidJson(#[from] JsonError),
    /// The body is a JSON object without a `data` member.
    #[error("body has no `data` field")]
    MissingData,
    /// The body (or its `data` member) is not a JSON object.
    #[error("`{field}` must be a JSON object, found a JSON {found}")]
    NotAnObject {
        /// `body` or `data`.
        field: &'static str,
        /// The JSON type found instead.
        found: &'static str,
    },
    /// A top-level `data` key or string value holds a lone surrogate; Python's
    /// UTF-8 encoder raises on it, so the reference function cannot sign it.
    #[error("`data.{key}` holds a lone surrogate, which Python cannot encode as UTF-8")]
    Unencodable {
        /// The key (lossily printed).
        key: String,
    },
    /// A header the scheme needs is absent.
    #[error("missing `{0}` header")]
    MissingHeader(&'static str),
    /// A header is present but cannot be read.
    #[error("malformed `{header}` header: {reason}")]
    MalformedHeader {
        /// The header name.
        header: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The secret or key cannot be used (for Standard Webhooks: not base64;
    /// for Ed25519: not a `whpk_` public key of 32 bytes on the curve).
    #[error("invalid secret: {0}")]
    InvalidSecret(&'static str),
    /// The Standard Webhooks timestamp is older than the tolerance allows.
    #[error("timestamp is {age}s old, beyond the {tolerance}s tolerance (replay?)")]
    TimestampTooOld {
        /// How old the timestamp is, in seconds.
        age: u64,
        /// The tolerance, in seconds.
        tolerance: u64,
    },
    /// The Standard Webhooks timestamp is further in the future than the tolerance allows.
    #[error("timestamp is {ahead}s in the future, beyond the {tolerance}s tolerance (clock skew?)")]
    TimestampTooNew {
        /// How far ahead the timestamp is, in seconds.
        ahead: u64,
        /// The tolerance, in seconds.
        tolerance: u64,
    },
    /// Everything was well-formed but no signature matches.
    #[error("signature does not match")]
    SignatureMismatch,
}

impl Error {
    /// A stable, machine-readable name for the kind of error, the same in
    /// every SDK (Python's `WebhookVerificationError.code`, Node's
    /// `err.code`): `invalid_json`, `missing_data`, `not_an_object`,
    /// `unencodable`, `missing_header`, `malformed_header`, `invalid_secret`,
    /// `timestamp_too_old`, `timestamp_too_new` or `signature_mismatch`.
    ///
    /// ```
    /// use changewire_core::Error;
    /// assert_eq!(Error::SignatureMismatch.code(), "signature_mismatch");
    /// assert_eq!(Error::MissingHeader("x-ion-signature").code(), "missing_header");
    /// ```
    pub fn code(&self) -> &'static str {
        match self {
            Error::InvalidJson(_) => "invalid_json",
            Error::MissingData => "missing_data",
            Error::NotAnObject { .. } => "not_an_object",
            Error::Unencodable { .. } => "unencodable",
            Error::MissingHeader(_) => "missing_header",
            Error::MalformedHeader { .. } => "malformed_header",
            Error::InvalidSecret(_) => "invalid_secret",
            Error::TimestampTooOld { .. } => "timestamp_too_old",
            Error::TimestampTooNew { .. } => "timestamp_too_new",
            Error::SignatureMismatch => "signature_mismatch",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_snake_case_names() {
        let all = [
            Error::InvalidJson(JsonError {
                offset: 0,
                reason: "x",
            }),
            Error::MissingData,
            Error::NotAnObject {
                field: "data",
                found: "array",
            },
            Error::Unencodable { key: "k".into() },
            Error::MissingHeader("h"),
            Error::MalformedHeader {
                header: "h",
                reason: "r",
            },
            Error::InvalidSecret("s"),
            Error::TimestampTooOld {
                age: 1,
                tolerance: 0,
            },
            Error::TimestampTooNew {
                ahead: 1,
                tolerance: 0,
            },
            Error::SignatureMismatch,
        ];
        let codes: std::collections::HashSet<_> = all.iter().map(Error::code).collect();
        assert_eq!(codes.len(), all.len());
        assert!(
            codes
                .iter()
                .all(|c| c.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
        );
        assert_eq!(all[7].code(), "timestamp_too_old");
    }
}
