//! How one receiver's requests leave, built at each settings reload: its
//! own client when it has TLS settings (client certificate, CA bundle), and
//! its OAuth2 client credentials. A reload that leaves the TLS settings as
//! they were keeps the client, and with it the open connections.

use super::client::Client;
use super::oauth::OAuthClient;
use crate::egress::tls::{self, TlsSettingError};
use crate::model::ReceiverEgressSettings;
use crate::secrets::{self, SecretBox};

/// A receiver whose settings cannot be used as stored; its deliveries wait.
#[derive(Debug, thiserror::Error)]
pub(crate) enum UnusableReceiver {
    /// A sealed value cannot be opened (the secret key changed?).
    #[error("a secret of it cannot be read: {0}")]
    Secret(#[from] secrets::Error),
    /// Its stored TLS settings no longer build a TLS client.
    #[error("its TLS settings cannot be used: {0}")]
    Tls(#[from] TlsSettingError),
}

/// The TLS settings as stored, to tell whether a reload changed them.
type TlsSource = (Option<String>, Option<String>, Option<String>);

/// A receiver's way out.
#[derive(Debug, Clone, Default)]
pub(crate) struct ReceiverEgress {
    /// Its own client (None: the engine's shared one).
    client: Option<Client>,
    tls_source: Option<TlsSource>,
    /// Its OAuth2 client credentials.
    pub(crate) oauth: Option<OAuthClient>,
    /// Its requests carry `traceparent`.
    pub(crate) send_traceparent: bool,
}

impl ReceiverEgress {
    /// Builds it from the stored settings; `previous` is the receiver as
    /// loaded before (its client is kept when the TLS settings are unchanged).
    pub(crate) fn build(
        s: &ReceiverEgressSettings,
        secrets: &SecretBox,
        shared: &Client,
        previous: Option<&ReceiverEgress>,
    ) -> Result<ReceiverEgress, UnusableReceiver> {
        let source = (
            s.tls_client_certificate.clone(),
            s.tls_client_key.clone(),
            s.tls_ca_bundle.clone(),
        );
        let has_tls = source.0.is_some() || source.2.is_some();
        let client = match previous {
            Some(p) if p.tls_source.as_ref() == Some(&source) => p.client.clone(),
            _ if has_tls => {
                let identity = match (&s.tls_client_certificate, &s.tls_client_key) {
                    (Some(cert), Some(key)) => Some((secrets.open(cert)?, secrets.open(key)?)),
                    _ => None,
                };
                let config = tls::client_config(
                    identity.as_ref().map(|(c, k)| (c.expose(), k.expose())),
                    s.tls_ca_bundle.as_deref(),
                )?;
                Some(shared.with_tls(config))
            }
            _ => None,
        };
        let oauth = match (
            &s.oauth2_token_url,
            &s.oauth2_client_id,
            &s.oauth2_client_secret,
        ) {
            (Some(url), Some(id), Some(secret)) => Some(OAuthClient {
                token_url: url.clone(),
                client_id: id.clone(),
                client_secret: secrets.open(secret)?,
                scope: s.oauth2_scope.clone(),
            }),
            _ => None,
        };
        Ok(ReceiverEgress {
            client,
            tls_source: has_tls.then_some(source),
            oauth,
            send_traceparent: s.send_traceparent,
        })
    }

    /// The client its requests go through.
    pub(crate) fn client<'a>(&'a self, shared: &'a Client) -> &'a Client {
        self.client.as_ref().unwrap_or(shared)
    }
}
