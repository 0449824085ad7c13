//! Bulk redelivery jobs: failed events of a receiver in a time range become
//! pending again, in batches, with progress in `redelivery_jobs`.
//!
//! The work is idempotent (only `failed` events are touched), so a job
//! interrupted by a restart is simply resumed at start-up.

use std::sync::Arc;

use crate::report::Report;
use crate::signals::Signals;
use crate::store::Store;
use crate::store::redelivery::RedeliveryJobRow;

const BATCH: i64 = 500;

/// Runs a job in the background.
pub(crate) fn spawn(store: Store, signals: Arc<Signals>, job: RedeliveryJobRow) {
    tokio::spawn(async move {
        if let Err(err) = run(&store, &signals, &job).await {
            tracing::warn!(job = job.id, error = %Report(&err), "redelivery job stopped; it resumes at the next start");
        }
    });
}

/// Makes the job's failed events pending again, batch by batch.
pub(crate) async fn run(
    store: &Store,
    signals: &Signals,
    job: &RedeliveryJobRow,
) -> crate::store::Result<()> {
    let mut done = job.done;
    let mut after = 0;
    let range = job.range();
    loop {
        let ids = store.redeliver_failed(&range, after, BATCH).await?;
        if ids.is_empty() {
            break;
        }
        after = ids.iter().map(|id| id.get()).max().unwrap_or(after);
        done = done.saturating_add(i32::try_from(ids.len()).unwrap_or(i32::MAX));
        store
            .update_redelivery_job(job.id, done.min(job.total.max(done)), false)
            .await?;
        signals.wake_delivery();
    }
    store.update_redelivery_job(job.id, done, true).await?;
    tracing::info!(
        job = job.id,
        receiver = %job.receiver_id,
        redelivered = done,
        "redelivery job finished"
    );
    Ok(())
}
