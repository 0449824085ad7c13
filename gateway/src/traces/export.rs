//! The exporting side: a bounded channel of finished spans, and one task
//! that wakes every 100 ms, takes what arrived and sends it in batches (up
//! to 512 spans per request) as OTLP/HTTP protobuf requests. The task
//! never waits on the channel itself, so queueing a span wakes nothing (no
//! task wake-up and no timer per span). A full channel drops the span and
//! counts it (`changewire_trace_spans_dropped_total`): tracing never slows
//! delivery down.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
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
        // Read the answer whole, so the connection goes back to the pool.
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?;
        if status.is_success() {
            Ok(())
        } else {
            let text = body.to_bytes();
            let text = String::from_utf8_lossy(&text[..text.len().min(200)]).into_owned();
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
