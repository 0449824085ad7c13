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
use super::receivers::{Eligibility, Receiver};
use crate::report::Report;
use crate::store::deliveries::{LeaseRequest, LeasedDelivery};
use crate::store::now_ms;

/// Rotates which receiver leases first.
static ROUND: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Which receivers a lease round asks the queue for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// Every eligible receiver (a wake-up, the poll timer, start-up).
    All,
    /// Only receivers that may have due deliveries this process did not
    /// lease (room freed up: no query when everything was handed off).
    Backlogged,
}

/// Leases and dispatches until shutdown, then waits (within the grace
/// period) for attempts in flight.
pub(crate) async fn run(
    engine: Arc<Engine>,
    outcomes: mpsc::Sender<Outcome>,
    mut handed: mpsc::UnboundedReceiver<LeasedDelivery>,
) {
    let mut tasks: JoinSet<()> = JoinSet::new();
    let mut refresh_tick = tokio::time::interval(Duration::from_secs(2));
    let mut backoff = Duration::from_millis(50);
    let mut round = Some(Scope::All);
    let mut last_full_round = tokio::time::Instant::now();
    loop {
        while tasks.try_join_next().is_some() {}
        if engine.shutdown.is_cancelled() {
            break;
        }
        if let Some(scope) = round.take() {
            if scope == Scope::All {
                last_full_round = tokio::time::Instant::now();
            }
            match lease_round(&engine, scope, &outcomes, &mut tasks).await {
                Ok(leased) => {
                    engine.health.ready("delivery");
                    backoff = Duration::from_millis(50);
                    if leased > 0 {
                        round = Some(Scope::Backlogged); // there may be more due right now
                        continue;
                    }
                }
                Err(err) => {
                    engine.health.failing("delivery", Report(&err).to_string());
                    tracing::warn!(error = %Report(&err), retry_in = ?backoff, "leasing deliveries failed; retrying");
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                    round = Some(Scope::All);
                    tokio::select! {
                        _ = engine.shutdown.cancelled() => break,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    continue;
                }
            }
        }
        tokio::select! {
            _ = engine.shutdown.cancelled() => break,
            Some(d) = handed.recv() => {
                dispatch_handed(&engine, d, &outcomes, &mut tasks);
                while let Ok(d) = handed.try_recv() {
                    dispatch_handed(&engine, d, &outcomes, &mut tasks);
                }
            }
            _ = engine.signals.work_available.notified() => round = Some(Scope::All),
            _ = engine.signals.receivers_changed.notified() => {
                if let Err(err) = engine.receivers.refresh().await {
                    tracing::warn!(error = %Report(&err), "reloading receivers failed");
                }
                round = Some(Scope::All);
            }
            _ = engine.freed.notified() => round = Some(Scope::Backlogged),
            _ = refresh_tick.tick() => {
                if let Err(err) = engine.receivers.refresh().await {
                    tracing::warn!(error = %Report(&err), "reloading receivers failed");
                }
            }
            _ = tokio::time::sleep_until(last_full_round + engine.settings.poll_interval) => {
                round = Some(Scope::All);
            }
        }
    }
    // Handed-off deliveries not started yet: each is released at once
    // (shutdown), so another gateway can send it without waiting for the lease.
    handed.close();
    while let Ok(d) = handed.try_recv() {
        dispatch_handed(&engine, d, &outcomes, &mut tasks);
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

/// Starts a handed-off delivery; its budget was counted when it was reserved.
fn dispatch_handed(
    engine: &Arc<Engine>,
    d: LeasedDelivery,
    outcomes: &mpsc::Sender<Outcome>,
    tasks: &mut JoinSet<()>,
) {
    match engine.receivers.get(d.receiver_id) {
        Some(receiver) => spawn_attempt(engine, receiver, d, false, outcomes, tasks),
        None => {
            // Deleted meanwhile: the row went with it.
            engine.in_flight.fetch_sub(1, Ordering::SeqCst);
            engine.freed.notify_one();
        }
    }
}

/// Runs one attempt as a task; counts it in flight until its outcome is
/// handed to the recorder.
fn spawn_attempt(
    engine: &Arc<Engine>,
    receiver: Arc<Receiver>,
    d: LeasedDelivery,
    probe: bool,
    outcomes: &mpsc::Sender<Outcome>,
    tasks: &mut JoinSet<()>,
) {
    let (engine, outcomes) = (engine.clone(), outcomes.clone());
    tasks.spawn(async move {
        let state = receiver.state.clone();
        let outcome = attempt::run(engine.clone(), receiver, d, probe).await;
        // The recorder only stops after every sender is gone, so this cannot fail while it runs.
        let _ = outcomes.send(outcome).await;
        state.in_flight.fetch_sub(1, Ordering::SeqCst);
        engine.in_flight.fetch_sub(1, Ordering::SeqCst);
        engine.freed.notify_one();
    });
}

async fn lease_round(
    engine: &Arc<Engine>,
    scope: Scope,
    outcomes: &mpsc::Sender<Outcome>,
    tasks: &mut JoinSet<()>,
) -> crate::store::Result<usize> {
    let now = now_ms();
    let mut global_free = engine
        .settings
        .max_in_flight
        .saturating_sub(engine.in_flight.load(Ordering::SeqCst));
    if global_free == 0 {
        return Ok(0);
    }
    // Who may lease how much: each receiver up to its own free budget.
    let mut wanted = Vec::new();
    let mut probes = Vec::new();
    for r in engine.receivers.all() {
        if scope == Scope::Backlogged && !r.state.may_have_due.load(Ordering::SeqCst) {
            continue;
        }
        // A receiver whose plugin is not loaded here waits (never sent
        // untransformed); the plugin sync wakes the dispatcher once it is.
        if !engine.plugins.ready_for(&r) {
            continue;
        }
        let limit = match r.eligibility(now) {
            Eligibility::Held => continue,
            Eligibility::Probe => {
                if r.state.in_flight.load(Ordering::SeqCst) > 0 {
                    continue;
                }
                probes.push(r.id);
                1
            }
            Eligibility::Open => {
                let free = r
                    .lease_budget()
                    .saturating_sub(r.state.in_flight.load(Ordering::SeqCst));
                // Refill in batches of at least half the budget: one query per
                // half budget rather than one per finished attempt. The half
                // still leased keeps every request slot busy meanwhile.
                if free < r.lease_budget().div_ceil(2) {
                    0
                } else {
                    free
                }
            }
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
    // A receiver that got all it asked for may have more waiting.
    for request in &requests {
        let got = leased
            .iter()
            .filter(|d| d.receiver_id == request.receiver_id)
            .count();
        if let Some(r) = engine.receivers.get(request.receiver_id) {
            let full = i32::try_from(got).unwrap_or(i32::MAX) >= request.limit;
            r.state.may_have_due.store(full, Ordering::SeqCst);
        }
    }
    for d in leased {
        let Some(receiver) = engine.receivers.get(d.receiver_id) else {
            continue; // deleted meanwhile: its lease expires and the row is gone with it
        };
        let probe = probes.contains(&d.receiver_id);
        if probe {
            receiver.state.probing.store(true, Ordering::SeqCst);
        }
        receiver.state.in_flight.fetch_add(1, Ordering::SeqCst);
        engine.in_flight.fetch_add(1, Ordering::SeqCst);
        spawn_attempt(engine, receiver, d, probe, outcomes, tasks);
    }
    Ok(count)
}
