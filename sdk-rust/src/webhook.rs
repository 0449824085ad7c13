//! Verifying a request: the secret, the URL as registered, and the clock.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::event::{WebhookError, parse_event};
use crate::{Error, Event, Headers, Scheme, Secret, VerifyOptions};

/// The receiver's clock, in Unix seconds (0 if the clock is before 1970).
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Verifies one request with the default options and the system clock.
///
/// `url` is the receiver URL exactly as registered with the gateway; `body`
/// the raw body bytes; `headers` anything that implements [`Headers`]
/// (a `Vec<(K, V)>`, a slice of pairs, a `HashMap<String, String>`, or
/// [`HttpHeaders`](crate::HttpHeaders)). Returns the scheme that verified.
///
/// ```
/// let body = br#"{"data": {"id": 1}}"#;
/// let sig = changewire_sdk::ion::sign_body("k", "https://r.test/h", body)?;
/// let headers = [("X-Ion-Signature", sig)];
/// let scheme = changewire_sdk::verify_request("k", "https://r.test/h", body, &headers[..])?;
/// assert_eq!(scheme.as_str(), "ion");
/// # Ok::<(), changewire_sdk::Error>(())
/// ```
pub fn verify_request<H: Headers + ?Sized>(
    secret: &str,
    url: &str,
    body: &[u8],
    headers: &H,
) -> Result<Scheme, Error> {
    changewire_core::verify_request(
        secret,
        url,
        body,
        headers,
        unix_now(),
        &VerifyOptions::default(),
    )
}

/// One receiver's verification settings: its secret, its URL as registered,
/// and the [`VerifyOptions`]. Cheap to clone (shared behind an `Arc`), so it
/// can sit in a web framework's state.
#[derive(Clone)]
pub struct Webhook {
    inner: Arc<Inner>,
}

struct Inner {
    secret: Secret,
    url: String,
    options: VerifyOptions,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("secret", &self.inner.secret)
            .field("url", &self.inner.url)
            .field("options", &self.inner.options)
            .finish()
    }
}

impl Webhook {
    /// A receiver with the given shared secret (`sharedSecret` of the
    /// receiver; a `whsec_…` secret for Standard Webhooks) and URL, exactly as
    /// registered. A `whpk_…` Ed25519 public key in place of the secret
    /// verifies Standard Webhooks `v1a` signatures ([`Scheme::Ed25519`]).
    pub fn new(secret: impl Into<String>, url: impl Into<String>) -> Self {
        Webhook {
            inner: Arc::new(Inner {
                secret: Secret::new(secret),
                url: url.into(),
                options: VerifyOptions::default(),
            }),
        }
    }

    fn with(&self, options: VerifyOptions) -> Self {
        Webhook {
            inner: Arc::new(Inner {
                secret: self.inner.secret.clone(),
                url: self.inner.url.clone(),
                options,
            }),
        }
    }

    /// Accepts only `scheme` (by default Standard Webhooks headers are
    /// preferred when present and `x-ion-signature` is the fallback).
    #[must_use]
    pub fn require(&self, scheme: Scheme) -> Self {
        self.with(VerifyOptions {
            require: Some(scheme),
            ..self.inner.options
        })
    }

    /// How far the Standard Webhooks `webhook-timestamp` may be from the
    /// receiver's clock (default five minutes).
    #[must_use]
    pub fn tolerance(&self, tolerance: Duration) -> Self {
        self.with(VerifyOptions {
            tolerance_secs: tolerance.as_secs(),
            ..self.inner.options
        })
    }

    /// The URL signatures are checked against.
    pub fn url(&self) -> &str {
        &self.inner.url
    }

    /// The options in force.
    pub fn options(&self) -> VerifyOptions {
        self.inner.options
    }

    /// Verifies a request against the system clock; returns the scheme that
    /// verified.
    pub fn verify<H: Headers + ?Sized>(&self, body: &[u8], headers: &H) -> Result<Scheme, Error> {
        self.verify_at(body, headers, unix_now())
    }

    /// Verifies a request as of `now` (Unix seconds).
    pub fn verify_at<H: Headers + ?Sized>(
        &self,
        body: &[u8],
        headers: &H,
        now: i64,
    ) -> Result<Scheme, Error> {
        changewire_core::verify_request(
            self.inner.secret.expose(),
            &self.inner.url,
            body,
            headers,
            now,
            &self.inner.options,
        )
    }

