//! OpenTelemetry traces: one trace per change, from capture through fan-out
//! to each delivery attempt (and the plugin call inside it), exported over
//! OTLP/HTTP when `[telemetry] otlp_endpoint` is set.
//!
//! A change and its attempts may be handled by different processes, hours
//! apart, after restarts; rather than storing a trace context with every
//! change, the ids are derived from the change id (and a salt shared by
//! every process of one store): the change's span has trace id
//! `H(salt, change)` and span id `H(salt, change)'`, so whichever process
//! attempts a delivery knows its parent. Spans are built complete (start,
//! end, attributes) and handed to the exporter's task through a bounded
//! channel: nothing on the delivery path waits for the collector, and when
//! tracing is off nothing is built at all.
//!
//! - `export.rs` — the batching task and the OTLP exporter.

mod export;

use std::borrow::Cow;
use std::time::{Duration, SystemTime};

use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};
use sha2::{Digest, Sha256};

use crate::store::changes::{FanoutOutcome, NewChange};

use crate::config::TelemetrySettings;

/// Where spans go (or nothing, when tracing is off), and the salt of the
/// derived ids. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Traces {
    salt: [u8; 16],
    sink: Option<export::Sink>,
}

impl std::fmt::Debug for Traces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Traces")
            .field("exporting", &self.sink.is_some())
            .finish()
    }
}

/// The trace position of one attempt: its span id and its parent (the
/// change's span), fixed before the request so `traceparent` can name it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AttemptTrace {
    trace_id: TraceId,
    parent: SpanId,
    span_id: SpanId,
    started: SystemTime,
}

/// What an attempt span records.
#[derive(Debug)]
pub(crate) struct AttemptSpan<'a> {
    /// The receiver's URL.
    pub(crate) url: &'a str,
    /// The receiver.
    pub(crate) receiver_id: i64,
    /// The delivery.
    pub(crate) delivery_id: i64,
    /// Its attempt number.
    pub(crate) attempt: i32,
    /// The answer's status, if any.
    pub(crate) status: Option<u16>,
    /// How it ended (`succeeded`, `retry`, `failed`, `filtered`, …).
    pub(crate) outcome: &'static str,
    /// The error, if any.
    pub(crate) error: Option<&'a str>,
    /// How long the request took.
    pub(crate) duration: Duration,
}

/// The scope every span names, built once.
static SCOPE: std::sync::LazyLock<InstrumentationScope> = std::sync::LazyLock::new(|| {
    InstrumentationScope::builder("changewire")
        .with_version(env!("CARGO_PKG_VERSION"))
        .build()
});

impl Traces {
    /// Exports to `settings.otlp_endpoint` when it is set; `store_identity`
    /// (the same for every process of one store) salts the derived ids.
    pub(crate) fn start(settings: &TelemetrySettings, store_identity: &str) -> Traces {
        let digest = Sha256::digest(format!("changewire-traces\0{store_identity}"));
        let mut salt = [0u8; 16];
        salt.copy_from_slice(&digest[..16]);
        Traces {
            salt,
            sink: settings
                .otlp_endpoint
                .as_deref()
                .map(|e| export::Sink::start(e, settings)),
        }
    }

    /// No export (tests, tools); ids still derive.
    pub(crate) fn off() -> Traces {
        Traces {
            salt: [0; 16],
            sink: None,
        }
    }

    /// Spans are being exported.
    pub(crate) fn exporting(&self) -> bool {
        self.sink.is_some()
    }

    /// The change's trace id and span id.
    pub(crate) fn change_ids(&self, change_id: i64) -> (TraceId, SpanId) {
        let digest = Sha256::new()
            .chain_update(self.salt)
            .chain_update(change_id.to_be_bytes())
            .finalize();
        let mut trace = [0u8; 16];
        trace.copy_from_slice(&digest[..16]);
        let mut span = [0u8; 8];
        span.copy_from_slice(&digest[16..24]);
        // All-zero ids are invalid; a digest that starts so is vanishingly rare.
        trace[0] |= u8::from(trace == [0; 16]);
        span[0] |= u8::from(span == [0; 8]);
        (TraceId::from_bytes(trace), SpanId::from_bytes(span))
    }

    /// One span per change newly stored by a fan-out, from its commit time
    /// in the source database (or its arrival) to now.
    pub(crate) fn changes_fanned_out(&self, changes: &[NewChange], outcome: &FanoutOutcome) {
        let Some(sink) = &self.sink else { return };
        let now = SystemTime::now();
        for (change, stored) in changes.iter().zip(&outcome.per_change) {
            let Some((change_id, deliveries)) = stored else {
                continue;
            };
            let (trace_id, span_id) = self.change_ids(change_id.get());
            let p = &change.payload;
            let started = system_time_ms(p.occurred_at).min(now);
            sink.send(span(
                (trace_id, span_id, SpanId::INVALID),
                "change",
                SpanKind::Consumer,
                (started, now),
                vec![
                    KeyValue::new("changewire.change_id", change_id.get()),
                    KeyValue::new("changewire.resource", p.resource.clone()),
                    KeyValue::new("changewire.action", p.action.as_str()),
                    KeyValue::new("changewire.row_id", p.row_id.clone()),
                    KeyValue::new("db.transaction_id", p.transaction_id),
                    KeyValue::new("changewire.source", change.source.clone()),
                    KeyValue::new(
                        "changewire.deliveries",
                        i64::try_from(*deliveries).unwrap_or(i64::MAX),
                    ),
                ],
                Status::Unset,
            ));
        }
    }

