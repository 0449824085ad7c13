//! OpenTelemetry traces: one trace per change, from capture through fan-out
//! to each delivery attempt (and the plugin call inside it), exported over
//! OTLP/HTTP when `[telemetry] otlp_endpoint` is set.
//!
//! A change and its attempts may be handled by different processes, hours
//! apart, after restarts; rather than storing a trace context with every
//! change, the ids are derived from the change id (and a salt shared by
//! every process of one store): the change's span has trace id
//! `H(salt, change)` and span id `H(salt, change)'`, so whichever process
//! attempts a delivery knows its parent. A span is encoded whole (start,
//! end, attributes) where it ends, straight into OTLP's protobuf form (one
//! buffer, nothing else allocated), and handed to the exporter's task
//! through a bounded channel: nothing on the delivery path waits for the
//! collector, and when tracing is off nothing is built at all.
//!
//! - `wire.rs` — OTLP's protobuf encoding of spans and export requests.
//! - `export.rs` — the batching task and the OTLP/HTTP requests.

mod export;
mod wire;

use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

use self::wire::{Kind, Span, SpanStatus, Value};
use crate::config::TelemetrySettings;
use crate::store::changes::{FanoutOutcome, NewChange};

/// A trace id (16 bytes) and a span id (8).
type Ids = ([u8; 16], [u8; 8]);

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
    trace_id: [u8; 16],
    parent: [u8; 8],
    span_id: [u8; 8],
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

/// A random, valid (non-zero) span id.
fn random_span_id() -> [u8; 8] {
    rand::random::<u64>().max(1).to_be_bytes()
}

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
    fn change_ids(&self, change_id: i64) -> Ids {
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
        (trace, span)
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
            sink.send(
                Span {
                    trace_id,
                    span_id,
                    parent: None,
                    name: "change",
                    kind: Kind::Consumer,
                    start: started,
                    end: now,
                    attributes: &[
                        ("changewire.change_id", Value::Int(change_id.get())),
                        ("changewire.resource", Value::Str(&p.resource)),
                        ("changewire.action", Value::Str(p.action.as_str())),
                        ("changewire.row_id", Value::Str(&p.row_id)),
                        ("db.transaction_id", Value::Int(p.transaction_id)),
                        ("changewire.source", Value::Str(&change.source)),
                        (
                            "changewire.deliveries",
                            Value::Int(i64::try_from(*deliveries).unwrap_or(i64::MAX)),
                        ),
                    ],
                    status: SpanStatus::Unset,
                }
                .encode(),
            );
        }
    }

    /// The position of an attempt about to start for a delivery of `change_id`.
    pub(crate) fn attempt(&self, change_id: i64) -> AttemptTrace {
        let (trace_id, parent) = self.change_ids(change_id);
        AttemptTrace {
            trace_id,
            parent,
            span_id: random_span_id(),
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
        sink.send(
            Span {
                trace_id: attempt.trace_id,
                span_id: random_span_id(),
                parent: Some(attempt.span_id),
                name: "plugin",
                kind: Kind::Internal,
                start: started,
                end: SystemTime::now(),
                attributes: &[
                    ("changewire.plugin.revision", Value::Str(revision)),
                    ("changewire.plugin.result", Value::Str(result)),
                ],
                status: SpanStatus::Unset,
            }
            .encode(),
        );
    }

    /// The attempt span, ended now.
    pub(crate) fn attempt_finished(&self, attempt: &AttemptTrace, a: &AttemptSpan<'_>) {
        let Some(sink) = &self.sink else { return };
        let mut attributes = [
            ("url.full", Value::Str(a.url)),
            ("http.request.method", Value::Str("POST")),
            ("changewire.receiver_id", Value::Int(a.receiver_id)),
            ("changewire.delivery_id", Value::Int(a.delivery_id)),
            ("changewire.attempt", Value::Int(i64::from(a.attempt))),
            ("changewire.outcome", Value::Str(a.outcome)),
            (
                "changewire.request_ms",
                Value::Int(i64::try_from(a.duration.as_millis()).unwrap_or(i64::MAX)),
            ),
            // The optional two last; `count` says how many are present.
            ("", Value::Int(0)),
            ("", Value::Int(0)),
        ];
        let mut count = 7;
        if let Some(status) = a.status {
            attributes[count] = ("http.response.status_code", Value::Int(i64::from(status)));
            count += 1;
        }
        if let Some(error) = a.error {
            attributes[count] = ("error.message", Value::Str(error));
            count += 1;
        }
        sink.send(
            Span {
                trace_id: attempt.trace_id,
                span_id: attempt.span_id,
                parent: Some(attempt.parent),
                name: "POST",
                kind: Kind::Client,
                start: attempt.started,
                end: SystemTime::now(),
                attributes: &attributes[..count],
                status: a.error.map_or(SpanStatus::Ok, SpanStatus::Error),
            }
            .encode(),
        );
    }
}

impl AttemptTrace {
    /// The W3C `traceparent` naming this attempt (sampled when exported).
    pub(crate) fn traceparent(&self, sampled: bool) -> String {
        let mut header = String::with_capacity(55);
        header.push_str("00-");
        push_hex(&mut header, &self.trace_id);
        header.push('-');
        push_hex(&mut header, &self.span_id);
        header.push_str(if sampled { "-01" } else { "-00" });
        header
    }
}

fn push_hex(out: &mut String, bytes: &[u8]) {
    for b in bytes {
        // Writing to a String cannot fail.
        let _ = write!(out, "{b:02x}");
    }
}

fn system_time_ms(ms: i64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
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
        let mut trace_hex = String::new();
        push_hex(&mut trace_hex, &a.change_ids(7).0);
        assert!(header.starts_with(&format!("00-{trace_hex}-")), "{header}");
        assert_eq!(&header[36..52], {
            let mut span_hex = String::new();
            push_hex(&mut span_hex, &attempt.span_id);
            span_hex
        });
        assert!(header.ends_with("-01"));
        assert!(!a.exporting());
    }
}
