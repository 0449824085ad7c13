//! Loopback fixtures for the gateway's egress features: the proxies a
//! delivery may go through, a receiver that speaks TLS (and may ask for a
//! client certificate), and an OAuth2 token endpoint with a receiver that
//! wants its tokens.
//!
//! * [`HttpConnectProxy`]: an HTTP/1.1 `CONNECT` proxy, optionally with Basic
//!   proxy authentication;
//! * [`Socks5Proxy`]: a SOCKS5 (RFC 1928) proxy, optionally with
//!   username/password authentication (RFC 1929);
//! * [`TlsReceiver`]: an HTTPS receiver with a certificate from a test CA,
//!   optionally requiring a client certificate;
//! * [`TokenEndpoint`]: an OAuth2 client-credentials token endpoint and a
//!   receiver that only accepts the bearer tokens it issued.
//!
//! Every listener binds `127.0.0.1:0`; every fixture stops when dropped
//! (including the connections it is serving, except [`TokenEndpoint`]'s,
//! which are served by `axum::serve` like [`crate::receiver::TestReceiver`]).

mod connect;
mod oauth;
mod socks5;
mod tls;

pub use connect::HttpConnectProxy;
pub use oauth::TokenEndpoint;
pub use socks5::Socks5Proxy;
pub use tls::{ClientAuth, TlsReceiver};

use std::future::Future;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::{JoinHandle, JoinSet};

use crate::receiver::Received;

/// Binds `127.0.0.1:0` (a fixture cannot work without it, so this panics).
pub(crate) async fn bind_loopback() -> TcpListener {
    TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0")
}

/// Accepts connections until aborted, counting each on accept and serving it
/// with `handle` in a task that is aborted with the loop.
pub(crate) fn spawn_accept_loop<F, Fut>(
    listener: TcpListener,
    connections: Arc<AtomicUsize>,
    handle: F,
) -> JoinHandle<()>
where
    F: Fn(TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    tokio::spawn(async move {
        let mut served = JoinSet::new();
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    connections.fetch_add(1, Ordering::SeqCst);
                    served.spawn(handle(stream));
                }
                // Out of descriptors or an aborted handshake: try again soon.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
            while served.try_join_next().is_some() {}
        }
    })
}

/// Percent-encodes a user name or password for the userinfo of a URL.
pub(crate) fn userinfo_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The requests a fixture received, with a way to wait for them.
#[derive(Default)]
pub(crate) struct Recorder {
    list: Mutex<Vec<Received>>,
    arrived: Notify,
}

impl Recorder {
    /// Records a request and wakes the waiters.
    pub(crate) fn push(&self, r: Received) {
        if let Ok(mut list) = self.list.lock() {
            list.push(r);
        }
        self.arrived.notify_waiters();
    }

    /// Everything recorded so far.
    pub(crate) fn all(&self) -> Vec<Received> {
        self.list.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// How many requests were recorded.
    pub(crate) fn count(&self) -> usize {
        self.list.lock().map(|l| l.len()).unwrap_or(0)
    }

    /// Waits until at least `n` requests were recorded; panics after `timeout`.
    pub(crate) async fn wait_for(&self, what: &str, n: usize, timeout: Duration) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.arrived.notified();
            if self.count() >= n {
                return self.all();
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            assert!(
                !left.is_zero(),
                "{what} got {} of {n} requests within {timeout:?}",
                self.count()
            );
            let _ = tokio::time::timeout(left.min(Duration::from_millis(100)), notified).await;
        }
    }
}