    /// Verifies a request, then parses its body as an [`Event`].
    pub fn verify_event<H: Headers + ?Sized>(
        &self,
        body: &[u8],
        headers: &H,
    ) -> Result<(Scheme, Event), WebhookError> {
        let scheme = self.verify(body, headers)?;
        Ok((scheme, parse_event(body)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ion, standard};

    const BODY: &[u8] = br#"{"event_id": 1, "data": {"id": 7, "new": {"a": 1}}}"#;

    #[test]
    fn options_are_applied_and_the_secret_never_prints() {
        let hook = Webhook::new("k", "https://r.test/h");
        assert_eq!(hook.url(), "https://r.test/h");
        let strict = hook
            .require(Scheme::Standard)
            .tolerance(Duration::from_secs(5));
        assert_eq!(strict.options().require, Some(Scheme::Standard));
        assert_eq!(strict.options().tolerance_secs, 5);
        // The original is unchanged.
        assert_eq!(hook.options(), VerifyOptions::default());
        let shown = format!("{strict:?}");
        assert!(
            shown.contains("redacted") && !shown.contains("\"k\""),
            "{shown}"
        );

        let sig = ion::sign_body("k", "https://r.test/h", BODY).unwrap();
        let headers = vec![("x-ion-signature", sig)];
        assert_eq!(hook.verify(BODY, &headers), Ok(Scheme::Ion));
        assert_eq!(
            strict.verify(BODY, &headers),
            Err(Error::MissingHeader("webhook-signature"))
        );
    }

    #[test]
    fn standard_tolerance_uses_the_given_clock() {
        let secret = "whsec_c2VjcmV0LWtleS1ieXRlcw==";
        let key = standard::SigningKey::from_secret(secret).unwrap();
        let headers = vec![
            ("webhook-id", "m1".to_string()),
            ("webhook-timestamp", "1000".to_string()),
            ("webhook-signature", key.sign("m1", 1000, BODY)),
        ];
        let hook = Webhook::new(secret, "u").tolerance(Duration::from_secs(10));
        assert_eq!(hook.verify_at(BODY, &headers, 1010), Ok(Scheme::Standard));
        assert_eq!(
            hook.verify_at(BODY, &headers, 1011),
            Err(Error::TimestampTooOld {
                age: 11,
                tolerance: 10
            })
        );
        // The real clock is far past 1000 s, so the default verify refuses it.
        assert!(matches!(
            hook.verify(BODY, &headers),
            Err(Error::TimestampTooOld { .. })
        ));
    }

    #[test]
    fn a_public_key_in_place_of_the_secret_verifies_v1a() {
        let signer = standard::Ed25519SigningKey::from_seed([9; 32]);
        let hmac = standard::SigningKey::from_secret("whsec_c2VjcmV0LWtleS1ieXRlcw==").unwrap();
        let signature = format!(
            "{} {}",
            hmac.sign("m1", 1000, BODY),
            signer.sign("m1", 1000, BODY)
        );
        let headers = vec![
            ("webhook-id", "m1".to_string()),
            ("webhook-timestamp", "1000".to_string()),
            ("webhook-signature", signature),
        ];
        let hook = Webhook::new(signer.public_key().to_string(), "u");
        assert_eq!(hook.verify_at(BODY, &headers, 1000), Ok(Scheme::Ed25519));
        assert_eq!(
            hook.verify_at(b"{}", &headers, 1000),
            Err(Error::SignatureMismatch)
        );
        assert!(matches!(
            hook.require(Scheme::Standard)
                .verify_at(BODY, &headers, 1000),
            Err(Error::InvalidSecret(_))
        ));
        let hmac_hook = Webhook::new("whsec_c2VjcmV0LWtleS1ieXRlcw==", "u");
        assert_eq!(
            hmac_hook.verify_at(BODY, &headers, 1000),
            Ok(Scheme::Standard)
        );
    }

    #[test]
    fn unix_now_is_the_present() {
        // 2024-01-01 and 2200-01-01: a clock outside that range is broken.
        let now = unix_now();
        assert!((1_704_067_200..7_258_118_400).contains(&now), "{now}");
    }
}
