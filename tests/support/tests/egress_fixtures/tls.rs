//! The TLS receiver, driven by a tokio-rustls client with and without a
//! client certificate.

use std::sync::Arc;

use bytes::Bytes;
use changewire_test_support::egress::{ClientAuth, TlsReceiver};
use changewire_test_support::eventually;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::net::TcpStream;

use super::WAIT;

/// POSTs to the TLS receiver with this client certificate (if any).
async fn tls_post(
    server: &TlsReceiver,
    name: &str,
    cert: Option<(String, String)>,
) -> Result<(u16, String), String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(server.ca_pem().as_bytes()).unwrap())
        .unwrap();
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = match cert {
        Some((cert, key)) => {
            let chain = vec![CertificateDer::from_pem_slice(cert.as_bytes()).unwrap()];
            let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap();
            builder.with_client_auth_cert(chain, key).unwrap()
        }
        None => builder.with_no_client_auth(),
    };
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(server.addr()).await.unwrap();
    let name = ServerName::try_from(name.to_string()).unwrap();
    let tls = connector
        .connect(name, tcp)
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .map_err(|e| format!("http handshake: {e}"))?;
    tokio::spawn(conn);
    let request = hyper::Request::post(server.url())
        .header("host", "localhost")
        .body(Full::new(Bytes::from_static(b"{\"n\":1}")))
        .unwrap();
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("request: {e}"))?;
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("body: {e}"))?;
    Ok((
        status,
        String::from_utf8_lossy(&body.to_bytes()).into_owned(),
    ))
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_receiver_requires_a_client_certificate_from_its_ca() {
    let server = TlsReceiver::start(ClientAuth::Required).await;
    assert_eq!(server.url(), format!("https://{}/hook", server.addr()));
    assert!(server.client_key_pem().contains("BEGIN PRIVATE KEY"));
    let good = Some((server.client_cert_pem(), server.client_key_pem()));
    assert_eq!(
        tls_post(&server, "127.0.0.1", good.clone()).await,
        Ok((200, "ok".into()))
    );
    assert_eq!(
        tls_post(&server, "localhost", good).await,
        Ok((200, "ok".into()))
    );
    let got = server.wait_for(2, WAIT).await;
    assert_eq!(got[0].path, "/hook");
    assert_eq!(got[0].json()["n"], 1);
    assert_eq!(server.handshakes_failed(), 0);

    let stranger = Some((server.stranger_cert_pem(), server.stranger_key_pem()));
    let failed = tls_post(&server, "localhost", stranger).await;
    assert!(failed.is_err(), "stranger accepted: {failed:?}");
    eventually("a failed handshake", WAIT, || async {
        (server.handshakes_failed() >= 1).then_some(())
    })
    .await;
    let failed = tls_post(&server, "localhost", None).await;
    assert!(failed.is_err(), "no certificate accepted: {failed:?}");
    eventually("two failed handshakes", WAIT, || async {
        (server.handshakes_failed() >= 2).then_some(())
    })
    .await;
    assert_eq!(server.count(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_receiver_without_client_auth() {
    let server = TlsReceiver::start(ClientAuth::None).await;
    assert_eq!(
        tls_post(&server, "127.0.0.1", None).await,
        Ok((200, "ok".into()))
    );
    assert_eq!(server.wait_for(1, WAIT).await.len(), 1);
    // A name the certificate does not carry: the client rejects it.
    assert!(tls_post(&server, "example.test", None).await.is_err());
    eventually("a failed handshake", WAIT, || async {
        (server.handshakes_failed() >= 1).then_some(())
    })
    .await;
}
