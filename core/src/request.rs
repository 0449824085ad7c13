//! Verifying a whole request: pick the scheme from its headers.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, UnknownScheme};
use crate::{ion, standard};

/// Read access to request headers, by lowercase name, case-insensitively.
pub trait Headers {
    /// The value of the first header named `name` (compared case-insensitively).
    fn header(&self, name: &str) -> Option<&str>;
}

impl<K: AsRef<str>, V: AsRef<str>> Headers for [(K, V)] {
    fn header(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(k, _)| k.as_ref().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_ref())
    }
}

impl<K: AsRef<str>, V: AsRef<str>> Headers for Vec<(K, V)> {
    fn header(&self, name: &str) -> Option<&str> {
        self.as_slice().header(name)
    }
}

impl<S: std::hash::BuildHasher> Headers for std::collections::HashMap<String, String, S> {
    fn header(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A signature scheme changewire sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Scheme {
    /// ION's `x-ion-signature` (HMAC-SHA1 over the URL and `data`).
    Ion,
    /// Standard Webhooks' `webhook-signature` (HMAC-SHA256 over id, timestamp and body).
    Standard,
    /// Standard Webhooks' asymmetric `webhook-signature` entries (`v1a`,
    /// Ed25519 over id, timestamp and body), verified with a `whpk_` public key.
    Ed25519,
}

impl Scheme {
    /// Every scheme, in the order help texts and error messages list them.
    pub const ALL: &'static [Scheme] = &[Scheme::Ion, Scheme::Standard, Scheme::Ed25519];

    /// The scheme's name in configuration, the API and the SDKs: `ion`,
    /// `standard` or `ed25519`. [`FromStr`] reads it back (in any ASCII case).
    pub const fn as_str(self) -> &'static str {
        match self {
            Scheme::Ion => "ion",
            Scheme::Standard => "standard",
            Scheme::Ed25519 => "ed25519",
        }
    }
}

impl fmt::Display for Scheme {
    /// Writes [`Scheme::as_str`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl FromStr for Scheme {
    type Err = UnknownScheme;

    /// Reads a scheme's name as [`Scheme::as_str`] writes it, ignoring ASCII
    /// case: `ion`, `ION`, `standard`, `Standard`, `ed25519`, `Ed25519`, …
    ///
    /// ```
    /// use changewire_core::Scheme;
    ///
    /// assert_eq!("ion".parse(), Ok(Scheme::Ion));
    /// assert_eq!("Standard".parse(), Ok(Scheme::Standard));
    /// assert_eq!("ED25519".parse(), Ok(Scheme::Ed25519));
    /// let err = "hmac".parse::<Scheme>().unwrap_err();
    /// assert_eq!(
    ///     err.to_string(),
    ///     "unknown signature scheme `hmac`; expected `ion`, `standard` or `ed25519`"
    /// );
    /// ```
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Scheme::ALL
            .iter()
            .copied()
            .find(|scheme| scheme.as_str().eq_ignore_ascii_case(name))
            .ok_or_else(|| UnknownScheme::new(name))
    }
}

/// How [`verify_request`] decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifyOptions {
    /// Accept only this scheme; `None` prefers Standard Webhooks when its
    /// headers are present (it covers the whole body and stops replays) and
    /// falls back to `x-ion-signature`. A `whpk_` public key always means
    /// [`Scheme::Ed25519`], and that scheme needs one.
    pub require: Option<Scheme>,
    /// Standard Webhooks timestamp tolerance, in seconds.
    pub tolerance_secs: u64,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions {
            require: None,
            tolerance_secs: standard::DEFAULT_TOLERANCE_SECS,
        }
    }
}

