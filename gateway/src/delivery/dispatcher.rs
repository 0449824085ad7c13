//! The dispatcher: leases due deliveries within each receiver's budget and
//! hands them to attempt tasks.
//!
//! Isolation comes from budgets, not queues: a receiver may hold at most
//! `2 × concurrency` leases in this process and send `concurrency` requests
//! at once, so a receiver that hangs for its whole timeout only ever ties up
//! its own slots while every other receiver keeps leasing and sending.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::Engine;
use super::attempt::{self, Outcome};
use super::receivers::Eligibility;
use crate::store::deliveries::LeaseRequest;
use crate::store::now_ms;

/// Rotates which receiver leases first.
static ROUND: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Leases and dispatches until shutdown, then waits (within the grace
/// period) for attempts in flight.
pub async fn run(engine: Arc<Engine>, outcomes: mpsc::Sender<Outcome>) {
    let mut tasks: JoinSet<()> = JoinSet::new();
    let mut refresh_tick = tokio::time::interval(Duration::from_secs(2));
    let mut backoff = Duration::from_millis(50);
    let in_flight = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let freed = Arc::new(tokio::sync::Notify::new());
    loop {
        while tasks.try_join_next().is_some() {}
        if engine.shutdown.is_cancelled() {
            break;
        }
        let leased = match lease_round(&engine, &in_flight, &freed, &outcomes, &mut tasks).await {
            Ok(n) => {
                engine.health.ready("delivery");
                backoff = Duration::from_millis(50);
                n
            }
            Err(err) => {
                engine.health.failing("delivery", err.to_string());
                tracing::warn!(error = %err, retry_in = ?backoff, "leasing deliveries failed; retrying");
                backoff = (backoff * 2).min(Duration::from_secs(10));
                tokio::select! {
                    _ = engine.shutdown.cancelled() => break,
                    _ = tokio::time::sleep(backoff) => {}
                }
                continue;
            }
        };
        if leased > 0 {
            continue; // there may be more due right now
        }
        tokio::select! {
            _ = engine.shutdown.cancelled() => break,
            _ = engine.signals.work_available.notified() => {}
            _ = engine.signals.receivers_changed.notified() => {
                if let Err(err) = engine.receivers.refresh().await {
                    tracing::warn!(error = %err, "reloading receivers failed");
                }
            }
            _ = freed.notified() => {}
            _ = refresh_tick.tick() => {
                if let Err(err) = engine.receivers.refresh().await {
                    tracing::warn!(error = %err, "reloading receivers failed");
                }
                if let Err(err) = engine.plugins.sync(&engine.store).await {
                    tracing::warn!(error = %err, "reloading plugins failed");
                }
            }
            _ = tokio::time::sleep(engine.settings.poll_interval) => {}
        }
    }
    let grace = engine.settings.shutdown_grace;
    let drained =
        tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        tracing::warn!(
            left = tasks.len(),
            "attempts still running after the shutdown grace; their leases will expire and be retried"
        );
        tasks.abort_all();
    }
}

async fn lease_round(
    engine: &Arc<Engine>,
    in_flight: &Arc<std::sync::atomic::AtomicUsize>,
    freed: &Arc<tokio::sync::Notify>,
    outcomes: &mpsc::Sender<Outcome>,
    tasks: &mut JoinSet<()>,
) -> crate::store::Result<usize> {
    let now = now_ms();
    let mut global_free = engine
        .settings
        .max_in_flight
        .saturating_sub(in_flight.load(Ordering::SeqCst));
    if global_free == 0 {
        return Ok(0);
    }
    // Who may lease how much: each receiver up to its own free budget.
    let mut wanted = Vec::new();
    let mut probes = Vec::new();
    for r in engine.receivers.all() {
        let limit = match r.eligibility(now) {
            Eligibility::Held => continue,
            Eligibility::Probe => {
                if r.state.in_flight.load(Ordering::SeqCst) > 0 {
                    continue;
                }
                probes.push(r.id);
                1
            }
            Eligibility::Open => r
                .lease_budget()
                .saturating_sub(r.state.in_flight.load(Ordering::SeqCst)),
        };
        if limit > 0 {
            wanted.push((r, limit));
        }
    }
    // The process-wide budget is shared fairly: every eligible receiver gets
    // an equal share (at least one), starting from a different receiver each
    // round, so receivers without due work can never keep the budget from
    // those with it. Rounds repeat as long as they lease anything.
    wanted.sort_by_key(|(r, _)| r.id);
    let fair = (global_free / wanted.len().max(1)).max(1);
    let start = ROUND.fetch_add(1, Ordering::Relaxed) % wanted.len().max(1);
    wanted.rotate_left(start);
    let mut requests = Vec::new();
    for (r, budget) in wanted {
        let limit = budget.min(fair).min(global_free);
        if limit == 0 {
            break;
        }
        global_free -= limit;
        let lease = r.timeout * 2 + engine.settings.lease_margin;
        requests.push(LeaseRequest {
            receiver_id: r.id,
            limit: i32::try_from(limit).unwrap_or(i32::MAX),
            ordered: r.ordered,
            lease_until: now + i64::try_from(lease.as_millis()).unwrap_or(i64::MAX / 4),
        });
    }
    if requests.is_empty() {
        return Ok(0);
    }
    let leased = engine.store.lease(&engine.owner, now, &requests).await?;
    let count = leased.len();
    for d in leased {
        let Some(receiver) = engine.receivers.get(d.receiver_id) else {
            continue; // deleted meanwhile: its lease expires and the row is gone with it
        };
        let probe = probes.contains(&d.receiver_id);
        if probe {
            receiver.state.probing.store(true, Ordering::SeqCst);
        }
        receiver.state.in_flight.fetch_add(1, Ordering::SeqCst);
        in_flight.fetch_add(1, Ordering::SeqCst);
        let (engine, outcomes, in_flight, freed) = (
            engine.clone(),
            outcomes.clone(),
            in_flight.clone(),
            freed.clone(),
        );
        tasks.spawn(async move {
            let state = receiver.state.clone();
            let outcome = attempt::run(engine, receiver, d, probe).await;
            // The recorder only stops after every sender is gone, so this cannot fail while it runs.
            let _ = outcomes.send(outcome).await;
            state.in_flight.fetch_sub(1, Ordering::SeqCst);
            in_flight.fetch_sub(1, Ordering::SeqCst);
            freed.notify_one();
        });
    }
    Ok(count)
}
