//! Background upkeep: day partitions made ahead and dropped past retention (PostgreSQL), retention
//! pruning (deliveries, console sessions), queue gauges, and resuming bulk redeliveries interrupted
//! by a restart.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::model::ReceiverId;
use crate::report::Report;
use crate::signals::Signals;
use crate::store::{Store, now_ms, on_pool};

/// Starts the upkeep tasks.
pub(crate) fn start(
    config: &Arc<Config>,
    store: &Store,
    signals: &Arc<Signals>,
    shutdown: &CancellationToken,
    tasks: &mut JoinSet<()>,
) {
    if let Some(retention) = config.delivery.retention {
        let (store, shutdown) = (store.clone(), shutdown.clone());
        tasks.spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tick.tick() => {}
                }
                let cutoff =
                    now_ms() - i64::try_from(retention.as_millis()).unwrap_or(i64::MAX / 2);
                match store.drop_expired_partitions(cutoff).await {
                    Ok(dropped) if !dropped.partitions.is_empty() => {
                        tracing::info!(partitions = ?dropped.partitions, "dropped day partitions past retention")
                    }
                    Ok(_) => {}
                    Err(err) => tracing::warn!(error = %Report(&err), "dropping partitions failed"),
                }
                loop {
                    match store.prune(cutoff, 5_000).await {
                        Ok(n) if n > 0 => {
                            tracing::debug!(pruned = n, "pruned finished deliveries past retention")
                        }
                        Ok(_) => break,
                        Err(err) => {
                            tracing::warn!(error = %Report(&err), "pruning failed");
                            break;
                        }
                    }
                }
            }
        });
    }
    {
        // Day partitions ahead (PostgreSQL): checked every ten minutes, so a
        // gateway that runs for days keeps days ready, and one that could
        // not take the lock at start-up soon tries again.
        let (store, shutdown) = (store.clone(), shutdown.clone());
        tasks.spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(600));
            tick.tick().await;
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tick.tick() => {}
                }
                match store.create_partitions_ahead(now_ms()).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(partitions = n, "created day partitions"),
                    Err(err) => {
                        tracing::warn!(error = %Report(&err), "creating day partitions failed")
                    }
                }
            }
        });
    }
    {
        // Console links and sessions a day past their end (kept that long
        // so a refused link can still be told apart from a wrong one in logs).
        let (store, shutdown) = (store.clone(), shutdown.clone());
        tasks.spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(3600));
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tick.tick() => {}
                }
                if let Err(err) = store.prune_console_tokens(now_ms() - 86_400_000).await {
                    tracing::warn!(error = %Report(&err), "pruning console sessions failed");
                }
            }
        });
    }
    {
        let (store, shutdown) = (store.clone(), shutdown.clone());
        tasks.spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            let mut known: Vec<ReceiverId> = Vec::new();
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tick.tick() => {}
                }
                if let Err(err) = store.refresh_lease_floor(now_ms()).await {
                    tracing::warn!(error = %Report(&err), "finding the oldest pending partition failed");
                }
                let Ok(stats) = store.queue_stats().await else { continue };
                let now = now_ms();
                let current: Vec<ReceiverId> = stats.iter().map(|s| s.receiver_id).collect();
                for id in known.iter().filter(|id| !current.contains(id)) {
                    metrics::gauge!("changewire_queue_depth", "receiver" => id.to_string()).set(0.0);
                    metrics::gauge!("changewire_queue_oldest_pending_seconds", "receiver" => id.to_string()).set(0.0);
                }
                for s in &stats {
                    let r = s.receiver_id.to_string();
                    metrics::gauge!("changewire_queue_depth", "receiver" => r.clone()).set(s.pending as f64);
                    metrics::gauge!("changewire_queue_oldest_pending_seconds", "receiver" => r)
                        .set(((now - s.oldest_created_at).max(0) as f64) / 1000.0);
                }
                known = current;
            }
        });
    }
    {
        let (store, signals) = (store.clone(), signals.clone());
        tasks.spawn(async move {
            let running: Result<Vec<i64>, sqlx::Error> = on_pool!(store, |pool| sqlx::query_scalar::<_, i64>(
                "SELECT id FROM redelivery_jobs WHERE status = 'running' ORDER BY id"
            )
            .fetch_all(pool)
            .await);
            for id in running.unwrap_or_default() {
                if let Ok(Some(job)) = store.redelivery_job(id).await {
                    tracing::info!(job = id, "resuming an interrupted redelivery job");
                    if let Err(err) = crate::redelivery::run(&store, &signals, &job).await {
                        tracing::warn!(job = id, error = %Report(&err), "resuming the redelivery job failed");
                    }
                }
            }
        });
    }
}
