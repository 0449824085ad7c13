//! A webhook receiver on loopback that records what it gets.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use tokio::sync::Notify;

/// One request as received.
#[derive(Debug, Clone)]
pub struct Received {
    /// Path and query.
    pub path: String,
    /// Headers (lowercase names).
    pub headers: Vec<(String, String)>,
    /// Raw body.
    pub body: Bytes,
    /// When it arrived.
    pub at: Instant,
}

impl Received {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

#[derive(Default)]
struct Shared {
    received: Mutex<Vec<Received>>,
    status: AtomicU16,
    delay_ms: AtomicU64,
    hang: AtomicBool,
    retry_after: Mutex<Option<String>>,
    arrived: Notify,
}

/// The receiver; stops when dropped.
pub struct TestReceiver {
    /// Its address.
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    // Decide the answer before recording the request, so a test that reacts
    // to this request's arrival cannot change the answer to it.
    let status =
        StatusCode::from_u16(shared.status.load(Ordering::SeqCst)).unwrap_or(StatusCode::OK);
    let retry_after = shared.retry_after.lock().ok().and_then(|r| r.clone());
    let hang = shared.hang.load(Ordering::SeqCst);
    let delay = shared.delay_ms.load(Ordering::SeqCst);
    let request = record(&uri, &headers, body);
    if let Ok(mut r) = shared.received.lock() {
        r.push(request);
    }
    shared.arrived.notify_waiters();
    if hang {
        std::future::pending::<()>().await;
    }
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let mut response = (status, "received").into_response();
    if let Some(ra) = retry_after
        && let Ok(v) = ra.parse()
    {
        response.headers_mut().insert("retry-after", v);
    }
    response
}

impl TestReceiver {
    /// Starts on 127.0.0.1 with status 200.
    pub async fn start() -> TestReceiver {
        let shared = Arc::new(Shared {
            status: AtomicU16::new(200),
            ..Default::default()
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        TestReceiver { addr, shared, task }
    }

    /// `http://127.0.0.1:PORT/hook`.
    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// Answers with this status from now on.
    pub fn set_status(&self, status: u16) {
        self.shared.status.store(status, Ordering::SeqCst);
    }

    /// Waits this long before answering.
    pub fn set_delay(&self, delay: Duration) {
        self.shared.delay_ms.store(
            u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            Ordering::SeqCst,
        );
    }

    /// Never answers (until set back).
    pub fn set_hang(&self, hang: bool) {
        self.shared.hang.store(hang, Ordering::SeqCst);
    }

    /// Sends `Retry-After` with every answer.
    pub fn set_retry_after(&self, value: Option<&str>) {
        if let Ok(mut r) = self.shared.retry_after.lock() {
            *r = value.map(str::to_string);
        }
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Received> {
        self.shared
            .received
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default()
    }

    /// How many requests arrived.
    pub fn count(&self) -> usize {
        self.shared.received.lock().map(|r| r.len()).unwrap_or(0)
    }

    /// Waits until at least `n` requests arrived; panics after `timeout`.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.shared.arrived.notified();
            if self.count() >= n {
                return self.received();
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            assert!(
                !left.is_zero(),
                "receiver got {} of {n} requests within {timeout:?}",
                self.count()
            );
            let _ = tokio::time::timeout(left.min(Duration::from_millis(100)), notified).await;
        }
    }
}

impl Drop for TestReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A request as recorded by the fixtures that receive webhooks.
pub(crate) fn record(uri: &axum::http::Uri, headers: &HeaderMap, body: Bytes) -> Received {
    Received {
        path: uri
            .path_and_query()
            .map(|p| p.to_string())
            .unwrap_or_default(),
        headers: headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body,
        at: Instant::now(),
    }
}
