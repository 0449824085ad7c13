//! One attempt of one leased delivery, in three steps, each a file:
//!
//! ```text
//! run: permit, still sendable? ─▶ plugin_step::apply ──▶ Body(body, headers)  ─▶ send::post ─▶ verdict::classify
//!                                        │                                          │               │
//!                                        └▶ Final(filtered | plugin_error)          └─ Answer / SendError
//!                                        └▶ Hold(again, reason)                         └▶ Verdict → Outcome
//! ```
//!
//! The [`Outcome`] goes to the recorder, which writes it with the audit
//! trail and feeds the circuit breaker.

mod plugin_step;
mod send;
mod verdict;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use super::Engine;
use super::receivers::Receiver;
use crate::model::ReceiverId;
use crate::store::deliveries::{AttemptRecord, Completion, Finished, LeasedDelivery};
use crate::store::now_ms;
use crate::traces::{AttemptSpan, AttemptTrace};
use plugin_step::BodyStep;

/// What the recorder needs besides the store row.
#[derive(Debug)]
pub(crate) struct Outcome {
    /// The finished lease.
    pub(crate) finished: Finished,
    /// The receiver.
    pub(crate) receiver_id: ReceiverId,
    /// Some(true/false) for an attempt that reached the receiver (feeds the
    /// circuit breaker); None when nothing was sent.
    pub(crate) http_success: Option<bool>,
    /// What the receiver's answer asks of the sender besides this delivery.
    pub(crate) signal: ReceiverSignal,
    /// How long the request took.
    pub(crate) duration: Duration,
    /// The label for metrics (`succeeded`, `retry`, `failed`, …).
    pub(crate) label: &'static str,
}

/// What an answer says about the receiver itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReceiverSignal {
    /// Nothing beyond the attempt.
    None,
    /// 429, 502, 503 or 504: it is overloaded; a soft failure for the
    /// circuit breaker.
    SlowDown,
    /// 410 Gone: it wants no more deliveries; the receiver is disabled.
    Gone,
}

/// Gives the lease back unattempted, due again at `at`; with a reason, it
/// becomes the delivery's last error (why it waits), else the delivery
/// keeps the error of its last attempt.
fn held(d: &LeasedDelivery, at: i64, reason: Option<String>) -> Outcome {
    Outcome {
        finished: Finished {
            delivery_id: d.id,
            created_at: d.created_at,
            lease_until: d.lease_until,
            completion: Completion::Released { at },
            last_status: None,
            last_error: reason,
            attempt: None,
        },
        receiver_id: d.receiver_id,
        http_success: None,
        signal: ReceiverSignal::None,
        duration: Duration::ZERO,
        label: "released",
    }
}

/// Runs one leased delivery to an outcome.
pub(crate) async fn run(
    engine: Arc<Engine>,
    receiver: Arc<Receiver>,
    d: LeasedDelivery,
    probe: bool,
) -> Outcome {
    let state = receiver.state.clone();
    let permit = tokio::select! {
        p = state.permits.acquire() => p,
        _ = engine.shutdown.cancelled() => return held(&d, now_ms(), None),
    };
    let Ok(_permit) = permit else {
        return held(&d, now_ms(), None);
    };
    // The receiver may have been paused, tripped or deleted while this waited.
    let current = engine.receivers.get(receiver.id);
    let waits = match &current {
        None => true,
        Some(r) => {
            !r.active
                || r.state.paused.load(Ordering::SeqCst)
                || (!probe && r.state.open_until.load(Ordering::SeqCst) > 0)
        }
    };
    if waits || engine.shutdown.is_cancelled() {
        return held(&d, now_ms(), None);
    }
    // It asked us to wait (Retry-After with a 429, 502, 503 or 504).
    let throttled_until = receiver.state.throttled_until.load(Ordering::SeqCst);
    if throttled_until > now_ms() {
        return held(&d, throttled_until, None);
    }
    if let Some(limit) = current.as_ref().and_then(|r| r.rate_limit) {
        let took = tokio::select! {
            took = state.rate.acquire(&engine.store, receiver.id, limit) => took,
            _ = engine.shutdown.cancelled() => return held(&d, now_ms(), None),
        };
        if let Err(err) = took {
            let reason = format!(
                "waiting: the rate limit's shared budget cannot be read from the store ({})",
                crate::report::Report(&err)
            );
            return held(&d, now_ms() + 1000, Some(reason));
        }
    }
    // Waited so long for a permit that the lease could end mid-request
    // (another gateway may take it over then): give it back instead.
    let now = now_ms();
    let timeout_ms = i64::try_from(receiver.timeout.as_millis()).unwrap_or(i64::MAX / 4);
    if d.lease_until - now < timeout_ms {
        return held(&d, now, None);
    }
    let receiver = current.unwrap_or(receiver);
    attempt(&engine, &receiver, &d).await
}

