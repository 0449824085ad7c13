//! Writes finished attempts in batches (one transaction per batch), then
//! updates each receiver's circuit breaker and the metrics.
//!
//! A batch that cannot be written is retried until it is; meanwhile leases
//! may expire and deliveries be sent again — at least once, never lost.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::mpsc;

use super::Engine;
use super::attempt::Outcome;
use crate::model::ReceiverId;
use crate::report::Report;
use crate::store::now_ms;

const MAX_BATCH: usize = 1000;

/// Receives outcomes and records them until every sender is gone.
pub(crate) async fn run(engine: Arc<Engine>, mut rx: mpsc::Receiver<Outcome>) {
    let mut batch: Vec<Outcome> = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.recv().await {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(o) => batch.push(o),
                Err(_) => break,
            }
        }
        write(&engine, &batch).await;
        after_write(&engine, &batch).await;
        batch.clear();
    }
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
    let mut last_by_receiver: HashMap<ReceiverId, (bool, Option<String>)> = HashMap::new();
    for o in batch {
        let receiver = o.receiver_id.to_string();
        metrics::counter!("changewire_delivery_attempts_total", "receiver" => receiver.clone(), "outcome" => o.label).increment(1);
        if let Some(success) = o.http_success {
            if let Some(r) = engine.receivers.get(o.receiver_id) {
                r.state.observe_latency(o.duration);
            }
            metrics::histogram!("changewire_attempt_duration_seconds", "receiver" => receiver)
                .record(o.duration.as_secs_f64());
            last_by_receiver
                .entry(o.receiver_id)
                .and_modify(|e| *e = (success, o.finished.last_error.clone()))
                .or_insert((success, o.finished.last_error.clone()));
            circuit_step(
                engine,
                o.receiver_id,
                success,
                o.finished.last_error.as_deref(),
            )
            .await;
        }
    }
}

/// The circuit breaker: count consecutive failures; trip after the
/// threshold (the receiver is paused with a reason, its deliveries wait);
/// probe with backoff; close on the first success.
async fn circuit_step(
    engine: &Engine,
    receiver_id: ReceiverId,
    success: bool,
    error: Option<&str>,
) {
    let Some(receiver) = engine.receivers.get(receiver_id) else {
        return;
    };
    let state = &receiver.state;
    let threshold = engine.settings.circuit_failure_threshold;
    if success {
        let was_failing = state.failures.swap(0, Ordering::SeqCst) > 0;
        let was_open = state.open_until.load(Ordering::SeqCst) != 0;
        state.probing.store(false, Ordering::SeqCst);
        if was_open || was_failing {
            if let Err(err) = engine
                .store
                .record_receiver_health(receiver_id, 0, None, true)
                .await
            {
                tracing::warn!(error = %Report(&err), "recording a receiver's recovery failed");
            }
            state.open_until.store(0, Ordering::SeqCst);
            state.trips.store(0, Ordering::SeqCst);
            if was_open {
                metrics::gauge!("changewire_receiver_circuit_open", "receiver" => receiver_id.to_string()).set(0.0);
                tracing::info!(receiver = %receiver_id, "receiver recovered; circuit closed");
                engine.signals.wake_delivery();
            }
        }
        return;
    }
    let failures = state.failures.fetch_add(1, Ordering::SeqCst) + 1;
    let probing = state.probing.swap(false, Ordering::SeqCst);
    let open = state.open_until.load(Ordering::SeqCst) != 0;
    let trip = threshold > 0 && (probing || (!open && failures >= threshold));
    if trip {
        let trips = state.trips.load(Ordering::SeqCst);
        let delay = engine
            .settings
            .circuit_probe
            .saturating_mul(1u32 << trips.min(7))
            .min(Duration::from_secs(3600));
        let until = now_ms() + i64::try_from(delay.as_millis()).unwrap_or(3_600_000);
        let reason = format!(
            "circuit open after {failures} consecutive failed attempts (last: {}); next probe at {}",
            error.unwrap_or("unknown error"),
            crate::timefmt::format_ms(until)
        );
        let count = i32::try_from(failures).unwrap_or(i32::MAX);
        match engine
            .store
            .record_receiver_health(receiver_id, count, Some((until, &reason)), false)
            .await
        {
            Ok(()) => {
                state.open_until.store(until, Ordering::SeqCst);
                state.trips.fetch_add(1, Ordering::SeqCst);
                metrics::gauge!("changewire_receiver_circuit_open", "receiver" => receiver_id.to_string()).set(1.0);
                tracing::warn!(receiver = %receiver_id, %reason, "receiver paused by the circuit breaker");
            }
            Err(err) => tracing::warn!(error = %Report(&err), "recording a circuit trip failed"),
        }
    } else if failures % 10 == 0 {
        let _ = engine
            .store
            .record_receiver_health(
                receiver_id,
                i32::try_from(failures).unwrap_or(i32::MAX),
                None,
                false,
            )
            .await;
    }
}
