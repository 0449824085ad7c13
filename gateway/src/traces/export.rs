//! The exporting side: a bounded channel of finished spans, and one task
//! that wakes every 100 ms, takes what arrived and sends it in batches (up
//! to 512 spans per request) as OTLP/HTTP protobuf requests. The task
//! never waits on the channel itself, so queueing a span wakes nothing (no
//! task wake-up and no timer per span). A full channel drops the span and
//! counts it (`changewire_trace_spans_dropped_total`): tracing never slows
//! delivery down.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::sync::mpsc;

use super::wire::Frame;
use crate::config::TelemetrySettings;

/// Spans waiting for the exporter at most (0.4 s of 10,000 deliveries/s,
/// two spans each, against a flush every 0.1 s).
const QUEUE: usize = 8192;
/// Spans per export request at most.
const BATCH: usize = 512;
/// How often the queue is emptied.
const FLUSH_EVERY: Duration = Duration::from_millis(100);
/// How long one export request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The most of a collector's answer that is read (an OTLP answer is a few
/// bytes; an error's first 200 are reported).
const ANSWER_LIMIT: usize = 64 * 1024;

/// Where finished spans go, each as its encoded `Span` message.
#[derive(Clone)]
pub(super) struct Sink {
    tx: mpsc::Sender<Vec<u8>>,
}

impl Sink {
    /// Starts the exporting task (on the current tokio runtime).
    pub(super) fn start(endpoint: &str, settings: &TelemetrySettings) -> Sink {
        let (tx, rx) = mpsc::channel(QUEUE);
        let url = format!("{}/v1/traces", endpoint.trim_end_matches('/'));
        let service = if settings.service_name.is_empty() {
            "changewire"
        } else {
            settings.service_name.as_str()
        };
        tokio::spawn(run(url, Frame::new(service), rx));
        Sink { tx }
    }

    /// Queues a finished span (dropped, and counted, when the queue is full).
    pub(super) fn send(&self, span: Vec<u8>) {
        if self.tx.try_send(span).is_err() {
            metrics::counter!("changewire_trace_spans_dropped_total").increment(1);
        }
    }
}

async fn run(url: String, frame: Frame, mut rx: mpsc::Receiver<Vec<u8>>) {
    let client: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let mut flush = tokio::time::interval(FLUSH_EVERY);
    flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut batch = Vec::with_capacity(BATCH);
    let mut warned = false;
    loop {
        flush.tick().await;
        // Everything queued, a batch at a time, until the queue is empty;
        // the task ends once every sender is gone and the queue is drained.
        loop {
            let closed = take_batch(&mut rx, &mut batch);
            let count = batch.len();
            if count > 0 {
                let body = Bytes::from(frame.request(&batch));
                batch.clear();
                match export(&client, &url, body).await {
                    Ok(()) => warned = false,
                    Err(err) => {
                        metrics::counter!("changewire_trace_spans_dropped_total")
                            .increment(count as u64);
                        if !warned {
                            tracing::warn!(error = %err, endpoint = %url, "exporting traces failed; spans are dropped until it works again");
                            warned = true;
                        }
                    }
                }
            }
            if closed {
                return;
            }
            if count < BATCH {
                break;
            }
        }
    }
}

/// One OTLP/HTTP request (`application/x-protobuf`); any 2xx is success.
async fn export(
    client: &Client<HttpConnector, Full<Bytes>>,
    url: &str,
    body: Bytes,
) -> Result<(), String> {
    let request = http::Request::post(url)
        .header(http::header::CONTENT_TYPE, "application/x-protobuf")
        .body(Full::new(body))
        .map_err(|e| e.to_string())?;
    let answer = tokio::time::timeout(REQUEST_TIMEOUT, async {
        let response = client.request(request).await.map_err(|e| e.to_string())?;
        let status = response.status();
        // Read the answer (up to a limit), so the connection goes back to
        // the pool; a longer one is not read, and its connection is closed.
        let body = Limited::new(response.into_body(), ANSWER_LIMIT)
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        if status.is_success() {
            Ok(())
        } else {
            let text = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
            Err(format!("the collector answered {status}: {text}"))
        }
    })
    .await;
    answer.unwrap_or_else(|_| Err(format!("no answer within {REQUEST_TIMEOUT:?}")))
}

/// Moves up to [`BATCH`] queued spans into `batch`, without waiting; true
/// when the channel is closed (every sender dropped and nothing left).
fn take_batch(rx: &mut mpsc::Receiver<Vec<u8>>, batch: &mut Vec<Vec<u8>>) -> bool {
    while batch.len() < BATCH {
        match rx.try_recv() {
            Ok(span) => batch.push(span),
            Err(mpsc::error::TryRecvError::Empty) => return false,
            Err(mpsc::error::TryRecvError::Disconnected) => return true,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;

    /// A collector on loopback answering every request with `status` and a
    /// body of `body_len` bytes of `x`.
    async fn collector(status: u16, body_len: usize) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut request = vec![0u8; 64 * 1024];
                let _ = socket.read(&mut request).await;
                let head = format!(
                    "HTTP/1.1 {status} X\r\ncontent-length: {body_len}\r\nconnection: close\r\n\r\n"
                );
                let _ = socket.write_all(head.as_bytes()).await;
                let _ = socket.write_all(&vec![b'x'; body_len]).await;
            }
        });
        format!("http://{addr}/v1/traces")
    }

    #[tokio::test]
    async fn a_collector_error_is_reported_with_the_start_of_its_answer() {
        let client: Client<HttpConnector, Full<Bytes>> =
            Client::builder(TokioExecutor::new()).build_http();
        let body = || Bytes::from(Frame::new("t").request(&[]));

        assert_eq!(
            export(&client, &collector(200, 2).await, body()).await,
            Ok(())
        );

        let err = export(&client, &collector(500, 300).await, body())
            .await
            .unwrap_err();
        assert!(err.starts_with("the collector answered 500"), "{err}");
        assert!(err.ends_with(&"x".repeat(200)), "{err}");
        assert!(!err.ends_with(&"x".repeat(201)), "at most 200 bytes: {err}");

        // An answer over the limit is not read, and still fails clearly.
        let err = export(&client, &collector(503, 1 << 20).await, body())
            .await
            .unwrap_err();
        assert!(err.starts_with("the collector answered 503"), "{err}");

        // Nobody listening: the connection error, not a hang.
        let closed = {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            l.local_addr().expect("address")
        };
        let err = export(&client, &format!("http://{closed}/v1/traces"), body())
            .await
            .unwrap_err();
        assert!(!err.is_empty());
    }
}
