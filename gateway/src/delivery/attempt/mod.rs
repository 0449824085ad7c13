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
use std::time::Duration;

use super::Engine;
use super::receivers::Receiver;
use crate::model::ReceiverId;
use crate::store::deliveries::{AttemptRecord, Completion, Finished, LeasedDelivery};
use crate::store::now_ms;
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
    /// How long the request took.
    pub(crate) duration: Duration,
    /// The label for metrics (`succeeded`, `retry`, `failed`, …).
    pub(crate) label: &'static str,
}

/// Gives the lease back unattempted, due again at `at`; with a reason, it
/// becomes the delivery's last error (why it waits), else the delivery
/// keeps the error of its last attempt.
fn held(d: &LeasedDelivery, at: i64, reason: Option<String>) -> Outcome {
    Outcome {
        finished: Finished {
            delivery_id: d.id,
            lease_until: d.lease_until,
            completion: Completion::Released { at },
            last_status: None,
            last_error: reason,
            attempt: None,
        },
        receiver_id: d.receiver_id,
        http_success: None,
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

/// Plugin, then (unless it decided otherwise) sign, send and classify.
async fn attempt(engine: &Engine, receiver: &Arc<Receiver>, d: &LeasedDelivery) -> Outcome {
    let started_at = now_ms();
    let body = match plugin_step::apply(engine, receiver, d).await {
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
    let sent = send::post(engine, receiver, d, &body, started_at).await;
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
        duration: Duration::ZERO,
        label,
    }
}
