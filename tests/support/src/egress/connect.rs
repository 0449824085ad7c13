//! An HTTP/1.1 `CONNECT` proxy on loopback that records where it was asked
//! to tunnel to.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{bind_loopback, spawn_accept_loop, userinfo_escape};

/// The longest request head read before giving up.
const HEAD_LIMIT: usize = 8 * 1024;

#[derive(Default)]
struct Shared {
    /// `user:pass` when authentication is required.
    credentials: Option<String>,
    targets: Mutex<Vec<String>>,
    connections: Arc<AtomicUsize>,
    refuse: AtomicBool,
}

/// An HTTP/1.1 `CONNECT` proxy on 127.0.0.1; stops (with its tunnels) when
/// dropped.
///
/// Each connection carries one request: the proxy reads the head (up to
/// 8 KiB, to the blank line) and answers, in this order, 400 to a head it
/// cannot parse, 407 (`Proxy-Authenticate: Basic realm="test"`) when
/// credentials are required and `Proxy-Authorization` does not carry them,
/// 405 to any method but `CONNECT`, 403 while [`refuse_targets`] is on.
/// Otherwise the target is recorded, connected to (502 if that fails) and
/// answered `200 Connection Established`, and bytes are copied both ways.
///
/// [`refuse_targets`]: HttpConnectProxy::refuse_targets
pub struct HttpConnectProxy {
    addr: SocketAddr,
    userinfo: Option<String>,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl HttpConnectProxy {
    /// Starts a proxy that asks for no credentials.
    pub async fn start() -> HttpConnectProxy {
        Self::spawn(None).await
    }

    /// Starts a proxy that requires `Proxy-Authorization: Basic` with these
    /// credentials.
    pub async fn start_with_auth(user: &str, pass: &str) -> HttpConnectProxy {
        Self::spawn(Some((user, pass))).await
    }

    async fn spawn(auth: Option<(&str, &str)>) -> HttpConnectProxy {
        let shared = Arc::new(Shared {
            credentials: auth.map(|(u, p)| format!("{u}:{p}")),
            ..Default::default()
        });
        let listener = bind_loopback().await;
        let addr = listener.local_addr().expect("local addr");
        let state = shared.clone();
        let task = spawn_accept_loop(listener, shared.connections.clone(), move |stream| {
            serve(stream, state.clone())
        });
        HttpConnectProxy {
            addr,
            userinfo: auth.map(|(u, p)| format!("{}:{}@", userinfo_escape(u), userinfo_escape(p))),
            shared,
            task,
        }
    }

    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, or `http://user:pass@127.0.0.1:PORT` (both
    /// percent-encoded) when it requires credentials.
    pub fn url(&self) -> String {
        format!(
            "http://{}{}",
            self.userinfo.as_deref().unwrap_or(""),
            self.addr
        )
    }

    /// The `host:port` of every `CONNECT` accepted (authenticated and not
    /// refused), in order, exactly as requested; recorded before connecting,
    /// so a target answered 502 is in the list too.
    pub fn targets(&self) -> Vec<String> {
        self.shared
            .targets
            .lock()
            .map(|t| t.clone())
            .unwrap_or_default()
    }

    /// How many TCP connections it accepted (counted on accept).
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// While on, answers 403 to every `CONNECT`.
    pub fn refuse_targets(&self, refuse: bool) {
        self.shared.refuse.store(refuse, Ordering::SeqCst);
    }
}

impl Drop for HttpConnectProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads up to the end of the head; returns the head and what followed it.
async fn read_head(stream: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buf.split_off(end + 4);
            return String::from_utf8(buf).ok().map(|head| (head, rest));
        }
        if buf.len() >= HEAD_LIMIT {
            return None;
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Whether a `Proxy-Authorization` value carries these `user:pass`.
fn authorized(value: Option<&str>, credentials: &str) -> bool {
    let Some((scheme, token)) = value.and_then(|v| v.trim().split_once(' ')) else {
        return false;
    };
    scheme.eq_ignore_ascii_case("basic")
        && BASE64
            .decode(token.trim())
            .is_ok_and(|decoded| decoded == credentials.as_bytes())
}

async fn answer(stream: &mut TcpStream, status: &str, extra: &str) {
    let response =
        format!("HTTP/1.1 {status}\r\n{extra}Content-Length: 0\r\nConnection: close\r\n\r\n");
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

async fn serve(mut stream: TcpStream, shared: Arc<Shared>) {
    let Some((head, rest)) = read_head(&mut stream).await else {
        return answer(&mut stream, "400 Bad Request", "").await;
    };
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(_version)) = (parts.next(), parts.next(), parts.next())
    else {
        return answer(&mut stream, "400 Bad Request", "").await;
    };
    let proxy_authorization = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("proxy-authorization"))
        .map(|(_, value)| value.trim());
    if let Some(credentials) = &shared.credentials
        && !authorized(proxy_authorization, credentials)
    {
        let challenge = "Proxy-Authenticate: Basic realm=\"test\"\r\n";
        return answer(&mut stream, "407 Proxy Authentication Required", challenge).await;
    }
    if method != "CONNECT" {
        return answer(&mut stream, "405 Method Not Allowed", "Allow: CONNECT\r\n").await;
    }
    if shared.refuse.load(Ordering::SeqCst) {
        return answer(&mut stream, "403 Forbidden", "").await;
    }
    if let Ok(mut targets) = shared.targets.lock() {
        targets.push(target.to_string());
    }
    let Ok(mut upstream) = TcpStream::connect(target).await else {
        return answer(&mut stream, "502 Bad Gateway", "").await;
    };
    let established = b"HTTP/1.1 200 Connection Established\r\n\r\n";
    if stream.write_all(established).await.is_err()
        || (!rest.is_empty() && upstream.write_all(&rest).await.is_err())
    {
        return;
    }
    let _ = tokio::io::copy_bidirectional(&mut stream, &mut upstream).await;
}
