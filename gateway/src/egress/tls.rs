//! A receiver's own TLS settings: a client certificate and key it requires
//! (mutual TLS), and a CA bundle to trust for it instead of the public
//! roots (a receiver inside the company's network with a private CA).

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};

/// A TLS setting that cannot be used, by API field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub(crate) struct TlsSettingError {
    /// The field, as the API names it.
    pub(crate) field: &'static str,
    /// Why.
    pub(crate) reason: String,
}

/// The API field of the client certificate.
pub(crate) const CERTIFICATE_FIELD: &str = "clientCertificate.certificatePem";
/// The API field of its key.
pub(crate) const KEY_FIELD: &str = "clientCertificate.privateKeyPem";
/// The API field of the CA bundle.
pub(crate) const CA_FIELD: &str = "caBundlePem";

fn error(field: &'static str, reason: impl Into<String>) -> TlsSettingError {
    TlsSettingError {
        field,
        reason: reason.into(),
    }
}

fn certificates(
    field: &'static str,
    pem: &str,
) -> Result<Vec<CertificateDer<'static>>, TlsSettingError> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| error(field, format!("is not valid PEM ({e})")))?;
    if certs.is_empty() {
        return Err(error(field, "holds no `-----BEGIN CERTIFICATE-----` block"));
    }
    Ok(certs)
}

/// The rustls client configuration for a receiver with these settings
/// (PEM text as given), or which field is wrong and why: the certificate
/// chain and key must parse and belong together, and every certificate
/// of the bundle must be usable as a trust anchor.
pub(crate) fn client_config(
    identity: Option<(&str, &str)>,
    ca_bundle: Option<&str>,
) -> Result<ClientConfig, TlsSettingError> {
    let roots = match ca_bundle {
        None => RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        },
        Some(pem) => {
            let mut roots = RootCertStore::empty();
            for (i, cert) in certificates(CA_FIELD, pem)?.into_iter().enumerate() {
                roots.add(cert).map_err(|e| {
                    error(
                        CA_FIELD,
                        format!("certificate {} cannot be trusted ({e})", i + 1),
                    )
                })?;
            }
            roots
        }
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| error(CA_FIELD, e.to_string()))?
        .with_root_certificates(roots);
    match identity {
        None => Ok(builder.with_no_client_auth()),
        Some((cert_pem, key_pem)) => {
            let chain = certificates(CERTIFICATE_FIELD, cert_pem)?;
            let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|e| {
                error(
                    KEY_FIELD,
                    format!("holds no usable PEM private key (PKCS#8, PKCS#1 or SEC1): {e}"),
                )
            })?;
            builder.with_client_auth_cert(chain, key).map_err(|e| {
                error(
                    KEY_FIELD,
                    format!("cannot sign for the certificate ({e}); is it the certificate's key?"),
                )
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_pem_names_the_field() {
        let err = client_config(Some(("nope", "nope")), None).unwrap_err();
        assert_eq!(err.field, CERTIFICATE_FIELD, "{err}");
        assert!(err.reason.contains("BEGIN CERTIFICATE"), "{err}");
        let err = client_config(None, Some("")).unwrap_err();
        assert_eq!(err.field, CA_FIELD, "{err}");
        let garbage = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        let err = client_config(None, Some(garbage)).unwrap_err();
        assert_eq!(err.field, CA_FIELD, "{err}");
        assert!(err.reason.contains("cannot be trusted"), "{err}");
        assert!(client_config(None, None).is_ok());
    }
}
