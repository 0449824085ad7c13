//! One attempt: render, (plugin), sign, send, decide what happens next.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;

use super::client::SendError;
use super::receivers::Receiver;
use super::{Engine, headers};
use crate::plugins::Transform;
use crate::store::deliveries::{AttemptRecord, Completion, Finished, LeasedDelivery};
use crate::store::now_ms;

/// What the recorder needs besides the store row.
#[derive(Debug)]
pub struct Outcome {
    /// The finished lease.
    pub finished: Finished,
    /// The receiver.
    pub receiver_id: i64,
    /// Some(true/false) for an HTTP attempt (feeds the circuit breaker).
    pub http_success: Option<bool>,
    /// Attempt duration.
    pub duration: Duration,
    /// The label for metrics (`succeeded`, `retry`, `failed`, …).
    pub label: &'static str,
}

/// Gives the lease back unattempted; the delivery keeps its last error.
fn released(d: &LeasedDelivery, receiver_id: i64, at: i64) -> Outcome {
    held(d, receiver_id, at, None)
}

/// Gives the lease back unattempted, due again at `at`; with a reason, it
/// becomes the delivery's last error (why it waits).
fn held(d: &LeasedDelivery, receiver_id: i64, at: i64, reason: Option<String>) -> Outcome {
    Outcome {
        finished: Finished {
            delivery_id: d.id,
            lease_until: d.lease_until,
            completion: Completion::Released { at },
            last_status: None,
            last_error: reason,
            attempt: None,
        },
        receiver_id,
        http_success: None,
        duration: Duration::ZERO,
        label: "released",
    }
}

/// Runs one leased delivery to an outcome.
pub async fn run(
    engine: Arc<Engine>,
    receiver: Arc<Receiver>,
    d: LeasedDelivery,
    probe: bool,
) -> Outcome {
    let state = receiver.state.clone();
    let permit = tokio::select! {
        p = state.permits.acquire() => p,
        _ = engine.shutdown.cancelled() => return released(&d, receiver.id, now_ms()),
    };
    let Ok(_permit) = permit else {
        return released(&d, receiver.id, now_ms());
    };
    // The receiver may have been paused, tripped or deleted while this waited.
    let current = engine.receivers.get(receiver.id);
    let held = match &current {
        None => true,
        Some(r) => {
            !r.active
                || r.state.paused.load(Ordering::SeqCst)
                || (!probe && r.state.open_until.load(Ordering::SeqCst) > 0)
        }
    };
    if held || engine.shutdown.is_cancelled() {
        return released(&d, receiver.id, now_ms());
    }
    // Waited so long for a permit that the lease could end mid-request
    // (another gateway may take it over then): give it back instead.
    let now = now_ms();
    let timeout_ms = i64::try_from(receiver.timeout.as_millis()).unwrap_or(i64::MAX / 4);
    if d.lease_until - now < timeout_ms {
        return released(&d, receiver.id, now);
    }
    let receiver = current.unwrap_or(receiver);
    attempt(&engine, &receiver, &d).await
}

