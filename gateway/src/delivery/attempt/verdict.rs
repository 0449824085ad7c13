//! What an answer means: delivered, try again (when), or failed for good.

use std::sync::atomic::Ordering;
use std::time::SystemTime;

use super::plugin_step::Body;
use super::send::Sent;
use super::{Engine, Outcome, Receiver, ReceiverSignal};
use crate::delivery::client::SendError;
use crate::delivery::headers;
use crate::delivery::retry::parse_retry_after;
use crate::store::deliveries::{AttemptRecord, Completion, Finished, LeasedDelivery};
use crate::store::now_ms;

/// How an attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    /// The receiver answered with its expected status.
    Delivered,
    /// It failed; the next attempt is due at this time (ms).
    Retry {
        /// Due (ms).
        at: i64,
    },
    /// It failed and the retry policy is used up.
    Exhausted,
    /// The destination rules refused the address: retrying cannot change
    /// that (only a new URL or setting can), so the delivery fails now,
    /// and the receiver's circuit breaker is not told (nothing reached it).
    Refused,
    /// 410 Gone: the receiver is disabled; the delivery waits (due now)
    /// until someone resumes it.
    Gone,
}

/// Statuses that ask the sender to slow down rather than say it failed.
const SLOW_DOWN: [u16; 4] = [429, 502, 503, 504];

/// What an answer says about the receiver, beyond this delivery.
pub(super) fn signal_of(receiver: &Receiver, sent: &Sent) -> ReceiverSignal {
    match &sent.result {
        Ok(answer) if answer.status == receiver.expected_status => ReceiverSignal::None,
        Ok(answer) if answer.status == 410 => ReceiverSignal::Gone,
        Ok(answer) if SLOW_DOWN.contains(&answer.status) => ReceiverSignal::SlowDown,
        _ => ReceiverSignal::None,
    }
}

/// Classifies what `sent` got back, and slows the receiver down or
/// disables it (in this process at once; the recorder makes it last) when
/// its answer asks for that.
pub(super) fn classify(
    engine: &Engine,
    receiver: &Receiver,
    d: &LeasedDelivery,
    sent: &Sent,
) -> Verdict {
    let retry_after = match &sent.result {
        Ok(answer) if answer.status == receiver.expected_status => return Verdict::Delivered,
        Ok(answer) => answer
            .retry_after
            .as_deref()
            .and_then(|v| parse_retry_after(v, SystemTime::now())),
        Err(SendError::Refused(reason)) => {
            engine.log_limiter.warn(
                receiver.id,
                "destination_refused",
                &format!("deliveries fail: refused by the destination rules: {reason}"),
            );
            return Verdict::Refused;
        }
        Err(_) => None,
    };
    match signal_of(receiver, sent) {
        ReceiverSignal::Gone => {
            // Held from now on in this process; the recorder disables it in
            // the store. The delivery waits for the receiver to be resumed.
            receiver
                .state
                .held_through_read
                .store(u64::MAX, Ordering::SeqCst);
            receiver.state.paused.store(true, Ordering::SeqCst);
            return Verdict::Gone;
        }
        ReceiverSignal::SlowDown => match retry_after {
            Some(wait) => {
                let wait = wait.min(engine.settings.max_retry_after);
                let until = now_ms() + i64::try_from(wait.as_millis()).unwrap_or(i64::MAX / 4);
                receiver
                    .state
                    .throttled_until
                    .fetch_max(until, Ordering::SeqCst);
            }
            None => receiver.state.slow_down(),
        },
        ReceiverSignal::None => {}
    }
    let cycle_attempt = u32::try_from((d.attempts - d.retry_base).max(0) + 1).unwrap_or(1);
    match receiver
        .retry
        .next_delay(cycle_attempt, retry_after, engine.settings.max_retry_after)
    {
        Some(delay) => Verdict::Retry {
            at: now_ms() + i64::try_from(delay.as_millis()).unwrap_or(i64::MAX / 2),
        },
        None => Verdict::Exhausted,
    }
}

/// The outcome of an attempt that was sent, with its audit record.
pub(super) fn outcome(
    receiver: &Receiver,
    d: &LeasedDelivery,
    started_at: i64,
    body: Body,
    sent: Sent,
    verdict: Verdict,
) -> Outcome {
    let (status, response_body, error_class, error) = match &sent.result {
        Ok(answer) if verdict == Verdict::Delivered => (
            Some(i32::from(answer.status)),
            Some(answer.body.clone()),
            None,
            None,
        ),
        Ok(answer) if verdict == Verdict::Gone => (
            Some(i32::from(answer.status)),
            Some(answer.body.clone()),
            Some("status"),
            Some(format!(
                "HTTP 410 Gone (expected {}): the receiver is disabled until resumed",
                receiver.expected_status
            )),
        ),
        Ok(answer) => (
            Some(i32::from(answer.status)),
            Some(answer.body.clone()),
            Some("status"),
            Some(format!(
                "HTTP {} (expected {})",
                answer.status, receiver.expected_status
            )),
        ),
        Err(e) => (None, None, Some(e.class()), Some(e.to_string())),
    };
    let (completion, label) = match verdict {
        Verdict::Delivered => (Completion::Succeeded, "succeeded"),
        Verdict::Retry { at } => (Completion::Retry { at }, "retry"),
        Verdict::Gone => (Completion::Retry { at: now_ms() }, "retry"),
        Verdict::Exhausted | Verdict::Refused => (Completion::Failed, "failed"),
    };
    let delivered = verdict == Verdict::Delivered;
    // The audit trail stores the body only when it cannot be rendered again
    // exactly from the stored change (a plugin changed it, or it depends on
    // subscription options that may change later). Headers a plugin added
    // are in the stored request headers either way.
    let keep_body = body.changed || !d.view.is_reproducible();
    Outcome {
        finished: Finished {
            delivery_id: d.id,
            created_at: d.created_at,
            lease_until: d.lease_until,
            completion,
            last_status: status,
            last_error: error.clone(),
            attempt: Some(AttemptRecord {
                attempt: d.attempts + 1,
                started_at,
                duration_ms: i32::try_from(sent.elapsed.as_millis()).unwrap_or(i32::MAX),
                request_url: receiver.url.clone(),
                request_headers: headers::for_audit(&sent.request_headers),
                request_body: keep_body.then_some(body.text),
                response_status: status,
                response_body,
                outcome: if delivered { "succeeded" } else { "failed" }.into(),
                error_class: error_class.map(str::to_string),
                error,
            }),
        },
        receiver_id: receiver.id,
        http_success: (verdict != Verdict::Refused).then_some(delivered),
        signal: signal_of(receiver, &sent),
        duration: sent.elapsed,
        label,
    }
}