/// Verifies a request as received: the URL exactly as registered, the raw
/// body bytes, the headers, and the receiver's clock (`now`, Unix seconds).
///
/// Returns the scheme that verified. For the ION scheme, both
/// `x-ion-signature` and, during a secret rotation, `x-ion-signature-next`
/// are tried, so one secret verifies before and after a rotation.
///
/// A `secret` that starts with `whpk_` is an Ed25519 public key: the
/// Standard Webhooks headers are then checked for a `v1a` signature
/// ([`standard::Ed25519PublicKey::verify`]) and the result is
/// [`Scheme::Ed25519`].
pub fn verify_request<H: Headers + ?Sized>(
    secret: &str,
    url: &str,
    body: &[u8],
    headers: &H,
    now: i64,
    options: &VerifyOptions,
) -> Result<Scheme, Error> {
    if secret.starts_with(standard::PUBLIC_KEY_PREFIX) {
        return verify_ed25519(secret, body, headers, now, options);
    }
    let standard_present = headers.header(standard::HEADER_SIGNATURE).is_some();
    let use_standard = match options.require {
        Some(Scheme::Ed25519) => {
            return Err(Error::InvalidSecret(
                "the `ed25519` scheme verifies with a `whpk_` public key",
            ));
        }
        Some(Scheme::Standard) => true,
        Some(Scheme::Ion) => false,
        None => standard_present,
    };
    if use_standard {
        let (msg_id, timestamp, signature) = standard_headers(headers)?;
        let key = standard::SigningKey::from_secret(secret)?;
        standard::verify(
            &key,
            msg_id,
            timestamp,
            signature,
            body,
            now,
            options.tolerance_secs,
        )?;
        return Ok(Scheme::Standard);
    }
    let primary = headers
        .header(ion::HEADER)
        .ok_or(Error::MissingHeader(ion::HEADER))?;
    let expected = ion::expected_for_body(secret, url, body)?;
    let expected = expected.as_str();
    let mut matched = ion::constant_time_eq(expected, primary.trim());
    if let Some(next) = headers.header(ion::HEADER_NEXT) {
        matched |= ion::constant_time_eq(expected, next.trim());
    }
    if matched {
        Ok(Scheme::Ion)
    } else {
        Err(Error::SignatureMismatch)
    }
}

/// `webhook-id`, `webhook-timestamp` and `webhook-signature`, or the first
/// one missing (the signature is looked for first).
fn standard_headers<H: Headers + ?Sized>(headers: &H) -> Result<(&str, &str, &str), Error> {
    let signature = headers
        .header(standard::HEADER_SIGNATURE)
        .ok_or(Error::MissingHeader(standard::HEADER_SIGNATURE))?;
    let msg_id = headers
        .header(standard::HEADER_ID)
        .ok_or(Error::MissingHeader(standard::HEADER_ID))?;
    let timestamp = headers
        .header(standard::HEADER_TIMESTAMP)
        .ok_or(Error::MissingHeader(standard::HEADER_TIMESTAMP))?;
    Ok((msg_id, timestamp, signature))
}

