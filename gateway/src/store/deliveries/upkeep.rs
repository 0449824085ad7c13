//! Upkeep of the queue: retention pruning and the gauges of pending work.

use sqlx::AssertSqlSafe;

use super::super::partitions;
use super::super::{Backend, Result, Store, on_pool};
use crate::model::{DeliveryId, DeliveryStatus, ReceiverId};

/// The partitions of `table` pruned row by row (PostgreSQL): the default
/// one and the one from before partitioning.
async fn row_pruned(pool: &sqlx::PgPool, table: &str) -> Result<Vec<String>> {
    Ok(partitions::list(pool, table)
        .await?
        .into_iter()
        .filter(|p| p.default || p.from.is_none())
        .map(|p| p.name)
        .collect())
}

/// Pending work of one receiver, for metrics.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub(crate) struct QueueStat {
    pub(crate) receiver_id: ReceiverId,
    /// Pending deliveries.
    pub(crate) pending: i64,
    /// Oldest pending delivery's creation (ms).
    pub(crate) oldest_created_at: i64,
}

impl Store {
    /// Pending deliveries per receiver and the oldest one's age.
    pub(crate) async fn queue_stats(&self) -> Result<Vec<QueueStat>> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as::<_, QueueStat>(
            "SELECT receiver_id, COUNT(*) AS pending, MIN(created_at) AS oldest_created_at FROM deliveries \
             WHERE status = 'pending' GROUP BY receiver_id"
        )
        .fetch_all(pool)
        .await
        })?)
    }

    /// Deletes deliveries (and their attempts) that finished before
    /// `cutoff`, then changes created before it that no delivery refers to
    /// any more; at most `limit` of each per call and table. On PostgreSQL
    /// only the default partition and the one from before partitioning are
    /// pruned row by row; day partitions go whole
    /// ([`Store::drop_expired_partitions`]). Retention counts from
    /// completion: a delivery that waited long (paused receiver, open
    /// circuit) is kept for the whole retention after it finished, and
    /// pending work is never pruned. Returns how many deliveries went.
    pub async fn prune(&self, cutoff: i64, limit: i64) -> Result<u64> {
        let deliveries = match self.backend() {
            // Attempts have no foreign key to cascade from (migration 0002).
            // They are deleted by a second statement, which (unlike a
            // data-modifying CTE sharing the first one's snapshot) also
            // sees attempts a recorder committed while the first one waited
            // for its row locks.
            //
            // Day partitions go whole (`drop_expired_partitions`); rows are
            // deleted one by one only where no partition can go whole: in
            // the default partition and the one from before partitioning.
            Backend::Postgres(pool) => {
                let mut gone_total = 0;
                for table in row_pruned(pool, "deliveries").await? {
                    let mut tx = pool.begin().await?;
                    let gone: Vec<DeliveryId> = sqlx::query_scalar(AssertSqlSafe(format!(
                        "DELETE FROM \"{table}\" WHERE id IN (SELECT id FROM \"{table}\" \
                         WHERE completed_at < $1 AND status <> 'pending' LIMIT $2) RETURNING id"
                    )))
                    .bind(cutoff)
                    .bind(limit)
                    .fetch_all(&mut *tx)
                    .await?;
                    if !gone.is_empty() {
                        sqlx::query("DELETE FROM attempts WHERE delivery_id = ANY($1)")
                            .bind(&gone)
                            .execute(&mut *tx)
                            .await?;
                    }
                    tx.commit().await?;
                    gone_total += gone.len() as u64;
                }
                for table in row_pruned(pool, "changes").await? {
                    sqlx::query(AssertSqlSafe(format!(
                        "DELETE FROM \"{table}\" WHERE id IN (SELECT c.id FROM \"{table}\" c \
                         WHERE c.created_at < $1 AND NOT EXISTS (SELECT 1 FROM deliveries d \
                         WHERE d.change_id = c.id AND d.created_at = c.created_at) LIMIT $2)"
                    )))
                    .bind(cutoff)
                    .bind(limit)
                    .execute(pool)
                    .await?;
                }
                return Ok(gone_total);
            }
            Backend::Sqlite(pool) => sqlx::query(
                "DELETE FROM deliveries WHERE id IN (SELECT id FROM deliveries WHERE completed_at < $1 \
                 AND status <> 'pending' LIMIT $2)",
            )
            .bind(cutoff)
            .bind(limit)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())?,
        };
        if let Backend::Sqlite(pool) = self.backend() {
            sqlx::query(
                "DELETE FROM changes WHERE id IN (SELECT c.id FROM changes c WHERE c.created_at < $1 \
                 AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.change_id = c.id) LIMIT $2)",
            )
            .bind(cutoff)
            .bind(limit)
            .execute(pool)
            .await?;
        }
        Ok(deliveries)
    }

    /// Counts deliveries by status (tests and the quick start).
    pub async fn delivery_status_counts(&self) -> Result<Vec<(DeliveryStatus, i64)>> {
        Ok(on_pool!(self, |pool| sqlx::query_as::<
            _,
            (DeliveryStatus, i64),
        >(
            "SELECT status, COUNT(*) FROM deliveries GROUP BY status ORDER BY status"
        )
        .fetch_all(pool)
        .await)?)
    }
}
