//! The receiver's egress settings in the API: a client certificate (mutual
//! TLS), a CA bundle, OAuth2 client credentials. Secrets go in and never
//! come out: a receiver shows whether it has a client certificate, its CA
//! bundle (public data) and its OAuth2 settings without the secret.

use async_graphql::{InputObject, MaybeUndefined, SimpleObject};

use crate::model::{ClientCertificateSpec, EgressSpec, OAuth2Spec, ReceiverEgressSettings};

/// A client certificate the receiver requires (mutual TLS).
#[derive(InputObject, Debug, Clone)]
pub(crate) struct ClientCertificateInput {
    /// The certificate (PEM), possibly followed by intermediates. Stored
    /// encrypted; never returned.
    pub(crate) certificate_pem: String,
    /// Its private key (PEM: PKCS#8, PKCS#1 or SEC1). Stored encrypted; never returned.
    pub(crate) private_key_pem: String,
}

/// OAuth2 client credentials: the gateway fetches a token from `tokenUrl`
/// and sends it as `Authorization: Bearer …`.
#[derive(InputObject, Debug, Clone)]
pub(crate) struct OAuth2ClientCredentialsInput {
    /// The token endpoint (the same destination rules as `webhookUri`).
    pub(crate) token_url: String,
    /// Client id.
    pub(crate) client_id: String,
    /// Client secret (stored encrypted; never returned).
    pub(crate) client_secret: String,
    /// Scope to ask for.
    pub(crate) scope: Option<String>,
}

/// A receiver's OAuth2 client-credentials settings (the secret is never shown).
#[derive(SimpleObject, Debug, Clone)]
#[graphql(name = "WebhookReceiverOAuth2")]
pub(crate) struct ReceiverOAuth2 {
    /// The token endpoint.
    pub(crate) token_url: String,
    /// Client id.
    pub(crate) client_id: String,
    /// Scope asked for.
    pub(crate) scope: Option<String>,
}

impl ReceiverOAuth2 {
    /// The stored settings, if OAuth2 is on.
    pub(super) fn of(s: &ReceiverEgressSettings) -> Option<Self> {
        Some(ReceiverOAuth2 {
            token_url: s.oauth2_token_url.clone()?,
            client_id: s.oauth2_client_id.clone()?,
            scope: s.oauth2_scope.clone(),
        })
    }
}

fn certificate(c: &ClientCertificateInput) -> ClientCertificateSpec {
    ClientCertificateSpec {
        certificate_pem: c.certificate_pem.clone(),
        private_key_pem: c.private_key_pem.clone(),
    }
}

fn oauth2(o: &OAuth2ClientCredentialsInput) -> OAuth2Spec {
    OAuth2Spec {
        token_url: o.token_url.clone(),
        client_id: o.client_id.clone(),
        client_secret: o.client_secret.clone(),
        scope: o.scope.clone(),
    }
}

/// A new receiver's egress settings.
pub(super) fn created(
    client_certificate: Option<&ClientCertificateInput>,
    ca_bundle_pem: Option<&String>,
    oauth2_input: Option<&OAuth2ClientCredentialsInput>,
    send_traceparent: Option<bool>,
) -> EgressSpec {
    EgressSpec {
        send_traceparent,
        client_certificate: client_certificate.map(|c| Some(certificate(c))),
        ca_bundle_pem: ca_bundle_pem.map(|c| Some(c.clone())),
        oauth2: oauth2_input.map(|o| Some(oauth2(o))),
    }
}

fn maybe<T, U>(value: &MaybeUndefined<T>, f: impl Fn(&T) -> U) -> Option<Option<U>> {
    match value {
        MaybeUndefined::Undefined => None,
        MaybeUndefined::Null => Some(None),
        MaybeUndefined::Value(v) => Some(Some(f(v))),
    }
}

/// The changes an update asks for (null removes a setting).
pub(super) fn updated(
    client_certificate: &MaybeUndefined<ClientCertificateInput>,
    ca_bundle_pem: &MaybeUndefined<String>,
    oauth2_input: &MaybeUndefined<OAuth2ClientCredentialsInput>,
    send_traceparent: Option<bool>,
) -> EgressSpec {
    EgressSpec {
        send_traceparent,
        client_certificate: maybe(client_certificate, certificate),
        ca_bundle_pem: maybe(ca_bundle_pem, Clone::clone),
        oauth2: maybe(oauth2_input, oauth2),
    }
}