/// [`verify_request`] with a `whpk_` public key.
fn verify_ed25519<H: Headers + ?Sized>(
    public_key: &str,
    body: &[u8],
    headers: &H,
    now: i64,
    options: &VerifyOptions,
) -> Result<Scheme, Error> {
    if matches!(options.require, Some(scheme) if scheme != Scheme::Ed25519) {
        return Err(Error::InvalidSecret(
            "a `whpk_` public key verifies only the `ed25519` scheme (Standard Webhooks `v1a`)",
        ));
    }
    let key = standard::Ed25519PublicKey::parse(public_key)?;
    let (msg_id, timestamp, signature) = standard_headers(headers)?;
    key.verify(
        msg_id,
        timestamp,
        signature,
        body,
        now,
        options.tolerance_secs,
    )?;
    Ok(Scheme::Ed25519)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = br#"{"event_id": 1, "data": {"id": 7, "new": {"a": 1}}}"#;

    #[test]
    fn all_lists_every_scheme_once_in_declaration_order() {
        // Exhaustive on purpose: a new variant does not compile here until it
        // is given a place, and then the assertions below want it in `ALL`.
        let place = |scheme: Scheme| match scheme {
            Scheme::Ion => 0,
            Scheme::Standard => 1,
            Scheme::Ed25519 => 2,
        };
        assert_eq!(Scheme::ALL.len(), 3);
        for (i, scheme) in Scheme::ALL.iter().enumerate() {
            assert_eq!(place(*scheme), i, "{scheme:?}");
        }
    }

    #[test]
    fn every_scheme_round_trips_through_its_name_and_display() {
        for &scheme in Scheme::ALL {
            let name = scheme.as_str();
            assert_eq!(scheme.to_string(), name);
            assert_eq!(name.parse::<Scheme>(), Ok(scheme));
            assert_eq!(name.to_ascii_uppercase().parse::<Scheme>(), Ok(scheme));
        }
        assert_eq!(format!("[{:>5}]", Scheme::Ion), "[  ion]");
    }

    #[test]
    fn scheme_names_are_read_in_any_ascii_case() {
        for (name, scheme) in [
            ("ion", Scheme::Ion),
            ("ION", Scheme::Ion),
            ("Ion", Scheme::Ion),
            ("standard", Scheme::Standard),
            ("Standard", Scheme::Standard),
            ("STANDARD", Scheme::Standard),
            ("ed25519", Scheme::Ed25519),
            ("Ed25519", Scheme::Ed25519),
            ("ED25519", Scheme::Ed25519),
        ] {
            assert_eq!(name.parse(), Ok(scheme), "{name}");
        }
    }

    #[test]
    fn unknown_scheme_names_are_refused_with_the_accepted_ones() {
        for name in [
            "",
            "hmac",
            " ion",
            "ion ",
            "ions",
            "x-ion-signature",
            "İON",
            "ed-25519",
            "v1a",
        ] {
            let err = name.parse::<Scheme>().unwrap_err();
            assert_eq!(err.input(), name);
        }
        let err = "hmac".parse::<Scheme>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown signature scheme `hmac`; expected `ion`, `standard` or `ed25519`"
        );
        // Control characters are escaped, so the message stays on one line.
        let err = "a\nb".parse::<Scheme>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown signature scheme `a\\nb`; expected `ion`, `standard` or `ed25519`"
        );
    }

    #[test]
    fn ion_header_verifies_and_next_header_covers_rotation() {
        let old = ion::sign_body("old", "https://r.test/h", BODY).unwrap();
        let new = ion::sign_body("new", "https://r.test/h", BODY).unwrap();
        let headers = vec![
            ("X-Ion-Signature", old.as_str()),
            ("x-ion-signature-next", new.as_str()),
        ];
        let opts = VerifyOptions::default();
        assert_eq!(
            verify_request("old", "https://r.test/h", BODY, &headers, 0, &opts),
            Ok(Scheme::Ion)
        );
        assert_eq!(
            verify_request("new", "https://r.test/h", BODY, &headers, 0, &opts),
            Ok(Scheme::Ion)
        );
        assert_eq!(
            verify_request("other", "https://r.test/h", BODY, &headers, 0, &opts),
            Err(Error::SignatureMismatch)
        );
    }

    #[test]
    fn standard_headers_take_precedence() {
        let secret = "whsec_c2VjcmV0LWtleS1ieXRlcw==";
        let key = standard::SigningKey::from_secret(secret).unwrap();
        let sig = key.sign("7", 100, BODY);
        let headers = vec![
            ("webhook-id", "7".to_string()),
            ("webhook-timestamp", "100".to_string()),
            ("webhook-signature", sig),
            ("x-ion-signature", "bogus".to_string()),
        ];
        let opts = VerifyOptions::default();
        assert_eq!(
            verify_request(secret, "u", BODY, &headers, 120, &opts),
            Ok(Scheme::Standard)
        );
        let ion_only = VerifyOptions {
            require: Some(Scheme::Ion),
            ..opts
        };
        assert_eq!(
            verify_request(secret, "u", BODY, &headers, 120, &ion_only),
            Err(Error::SignatureMismatch)
        );
    }

    fn ed25519_headers(
        key: &standard::Ed25519SigningKey,
        hmac: &str,
    ) -> Vec<(&'static str, String)> {
        let hmac = standard::SigningKey::from_secret(hmac).unwrap();
        let signature = format!("{} {}", hmac.sign("7", 100, BODY), key.sign("7", 100, BODY));
        vec![
            ("webhook-id", "7".to_string()),
            ("webhook-timestamp", "100".to_string()),
            ("webhook-signature", signature),
            ("x-ion-signature", "bogus".to_string()),
        ]
    }

    #[test]
    fn a_public_key_verifies_the_v1a_entry_beside_v1() {
        let secret = "whsec_c2VjcmV0LWtleS1ieXRlcw==";
        let key = standard::Ed25519SigningKey::from_seed([3; 32]);
        let public = key.public_key().to_string();
        let headers = ed25519_headers(&key, secret);
        let opts = VerifyOptions::default();
        assert_eq!(
            verify_request(&public, "u", BODY, &headers, 120, &opts),
            Ok(Scheme::Ed25519)
        );
        // The same headers with the HMAC secret: the v1 entry, as before.
        assert_eq!(
            verify_request(secret, "u", BODY, &headers, 120, &opts),
            Ok(Scheme::Standard)
        );
        let ed = VerifyOptions {
            require: Some(Scheme::Ed25519),
            ..opts
        };
        assert_eq!(
            verify_request(&public, "u", BODY, &headers, 120, &ed),
            Ok(Scheme::Ed25519)
        );
        let other = standard::Ed25519SigningKey::from_seed([4; 32]).public_key();
        assert_eq!(
            verify_request(&other.to_string(), "u", BODY, &headers, 120, &opts),
            Err(Error::SignatureMismatch)
        );
        assert!(matches!(
            verify_request(&public, "u", BODY, &headers, 1000, &opts),
            Err(Error::TimestampTooOld { .. })
        ));
    }

    #[test]
    fn a_public_key_and_the_ed25519_scheme_go_together() {
        let secret = "whsec_c2VjcmV0LWtleS1ieXRlcw==";
        let key = standard::Ed25519SigningKey::from_seed([3; 32]);
        let public = key.public_key().to_string();
        let headers = ed25519_headers(&key, secret);
        for require in [Scheme::Ion, Scheme::Standard] {
            let opts = VerifyOptions {
                require: Some(require),
                ..VerifyOptions::default()
            };
            assert!(
                matches!(
                    verify_request(&public, "u", BODY, &headers, 120, &opts),
                    Err(Error::InvalidSecret(reason)) if reason.contains("only the `ed25519` scheme")
                ),
                "{require}"
            );
        }
        let ed = VerifyOptions {
            require: Some(Scheme::Ed25519),
            ..VerifyOptions::default()
        };
        assert!(matches!(
            verify_request(secret, "u", BODY, &headers, 120, &ed),
            Err(Error::InvalidSecret(reason)) if reason.contains("`whpk_` public key")
        ));
        assert!(matches!(
            verify_request("whpk_nope", "u", BODY, &headers, 120, &ed),
            Err(Error::InvalidSecret(_))
        ));
        let none: Vec<(String, String)> = vec![];
        assert_eq!(
            verify_request(&public, "u", BODY, &none, 0, &VerifyOptions::default()),
            Err(Error::MissingHeader("webhook-signature"))
        );
        let hmac_only: Vec<_> = headers
            .iter()
            .map(|(k, v)| match *k {
                "webhook-signature" => (*k, v.split(' ').next().unwrap_or("").to_string()),
                _ => (*k, v.clone()),
            })
            .collect();
        assert!(matches!(
            verify_request(&public, "u", BODY, &hmac_only, 120, &VerifyOptions::default()),
            Err(Error::MalformedHeader { header: "webhook-signature", reason }) if reason.contains("no `v1a,`")
        ));
    }

    #[test]
    fn missing_headers_are_named() {
        let none: Vec<(String, String)> = vec![];
        let opts = VerifyOptions::default();
        assert_eq!(
            verify_request("s", "u", BODY, &none, 0, &opts),
            Err(Error::MissingHeader("x-ion-signature"))
        );
        let std_only = VerifyOptions {
            require: Some(Scheme::Standard),
            ..opts
        };
        assert_eq!(
            verify_request("s", "u", BODY, &none, 0, &std_only),
            Err(Error::MissingHeader("webhook-signature"))
        );
    }
}