/// Plugin, then (unless it decided otherwise) sign, send and classify;
/// traced when traces are exported or the receiver wants `traceparent`.
async fn attempt(engine: &Engine, receiver: &Arc<Receiver>, d: &LeasedDelivery) -> Outcome {
    let trace = (engine.traces.exporting() || receiver.egress.send_traceparent)
        .then(|| engine.traces.attempt(d.change_id.get()));
    let outcome = attempt_traced(engine, receiver, d, trace.as_ref()).await;
    if let Some(t) = &trace
        && let Some(record) = &outcome.finished.attempt
    {
        engine.traces.attempt_finished(
            t,
            &AttemptSpan {
                url: &record.request_url,
                receiver_id: receiver.id.get(),
                delivery_id: d.id.get(),
                attempt: record.attempt,
                status: record.response_status.and_then(|s| u16::try_from(s).ok()),
                outcome: outcome.label,
                error: record.error.as_deref(),
                duration: outcome.duration,
            },
        );
    }
    outcome
}

async fn attempt_traced(
    engine: &Engine,
    receiver: &Arc<Receiver>,
    d: &LeasedDelivery,
    trace: Option<&AttemptTrace>,
) -> Outcome {
    let started_at = now_ms();
    let plugin_started = SystemTime::now();
    let step = plugin_step::apply(engine, receiver, d).await;
    if let (Some(t), Some(revision)) = (trace, d.plugin_revision.as_deref()) {
        engine
            .traces
            .plugin_called(t, plugin_started, revision, step.label());
    }
    let body = match step {
        BodyStep::Send(body) => body,
        BodyStep::Hold {
            again_in_ms,
            reason,
        } => {
            return held(d, now_ms() + again_in_ms, reason);
        }
        BodyStep::Final {
            completion,
            label,
            error,
            body,
        } => return finished_by_plugin(receiver, d, started_at, completion, label, error, body),
    };
    let traceparent = trace
        .filter(|_| receiver.egress.send_traceparent)
        .map(|t| t.traceparent(engine.traces.exporting()));
    let sent = send::post(engine, receiver, d, &body, started_at, traceparent).await;
    let verdict = verdict::classify(engine, receiver, d, &sent);
    verdict::outcome(receiver, d, started_at, body, sent, verdict)
}

/// The plugin ended the delivery (dropped it, or failed and the receiver
/// wants that final): an attempt with nothing sent.
fn finished_by_plugin(
    receiver: &Receiver,
    d: &LeasedDelivery,
    started_at: i64,
    completion: Completion,
    label: &'static str,
    error: String,
    body: String,
) -> Outcome {
    Outcome {
        finished: Finished {
            delivery_id: d.id,
            created_at: d.created_at,
            lease_until: d.lease_until,
            completion,
            last_status: None,
            last_error: Some(error.clone()),
            attempt: Some(AttemptRecord {
                attempt: d.attempts + 1,
                started_at,
                duration_ms: 0,
                request_url: receiver.url.clone(),
                request_headers: "{}".into(),
                request_body: Some(body),
                response_status: None,
                response_body: None,
                outcome: label.into(),
                error_class: Some("plugin".into()),
                error: Some(error),
            }),
        },
        receiver_id: receiver.id,
        http_success: None,
        signal: ReceiverSignal::None,
        duration: Duration::ZERO,
        label,
    }
}
