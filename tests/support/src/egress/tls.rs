//! An HTTPS webhook receiver on loopback, with certificates from a test CA
//! made at start, that may require a client certificate (mutual TLS).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;

use super::{Recorder, bind_loopback, spawn_accept_loop};
use crate::receiver::Received;
use crate::receiver::record;

/// Whether the [`TlsReceiver`] asks for a client certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// A client certificate signed by the test CA is required: a handshake
    /// without one, or with another CA's, fails.
    Required,
    /// No client certificate is asked for.
    None,
}

/// A certificate and its PKCS#8 key, both PEM.
struct Pem {
    cert: String,
    key: String,
}

/// A test CA: its certificate and what signs with it.
struct Ca {
    cert: rcgen::Certificate,
    issuer: Issuer<'static, KeyPair>,
}

fn new_ca(name: &str) -> Ca {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
    ];
    let key = KeyPair::generate().expect("CA key");
    let cert = params.self_signed(&key).expect("self-signed CA");
    Ca {
        cert,
        issuer: Issuer::new(params, key),
    }
}

/// A leaf certificate signed by `ca`, with these SANs and this purpose.
fn new_leaf(
    ca: &Ca,
    name: &str,
    sans: &[&str],
    usage: ExtendedKeyUsagePurpose,
) -> (rcgen::Certificate, KeyPair) {
    let sans: Vec<String> = sans.iter().map(|s| s.to_string()).collect();
    let mut params = CertificateParams::new(sans).expect("leaf params");
    params.distinguished_name.push(DnType::CommonName, name);
    params.use_authority_key_identifier_extension = true;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![usage];
    let key = KeyPair::generate().expect("leaf key");
    let cert = params.signed_by(&key, &ca.issuer).expect("signed leaf");
    (cert, key)
}

struct Shared {
    received: Recorder,
    handshakes_failed: AtomicUsize,
}

/// An HTTPS receiver on 127.0.0.1 that records every request (any method,
/// any path) and answers 200 `ok`; stops (with its connections) when dropped.
///
/// Its certificate, signed by the test CA ([`ca_pem`](TlsReceiver::ca_pem)),
/// has the SANs IP `127.0.0.1` and DNS `localhost`. It speaks HTTP/1.1 and
/// sets no ALPN; TLS 1.2 and 1.3 (ring provider). Note that with TLS 1.3 a
/// client whose certificate the server rejects may only see the failure when
/// it reads the response (the server verifies it after the client finished
/// its side of the handshake).
pub struct TlsReceiver {
    addr: SocketAddr,
    ca: String,
    client: Pem,
    stranger: Pem,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl TlsReceiver {
    /// Makes the certificates and starts.
    pub async fn start(auth: ClientAuth) -> TlsReceiver {
        let ca = new_ca("changewire test CA");
        let (server_cert, server_key) = new_leaf(
            &ca,
            "localhost",
            &["127.0.0.1", "localhost"],
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        let (client_cert, client_key) = new_leaf(
            &ca,
            "changewire test client",
            &[],
            ExtendedKeyUsagePurpose::ClientAuth,
        );
        let other_ca = new_ca("stranger test CA");
        let (stranger_cert, stranger_key) = new_leaf(
            &other_ca,
            "stranger test client",
            &[],
            ExtendedKeyUsagePurpose::ClientAuth,
        );

        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .expect("TLS versions");
        let builder = match auth {
            ClientAuth::Required => {
                let mut roots = rustls::RootCertStore::empty();
                roots.add(ca.cert.der().clone()).expect("CA in root store");
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                        .build()
                        .expect("client verifier");
                builder.with_client_cert_verifier(verifier)
            }
            ClientAuth::None => builder.with_no_client_auth(),
        };
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der()));
        let chain: Vec<CertificateDer<'static>> = vec![server_cert.der().clone()];
        let config = builder
            .with_single_cert(chain, key)
            .expect("server certificate");
        let acceptor = TlsAcceptor::from(Arc::new(config));

        let shared = Arc::new(Shared {
            received: Recorder::default(),
            handshakes_failed: AtomicUsize::new(0),
        });
        let listener = bind_loopback().await;
        let addr = listener.local_addr().expect("local addr");
        let state = shared.clone();
        let connections = Arc::new(AtomicUsize::new(0));
        let task = spawn_accept_loop(listener, connections, move |stream| {
            serve(stream, acceptor.clone(), state.clone())
        });
        TlsReceiver {
            addr,
            ca: ca.cert.pem(),
            client: Pem {
                cert: client_cert.pem(),
                key: client_key.serialize_pem(),
            },
            stranger: Pem {
                cert: stranger_cert.pem(),
                key: stranger_key.serialize_pem(),
            },
            shared,
            task,
        }
    }

    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `https://127.0.0.1:PORT/hook`.
    pub fn url(&self) -> String {
        format!("https://{}/hook", self.addr)
    }

    /// The test CA (PEM) that signed the server's certificate and
    /// [`client_cert_pem`](TlsReceiver::client_cert_pem).
    pub fn ca_pem(&self) -> String {
        self.ca.clone()
    }

    /// A client certificate (PEM, extended key usage `clientAuth`) signed by
    /// the test CA: the server accepts it.
    pub fn client_cert_pem(&self) -> String {
        self.client.cert.clone()
    }

    /// The key of [`client_cert_pem`](TlsReceiver::client_cert_pem) (PKCS#8 PEM).
    pub fn client_key_pem(&self) -> String {
        self.client.key.clone()
    }

    /// A client certificate (PEM) signed by another CA: the server rejects it
    /// in the handshake when it requires one.
    pub fn stranger_cert_pem(&self) -> String {
        self.stranger.cert.clone()
    }

    /// The key of [`stranger_cert_pem`](TlsReceiver::stranger_cert_pem)
    /// (PKCS#8 PEM).
    pub fn stranger_key_pem(&self) -> String {
        self.stranger.key.clone()
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Received> {
        self.shared.received.all()
    }

    /// How many requests arrived.
    pub fn count(&self) -> usize {
        self.shared.received.count()
    }

    /// Waits until at least `n` requests arrived; panics after `timeout`.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        self.shared
            .received
            .wait_for("TLS receiver", n, timeout)
            .await
    }

    /// How many TLS handshakes failed (the server's side: a rejected or
    /// missing client certificate, a client that rejected the server's
    /// certificate, or a connection closed before the handshake ended).
    pub fn handshakes_failed(&self) -> usize {
        self.shared.handshakes_failed.load(Ordering::SeqCst)
    }
}

impl Drop for TlsReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(stream: TcpStream, acceptor: TlsAcceptor, shared: Arc<Shared>) {
    let tls = match acceptor.accept(stream).await {
        Ok(tls) => tls,
        Err(_) => {
            shared.handshakes_failed.fetch_add(1, Ordering::SeqCst);
            return;
        }
    };
    let service = hyper::service::service_fn(move |request| handle(request, shared.clone()));
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(tls), service)
        .await;
}

async fn handle(
    request: Request<Incoming>,
    shared: Arc<Shared>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = request.into_parts();
    let mut response = Response::new(Full::new(Bytes::from_static(b"ok")));
    match body.collect().await {
        Ok(body) => {
            shared
                .received
                .push(record(&parts.uri, &parts.headers, body.to_bytes()));
        }
        Err(_) => *response.status_mut() = StatusCode::BAD_REQUEST,
    }
    Ok(response)
}
