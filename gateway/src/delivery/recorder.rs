//! Writes finished attempts in batches (one transaction per batch), then
//! updates each receiver's state ([`circuit`]), the metrics, and reports
//! deliveries in trouble (operational events).
//!
//! A batch that cannot be written is retried until it is; meanwhile leases
//! may expire and deliveries be sent again — at least once, never lost.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::attempt::Outcome;
use super::{Engine, circuit};
use crate::operational::{OperationalEvent, OperationalEventType};
use crate::report::Report;
use crate::store::deliveries::Completion;

const MAX_BATCH: usize = 1000;

/// How long a small batch waits for more outcomes before it is written.
/// Under a trickle every batch would hold one attempt, and its statement,
/// round trip and commit cost PostgreSQL several times what the row does;
/// waiting lets several attempts share them (at 500 deliveries/s, about
/// ten; at 5 ms it was four). Nothing
/// waits on it but the record: the receiver already has its delivery, the
/// budget in flight is already given back, and the lease still holds the
/// delivery meanwhile (a crash sends it again, as before).
const LINGER: Duration = Duration::from_millis(20);

/// A batch at least this big is written without lingering.
const LINGER_UNTIL: usize = 16;

/// Receives outcomes and records them until every sender is gone.
pub(crate) async fn run(engine: Arc<Engine>, mut rx: mpsc::Receiver<Outcome>) {
    let mut batch: Vec<Outcome> = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.recv().await {
        batch.push(first);
        take_waiting(&mut rx, &mut batch);
        if batch.len() < LINGER_UNTIL && !any_ordered(&engine, &batch) {
            let deadline = tokio::time::Instant::now() + LINGER;
            while batch.len() < LINGER_UNTIL {
                match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Ok(Some(o)) => {
                        let from = batch.len();
                        batch.push(o);
                        take_waiting(&mut rx, &mut batch);
                        if any_ordered(&engine, &batch[from..]) {
                            break;
                        }
                    }
                    // Every sender gone (shutdown) or the wait is over.
                    Ok(None) | Err(_) => break,
                }
            }
        }
        write(&engine, &batch).await;
        after_write(&engine, &batch).await;
        batch.clear();
    }
}

/// Adds the outcomes already queued, up to [`MAX_BATCH`].
fn take_waiting(rx: &mut mpsc::Receiver<Outcome>, batch: &mut Vec<Outcome>) {
    while batch.len() < MAX_BATCH {
        match rx.try_recv() {
            Ok(o) => batch.push(o),
            Err(_) => break,
        }
    }
}

/// Whether an outcome is a per-row ordered receiver's: its next delivery of
/// the row waits for this one's record, so that is written at once.
fn any_ordered(engine: &Engine, batch: &[Outcome]) -> bool {
    batch.iter().any(|o| {
        engine
            .receivers
            .get(o.receiver_id)
            .is_some_and(|r| r.ordered)
    })
}

async fn write(engine: &Engine, batch: &[Outcome]) {
    let finished: Vec<_> = batch.iter().map(|o| o.finished.clone()).collect();
    let mut backoff = Duration::from_millis(50);
    loop {
        match engine.store.finish(&engine.owner, &finished).await {
            Ok(()) => return,
            Err(err) => {
                engine
                    .health
                    .failing("delivery_recorder", Report(&err).to_string());
                tracing::warn!(error = %Report(&err), retry_in = ?backoff, "recording attempts failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
}

async fn after_write(engine: &Engine, batch: &[Outcome]) {
    engine.health.ready("delivery_recorder");
    for o in batch {
        let receiver = o.receiver_id.to_string();
        metrics::counter!("changewire_delivery_attempts_total", "receiver" => receiver.clone(), "outcome" => o.label).increment(1);
        if let Some(success) = o.http_success {
            if let Some(r) = engine.receivers.get(o.receiver_id) {
                r.state.observe_latency(o.duration);
            }
            metrics::histogram!("changewire_attempt_duration_seconds", "receiver" => receiver)
                .record(o.duration.as_secs_f64());
            circuit::observe(engine, o, success).await;
        }
        report_delivery(engine, o);
    }
}

/// Operational events about one delivery: its Nth failed attempt, its
/// retries used up, its plugin failing.
fn report_delivery(engine: &Engine, o: &Outcome) {
    let Some(attempt) = &o.finished.attempt else {
        return;
    };
    let kind = match (&o.finished.completion, o.label) {
        (Completion::Failed, _) => OperationalEventType::DeliveryExhausted,
        (Completion::PluginError, _) | (_, "plugin_error") => OperationalEventType::PluginFailed,
        (Completion::Retry { .. }, _)
            if attempt.outcome == "failed"
                && u32::try_from(attempt.attempt).ok()
                    == Some(engine.operational_settings.failing_after_attempts) =>
        {
            OperationalEventType::DeliveryFailing
        }
        _ => return,
    };
    let name = engine
        .receivers
        .get(o.receiver_id)
        .map(|r| r.name.clone())
        .unwrap_or_default();
    let next_attempt_at = match o.finished.completion {
        Completion::Retry { at } => Some(crate::timefmt::format_ms(at)),
        _ => None,
    };
    engine.operational.emit(OperationalEvent::new(
        kind,
        Some(o.receiver_id),
        serde_json::json!({
            "receiverId": o.receiver_id.to_string(),
            "receiverName": name,
            "eventId": o.finished.delivery_id.to_string(),
            "attempts": attempt.attempt,
            "lastStatus": attempt.response_status,
            "lastError": o.finished.last_error,
            "nextAttemptAt": next_attempt_at,
        }),
    ));
}