async fn attempt(engine: &Engine, receiver: &Arc<Receiver>, d: &LeasedDelivery) -> Outcome {
    let started_at = now_ms();
    let original = d.body();
    let transform = engine.plugins.transform(receiver, d, &original).await;
    let mut body_changed = false;
    let (body, plugin_headers, plugin_outcome) = match transform {
        Transform::Unchanged => (original, Vec::new(), None),
        Transform::Replaced { body, headers } => {
            body_changed = body.is_some();
            (body.unwrap_or(original), headers, None)
        }
        Transform::Dropped { reason } => (
            original,
            Vec::new(),
            Some((
                Completion::Filtered,
                "filtered",
                format!("dropped by plugin: {reason}"),
            )),
        ),
        Transform::Busy { reason } => {
            tracing::debug!(receiver = receiver.id, event = d.id, %reason, "plugin host busy; delivery released");
            return released(d, receiver.id, now_ms() + 1_000);
        }
        Transform::NotLoaded { reason, permanent } => {
            if permanent && receiver.plugin_deliver_original {
                engine.log_limiter.warn(
                    receiver.id,
                    "plugin_not_loaded",
                    &format!("{reason}; the receiver chose DELIVER_ORIGINAL, so the original body is sent"),
                );
                (original, Vec::new(), None)
            } else {
                // Never sent untransformed: the lease goes back with the
                // reason, and the receiver is not leased for again until its
                // plugin loads here (`PluginRuntime::ready_for`).
                let again = if permanent { 30_000 } else { 1_000 };
                return held(d, receiver.id, now_ms() + again, Some(reason));
            }
        }
        Transform::Failed { error } => {
            if receiver.plugin_deliver_original {
                tracing::warn!(receiver = receiver.id, event = d.id, %error, "plugin failed; delivering the original body");
                (original, Vec::new(), None)
            } else {
                (
                    original,
                    Vec::new(),
                    Some((
                        Completion::PluginError,
                        "plugin_error",
                        format!("plugin failed: {error}"),
                    )),
                )
            }
        }
    };
    let attempt_no = d.attempts + 1;
    if let Some((completion, label, error)) = plugin_outcome {
        return Outcome {
            finished: Finished {
                delivery_id: d.id,
                lease_until: d.lease_until,
                completion,
                last_status: None,
                last_error: Some(error.clone()),
                attempt: Some(AttemptRecord {
                    attempt: attempt_no,
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
        };
    }
    let basic = receiver
        .basic_auth
        .as_ref()
        .map(|(u, p)| (u.as_str(), p.expose()));
    let request_headers = headers::build(&headers::RequestParts {
        url: &receiver.url,
        body: body.as_bytes(),
        event_id: d.id,
        now_secs: started_at / 1000,
        signing: &receiver.signing(started_at),
        custom: &receiver.headers,
        basic_auth: basic,
        plugin_headers: &plugin_headers,
    });
    // The audit trail stores the body only when it cannot be rendered again
    // exactly from the stored change (a plugin changed it, or it depends on
    // subscription options that may change later). Headers a plugin added
    // are in the stored request headers either way.
    let keep_body = body_changed || !d.view.is_reproducible();
    let (result, elapsed) = engine
        .client
        .send(
            &receiver.url,
            &request_headers,
            Bytes::from(body.clone()),
            receiver.timeout,
        )
        .await;
    let duration_ms = i32::try_from(elapsed.as_millis()).unwrap_or(i32::MAX);
    let cycle_attempt = u32::try_from((d.attempts - d.retry_base).max(0) + 1).unwrap_or(1);
    let (success, status, response_body, error_class, error, retry_after) = match &result {
        Ok(answer) => {
            let ok = answer.status == receiver.expected_status;
            let retry_after = answer
                .retry_after
                .as_deref()
                .and_then(|v| super::retry::parse_retry_after(v, std::time::SystemTime::now()));
            let error = (!ok).then(|| {
                format!(
                    "HTTP {} (expected {})",
                    answer.status, receiver.expected_status
                )
            });
            (
                ok,
                Some(i32::from(answer.status)),
                Some(answer.body.clone()),
                (!ok).then_some("status"),
                error,
                retry_after,
            )
        }
        Err(e) => (
            false,
            None,
            None,
            Some(e.class()),
            Some(e.to_string()),
            None,
        ),
    };
    let refused = matches!(&result, Err(SendError::Refused(_)));
    let (completion, label) = if success {
        (Completion::Succeeded, "succeeded")
    } else if refused {
        // The destination rules refused the address: retrying cannot change
        // that (only a new URL or setting can), so the delivery fails now.
        (Completion::Failed, "failed")
    } else {
        match receiver
            .retry
            .next_delay(cycle_attempt, retry_after, engine.settings.max_retry_after)
        {
            Some(delay) => (
                Completion::Retry {
                    at: now_ms() + i64::try_from(delay.as_millis()).unwrap_or(i64::MAX / 2),
                },
                "retry",
            ),
            None => (Completion::Failed, "failed"),
        }
    };
    if let Err(SendError::Refused(reason)) = &result {
        engine.log_limiter.warn(
            receiver.id,
            "destination_refused",
            &format!("deliveries fail: refused by the destination rules: {reason}"),
        );
    }
    Outcome {
        finished: Finished {
            delivery_id: d.id,
            lease_until: d.lease_until,
            completion,
            last_status: status,
            last_error: error.clone(),
            attempt: Some(AttemptRecord {
                attempt: attempt_no,
                started_at,
                duration_ms,
                request_url: receiver.url.clone(),
                request_headers: headers::for_audit(&request_headers),
                request_body: keep_body.then_some(body),
                response_status: status,
                response_body,
                outcome: if success {
                    "succeeded".into()
                } else {
                    "failed".into()
                },
                error_class: error_class.map(str::to_string),
                error,
            }),
        },
        receiver_id: receiver.id,
        // A refusal never reached the receiver: it says nothing of its
        // health, so it does not feed the circuit breaker.
        http_success: (!refused).then_some(success),
        duration: elapsed,
        label,
    }
}