    /// The position of an attempt about to start for a delivery of `change_id`.
    pub(crate) fn attempt(&self, change_id: i64) -> AttemptTrace {
        let (trace_id, parent) = self.change_ids(change_id);
        AttemptTrace {
            trace_id,
            parent,
            span_id: SpanId::from_bytes(rand::random::<u64>().max(1).to_be_bytes()),
            started: SystemTime::now(),
        }
    }

    /// The plugin call inside an attempt, from `started` to now.
    pub(crate) fn plugin_called(
        &self,
        attempt: &AttemptTrace,
        started: SystemTime,
        revision: &str,
        result: &str,
    ) {
        let Some(sink) = &self.sink else { return };
        let span_id = SpanId::from_bytes(rand::random::<u64>().max(1).to_be_bytes());
        sink.send(span(
            (attempt.trace_id, span_id, attempt.span_id),
            "plugin",
            SpanKind::Internal,
            (started, SystemTime::now()),
            vec![
                KeyValue::new("changewire.plugin.revision", revision.to_string()),
                KeyValue::new("changewire.plugin.result", result.to_string()),
            ],
            Status::Unset,
        ));
    }

    /// The attempt span, ended now.
    pub(crate) fn attempt_finished(&self, attempt: &AttemptTrace, a: &AttemptSpan<'_>) {
        let Some(sink) = &self.sink else { return };
        let mut attributes = vec![
            KeyValue::new("url.full", a.url.to_string()),
            KeyValue::new("http.request.method", "POST"),
            KeyValue::new("changewire.receiver_id", a.receiver_id),
            KeyValue::new("changewire.delivery_id", a.delivery_id),
            KeyValue::new("changewire.attempt", i64::from(a.attempt)),
            KeyValue::new("changewire.outcome", a.outcome),
            KeyValue::new(
                "changewire.request_ms",
                i64::try_from(a.duration.as_millis()).unwrap_or(i64::MAX),
            ),
        ];
        if let Some(status) = a.status {
            attributes.push(KeyValue::new(
                "http.response.status_code",
                i64::from(status),
            ));
        }
        let status = match a.error {
            Some(error) => {
                attributes.push(KeyValue::new("error.message", error.to_string()));
                Status::error(error.to_string())
            }
            None => Status::Ok,
        };
        sink.send(span(
            (attempt.trace_id, attempt.span_id, attempt.parent),
            "POST",
            SpanKind::Client,
            (attempt.started, SystemTime::now()),
            attributes,
            status,
        ));
    }
}

impl AttemptTrace {
    /// The W3C `traceparent` naming this attempt (sampled when exported).
    pub(crate) fn traceparent(&self, sampled: bool) -> String {
        format!(
            "00-{}-{}-{}",
            self.trace_id,
            self.span_id,
            if sampled { "01" } else { "00" }
        )
    }
}

fn system_time_ms(ms: i64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

fn span(
    (trace_id, span_id, parent): (TraceId, SpanId, SpanId),
    name: &'static str,
    kind: SpanKind,
    (start_time, end_time): (SystemTime, SystemTime),
    attributes: Vec<KeyValue>,
    status: Status,
) -> SpanData {
    SpanData {
        span_context: SpanContext::new(
            trace_id,
            span_id,
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        ),
        parent_span_id: parent,
        parent_span_is_remote: false,
        span_kind: kind,
        name: Cow::Borrowed(name),
        start_time,
        end_time: end_time.max(start_time),
        attributes,
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status,
        instrumentation_scope: SCOPE.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_derive_from_the_change_and_the_store() {
        let a = Traces::start(&TelemetrySettings::default(), "store-a");
        let b = Traces::start(&TelemetrySettings::default(), "store-b");
        assert_eq!(a.change_ids(7), a.change_ids(7));
        assert_ne!(a.change_ids(7), a.change_ids(8));
        assert_ne!(a.change_ids(7).0, b.change_ids(7).0);
        let attempt = a.attempt(7);
        let header = attempt.traceparent(true);
        assert_eq!(header.len(), 55, "{header}");
        assert!(
            header.starts_with(&format!("00-{}-", a.change_ids(7).0)),
            "{header}"
        );
        assert!(header.ends_with("-01"));
        assert!(!a.exporting());
    }
}
