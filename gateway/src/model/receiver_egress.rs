//! How a receiver wants to be reached beyond its URL: a client certificate
//! (mutual TLS), a CA bundle to trust for it, OAuth2 client credentials,
//! and whether it gets a W3C `traceparent` header. Secrets (the key, the client secret, and the certificate
//! too: it names the client) are sealed like the shared secret and never
//! read back.

use super::validate;
use super::{Invalid, ReceiverRules};
use crate::egress::tls;

/// The longest PEM text accepted (a certificate chain or a CA bundle).
const MAX_PEM: usize = 256 * 1024;
/// The longest OAuth2 client id, secret or scope.
const MAX_OAUTH_TEXT: usize = 1024;

/// A receiver's egress settings as stored (secrets sealed).
#[derive(Debug, Clone, Default, PartialEq, sqlx::FromRow)]
pub struct ReceiverEgressSettings {
    /// Client certificate chain (PEM), sealed.
    pub tls_client_certificate: Option<String>,
    /// Its private key (PEM), sealed.
    pub tls_client_key: Option<String>,
    /// CAs trusted for this receiver instead of the public roots (PEM).
    pub tls_ca_bundle: Option<String>,
    /// OAuth2 token endpoint.
    pub oauth2_token_url: Option<String>,
    /// OAuth2 client id.
    pub oauth2_client_id: Option<String>,
    /// OAuth2 client secret, sealed.
    pub oauth2_client_secret: Option<String>,
    /// OAuth2 scope asked for.
    pub oauth2_scope: Option<String>,
    /// Send a W3C `traceparent` header naming the attempt's span.
    pub send_traceparent: bool,
}

/// A client certificate and its key, as given (PEM).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClientCertificateSpec {
    /// The certificate, possibly followed by intermediates.
    pub(crate) certificate_pem: String,
    /// The private key (PKCS#8, PKCS#1 or SEC1).
    pub(crate) private_key_pem: String,
}

/// OAuth2 client credentials, as given (the secret in clear until sealed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OAuth2Spec {
    /// Token endpoint URL (the same destination rules as `webhookUri`).
    pub(crate) token_url: String,
    /// Client id.
    pub(crate) client_id: String,
    /// Client secret.
    pub(crate) client_secret: String,
    /// Scope, if any.
    pub(crate) scope: Option<String>,
}

/// Changes asked for: `None` keeps a setting, `Some(None)` removes it.
#[derive(Debug, Clone, Default)]
pub(crate) struct EgressSpec {
    /// Mutual TLS identity.
    pub(crate) client_certificate: Option<Option<ClientCertificateSpec>>,
    /// CA bundle.
    pub(crate) ca_bundle_pem: Option<Option<String>>,
    /// OAuth2 client credentials.
    pub(crate) oauth2: Option<Option<OAuth2Spec>>,
    /// Send `traceparent`.
    pub(crate) send_traceparent: Option<bool>,
}

fn pem(field: &'static str, value: &str) -> Result<String, Invalid> {
    if value.len() > MAX_PEM {
        return Err(Invalid::new(field, "is longer than 256 KiB"));
    }
    Ok(value.trim().to_string())
}

impl EgressSpec {
    /// `current` with these changes, every changed value checked; the
    /// certificate, key and CA bundle are parsed and must work together.
    pub(crate) fn apply(
        self,
        current: &ReceiverEgressSettings,
        rules: &ReceiverRules<'_>,
    ) -> Result<ReceiverEgressSettings, Invalid> {
        let mut s = current.clone();
        if let Some(send) = self.send_traceparent {
            s.send_traceparent = send;
        }
        let tls_invalid = |e: tls::TlsSettingError| Invalid::new(e.field, e.reason);
        if let Some(ca) = self.ca_bundle_pem {
            s.tls_ca_bundle = match ca {
                None => None,
                Some(bundle) => {
                    let bundle = pem(tls::CA_FIELD, &bundle)?;
                    tls::client_config(None, Some(&bundle)).map_err(tls_invalid)?;
                    Some(bundle)
                }
            };
        }
        if let Some(identity) = self.client_certificate {
            (s.tls_client_certificate, s.tls_client_key) = match identity {
                None => (None, None),
                Some(c) => {
                    let cert = pem(tls::CERTIFICATE_FIELD, &c.certificate_pem)?;
                    let key = pem(tls::KEY_FIELD, &c.private_key_pem)?;
                    tls::client_config(Some((&cert, &key)), None).map_err(tls_invalid)?;
                    (
                        Some(rules.secrets.seal(&cert)),
                        Some(rules.secrets.seal(&key)),
                    )
                }
            };
        }
        if let Some(oauth2) = self.oauth2 {
            let o = oauth2.map(|o| oauth2_checked(o, rules)).transpose()?;
            s.oauth2_token_url = o.as_ref().map(|o| o.token_url.clone());
            s.oauth2_client_id = o.as_ref().map(|o| o.client_id.clone());
            s.oauth2_client_secret = o.as_ref().map(|o| rules.secrets.seal(&o.client_secret));
            s.oauth2_scope = o.and_then(|o| o.scope);
        }
        Ok(s)
    }
}

fn oauth2_checked(o: OAuth2Spec, rules: &ReceiverRules<'_>) -> Result<OAuth2Spec, Invalid> {
    let token_url = validate::webhook_uri("oauth2.tokenUrl", &o.token_url, rules.policy)?;
    let client_id = validate::name("oauth2.clientId", &o.client_id, MAX_OAUTH_TEXT)?;
    if o.client_secret.is_empty() {
        return Err(Invalid::new("oauth2.clientSecret", "must not be empty"));
    }
    if o.client_secret.len() > MAX_OAUTH_TEXT || o.client_secret.chars().any(char::is_control) {
        return Err(Invalid::new(
            "oauth2.clientSecret",
            "must be at most 1024 characters without control characters",
        ));
    }
    let scope = match o.scope.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(scope) => Some(validate::name("oauth2.scope", scope, MAX_OAUTH_TEXT)?),
    };
    Ok(OAuth2Spec {
        token_url,
        client_id,
        client_secret: o.client_secret,
        scope,
    })
}
