//! The exporting side: a bounded channel of finished spans, and one task
//! that wakes every 100 ms, takes what arrived and sends it in batches (up
//! to 512 spans per request) with the OTLP/HTTP protobuf exporter. The task
//! never waits on the channel itself, so queueing a span wakes nothing (no
//! task wake-up and no timer per span). A full channel drops the span and
//! counts it (`changewire_trace_spans_dropped_total`): tracing never slows
//! delivery down.

use std::time::Duration;

use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SpanData, SpanExporter as _};
use tokio::sync::mpsc;

use crate::config::TelemetrySettings;

/// Spans waiting for the exporter at most (0.4 s of 10,000 deliveries/s,
/// two spans each, against a flush every 0.1 s).
const QUEUE: usize = 8192;
/// Spans per export request at most.
const BATCH: usize = 512;
/// How often the queue is emptied.
const FLUSH_EVERY: Duration = Duration::from_millis(100);

/// Where finished spans go.
#[derive(Clone)]
pub(super) struct Sink {
    // Boxed: the channel's blocks then hold pointers, not whole ~300-byte
    // spans (blocks of 32 spans are allocations of several kilobytes).
    tx: mpsc::Sender<Box<SpanData>>,
}

impl Sink {
    /// Starts the exporting task (on the current tokio runtime).
    pub(super) fn start(endpoint: &str, settings: &TelemetrySettings) -> Sink {
        let (tx, rx) = mpsc::channel(QUEUE);
        let url = format!("{}/v1/traces", endpoint.trim_end_matches('/'));
        let service = if settings.service_name.is_empty() {
            "changewire".to_string()
        } else {
            settings.service_name.clone()
        };
        tokio::spawn(run(url, service, rx));
        Sink { tx }
    }

    /// Queues a finished span (dropped, and counted, when the queue is full).
    pub(super) fn send(&self, span: SpanData) {
        if self.tx.try_send(Box::new(span)).is_err() {
            metrics::counter!("changewire_trace_spans_dropped_total").increment(1);
        }
    }
}

async fn run(url: String, service: String, mut rx: mpsc::Receiver<Box<SpanData>>) {
    let client = opentelemetry_http::hyper::HyperClient::new(
        hyper_util::client::legacy::connect::HttpConnector::new(),
        Duration::from_secs(10),
        None,
    );
    let built = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(client)
        .with_endpoint(url.clone())
        .with_timeout(Duration::from_secs(10))
        .build();
    let mut exporter = match built {
        Ok(e) => e,
        Err(err) => {
            tracing::error!(error = %err, endpoint = %url, "the OTLP exporter cannot be built; no traces");
            return;
        }
    };
    exporter.set_resource(&Resource::builder().with_service_name(service).build());
    let mut flush = tokio::time::interval(FLUSH_EVERY);
    flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut warned = false;
    loop {
        flush.tick().await;
        // Everything queued, a batch at a time, until the queue is empty;
        // the task ends once every sender is gone and the queue is drained.
        loop {
            let (batch, closed) = take_batch(&mut rx);
            let count = batch.len();
            if count > 0 {
                match exporter.export(batch).await {
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

/// Up to [`BATCH`] queued spans, without waiting; and whether the channel
/// is closed (every sender dropped and nothing left).
fn take_batch(rx: &mut mpsc::Receiver<Box<SpanData>>) -> (Vec<SpanData>, bool) {
    let mut batch = Vec::with_capacity(BATCH.min(rx.len()));
    while batch.len() < BATCH {
        match rx.try_recv() {
            Ok(span) => batch.push(*span),
            Err(mpsc::error::TryRecvError::Empty) => return (batch, false),
            Err(mpsc::error::TryRecvError::Disconnected) => return (batch, true),
        }
    }
    (batch, false)
}
