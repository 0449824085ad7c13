//! What a receiver's answers do to the receiver itself: the circuit
//! breaker (count consecutive failures, trip after the threshold, probe
//! with backoff, close on the first success), 410 Gone (disabled until
//! resumed), "slow down" answers (a third of a hard failure), and the
//! optional auto-disable of a receiver failing for too long. Each change
//! of state is an operational event.

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::Engine;
use super::attempt::{Outcome, ReceiverSignal};
use super::receivers::Receiver;
use crate::model::ReceiverId;
use crate::operational::{OperationalEvent, OperationalEventType};
use crate::report::Report;
use crate::store::now_ms;
use crate::timefmt::format_ms;

/// Strikes per hard failure; a "slow down" answer (429, 502, 503, 504) is one.
const HARD_STRIKES: u32 = 3;

/// Feeds one attempt that reached the receiver (or failed to) into its state.
pub(super) async fn observe(engine: &Engine, o: &Outcome, success: bool) {
    let Some(receiver) = engine.receivers.get(o.receiver_id) else {
        return;
    };
    if success {
        succeeded(engine, &receiver).await;
    } else {
        failed(engine, &receiver, o).await;
    }
}

async fn succeeded(engine: &Engine, receiver: &Receiver) {
    let state = &receiver.state;
    state.speed_up();
    state.strikes.store(0, Ordering::SeqCst);
    let was_failing = state.failures.swap(0, Ordering::SeqCst) > 0;
    let was_open = state.open_until.load(Ordering::SeqCst) != 0;
    let had_streak = state.failing_since.swap(0, Ordering::SeqCst) != 0;
    state.probing.store(false, Ordering::SeqCst);
    if !(was_open || was_failing || had_streak) {
        return;
    }
    if let Err(err) = engine
        .store
        .record_receiver_health(receiver.id, 0, 0, None, true)
        .await
    {
        tracing::warn!(error = %Report(&err), "recording a receiver's recovery failed");
    }
    state.open_until.store(0, Ordering::SeqCst);
    state.trips.store(0, Ordering::SeqCst);
    if was_open {
        metrics::gauge!("changewire_receiver_circuit_open", "receiver" => receiver.id.to_string())
            .set(0.0);
        tracing::info!(receiver = %receiver.id, "receiver recovered; circuit closed");
        engine.operational.emit(OperationalEvent::new(
            OperationalEventType::ReceiverRecovered,
            Some(receiver.id),
            serde_json::json!({
                "receiverId": receiver.id.to_string(),
                "receiverName": receiver.name,
            }),
        ));
        engine.signals.wake_delivery();
    }
}

async fn failed(engine: &Engine, receiver: &Receiver, o: &Outcome) {
    let state = &receiver.state;
    let now = now_ms();
    let failures = state.failures.fetch_add(1, Ordering::SeqCst) + 1;
    let strikes = match o.signal {
        ReceiverSignal::SlowDown => 1,
        _ => HARD_STRIKES,
    };
    let strikes = state.strikes.fetch_add(strikes, Ordering::SeqCst) + strikes;
    let _ = state
        .failing_since
        .compare_exchange(0, now, Ordering::SeqCst, Ordering::SeqCst);
    let failing_since = state.failing_since.load(Ordering::SeqCst);
    let error = o.finished.last_error.as_deref().unwrap_or("unknown error");
    let count = i32::try_from(failures).unwrap_or(i32::MAX);

    if o.signal == ReceiverSignal::Gone {
        let reason = format!(
            "disabled: the receiver answered 410 Gone at {}; resume it to deliver again",
            format_ms(now)
        );
        disable(engine, receiver, &reason, "gone").await;
        return;
    }
    if let Some(limit) = engine.settings.auto_disable_after
        && now - failing_since > i64::try_from(limit.as_millis()).unwrap_or(i64::MAX)
    {
        let reason = format!(
            "disabled: every attempt has failed since {} (longer than delivery.auto_disable_after_secs = {}; last: {error}); resume it to deliver again",
            format_ms(failing_since),
            limit.as_secs()
        );
        disable(engine, receiver, &reason, "auto_disabled").await;
        return;
    }
    let threshold = engine.settings.circuit_failure_threshold;
    let probing = state.probing.swap(false, Ordering::SeqCst);
    let open = state.open_until.load(Ordering::SeqCst) != 0;
    let trip = threshold > 0 && (probing || (!open && strikes >= threshold * HARD_STRIKES));
    if trip {
        let trips = state.trips.load(Ordering::SeqCst);
        let delay = engine
            .settings
            .circuit_probe
            .saturating_mul(1u32 << trips.min(7))
            .min(Duration::from_secs(3600));
        let until = now + i64::try_from(delay.as_millis()).unwrap_or(3_600_000);
        let reason = format!(
            "circuit open after {failures} consecutive failed attempts (last: {error}); next probe at {}",
            format_ms(until)
        );
        match engine
            .store
            .record_receiver_health(
                receiver.id,
                count,
                failing_since,
                Some((until, &reason)),
                false,
            )
            .await
        {
            Ok(()) => {
                state.open_until.store(until, Ordering::SeqCst);
                state.trips.fetch_add(1, Ordering::SeqCst);
                metrics::gauge!("changewire_receiver_circuit_open", "receiver" => receiver.id.to_string()).set(1.0);
                tracing::warn!(receiver = %receiver.id, %reason, "receiver paused by the circuit breaker");
                if trips == 0 {
                    // The first trip of a streak; later probes failing are not news.
                    disabled_event(engine, receiver.id, &receiver.name, "circuit_open", &reason);
                }
            }
            Err(err) => tracing::warn!(error = %Report(&err), "recording a circuit trip failed"),
        }
    } else if failures == 1 || failures.is_multiple_of(10) {
        let _ = engine
            .store
            .record_receiver_health(receiver.id, count, failing_since, None, false)
            .await;
    }
}

/// Pauses the receiver with `reason` (it is resumed by hand) and says so.
async fn disable(engine: &Engine, receiver: &Receiver, reason: &str, cause: &str) {
    let held = &receiver.state.held_through_read;
    held.store(u64::MAX, Ordering::SeqCst);
    receiver.state.paused.store(true, Ordering::SeqCst);
    let written = engine
        .store
        .set_receiver_paused(receiver.id, None, true, Some(reason))
        .await;
    // Reloads that began reading before the write finished may not see the
    // pause; they keep the receiver paused. Later ones read the store.
    held.store(
        if written.is_ok() {
            engine.receivers.reads_begun()
        } else {
            0
        },
        Ordering::SeqCst,
    );
    match written {
        Ok(_) => {
            tracing::warn!(receiver = %receiver.id, %reason, "receiver disabled");
            engine.signals.receivers_changed();
            disabled_event(engine, receiver.id, &receiver.name, cause, reason);
        }
        Err(err) => tracing::warn!(error = %Report(&err), "disabling a receiver failed"),
    }
}

fn disabled_event(engine: &Engine, id: ReceiverId, name: &str, cause: &str, reason: &str) {
    engine.operational.emit(OperationalEvent::new(
        OperationalEventType::ReceiverDisabled,
        Some(id),
        serde_json::json!({
            "receiverId": id.to_string(),
            "receiverName": name,
            "cause": cause,
            "reason": reason,
        }),
    ));
}
