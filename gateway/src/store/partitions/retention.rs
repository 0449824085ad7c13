//! Retention by partition: whole days dropped once nothing in them is
//! pending or finished within retention, and the partition from before the
//! upgrade once it is empty.

use sqlx::{AssertSqlSafe, PgPool};

use super::{begin_short_waits, is_day, list};
use crate::store::Result;

/// PostgreSQL's error code when a lock was not had within `lock_timeout`.
const LOCK_NOT_AVAILABLE: &str = "55P03";

/// What one pass of [`drop_expired`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dropped {
    /// The partitions dropped, by name.
    pub partitions: Vec<String>,
}

/// Drops the day partitions retention no longer needs: a `deliveries`
/// partition (with its `changes` twin) whose range ended before `cutoff`
/// and that holds no pending delivery and none finished at or after
/// `cutoff`; then every `attempts` partition whose range ended before
/// `cutoff` and before the start of every delivery still stored.
pub(crate) async fn drop_expired(pool: &PgPool, cutoff: i64) -> Result<Dropped> {
    let mut dropped = Dropped::default();
    let deliveries = list(pool, "deliveries").await?;
    let changes = list(pool, "changes").await?;
    for p in deliveries
        .iter()
        .filter(|p| is_day(p) && p.to.is_some_and(|to| to <= cutoff))
    {
        let twin = changes
            .iter()
            .find(|c| c.from == p.from && c.to == p.to && is_day(c));
        // Looked at without a lock first: a day kept by pending work is
        // not locked every minute.
        if still_needed(pool, &p.name, cutoff).await? {
            continue;
        }
        let mut tx = begin_short_waits(pool).await?;
        // Then locked and looked at again, so no redelivery can make a row
        // pending between the look and the drop. A lock not had in time is
        // tried again at the next pass.
        let locked = sqlx::query(AssertSqlSafe(format!(
            "LOCK TABLE \"{}\" IN ACCESS EXCLUSIVE MODE",
            p.name
        )))
        .execute(&mut *tx)
        .await;
        match locked {
            Err(sqlx::Error::Database(err))
                if err.code().as_deref() == Some(LOCK_NOT_AVAILABLE) =>
            {
                tx.rollback().await?;
                continue;
            }
            other => other?,
        };
        if still_needed(&mut *tx, &p.name, cutoff).await? {
            tx.rollback().await?;
            continue;
        }
        sqlx::query(AssertSqlSafe(format!("DROP TABLE \"{}\"", p.name)))
            .execute(&mut *tx)
            .await?;
        dropped.partitions.push(p.name.clone());
        if let Some(twin) = twin {
            sqlx::query(AssertSqlSafe(format!("DROP TABLE \"{}\"", twin.name)))
                .execute(&mut *tx)
                .await?;
            dropped.partitions.push(twin.name.clone());
        }
        tx.commit().await?;
    }
    // What was stored before the upgrade goes once it is empty (pruned row
    // by row); its changes are referred to by no other deliveries.
    if let Some(before) = deliveries.iter().find(|p| p.from.is_none() && !p.default) {
        let mut tx = begin_short_waits(pool).await?;
        sqlx::query(AssertSqlSafe(format!(
            "LOCK TABLE \"{}\" IN ACCESS EXCLUSIVE MODE",
            before.name
        )))
        .execute(&mut *tx)
        .await?;
        let empty: bool = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT NOT EXISTS (SELECT 1 FROM \"{}\")",
            before.name
        )))
        .fetch_one(&mut *tx)
        .await?;
        if empty {
            let mut gone = vec![before.name.clone()];
            gone.extend(
                changes
                    .iter()
                    .filter(|c| c.from.is_none() && !c.default)
                    .map(|c| c.name.clone()),
            );
            for name in &gone {
                sqlx::query(AssertSqlSafe(format!("DROP TABLE \"{name}\"")))
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            dropped.partitions.extend(gone);
        }
    }
    let floor = oldest_delivery_floor(pool).await?;
    for p in list(pool, "attempts").await?.iter().filter(|p| !p.default) {
        let Some(to) = p.to else { continue };
        if to > cutoff || to > floor {
            continue;
        }
        let mut tx = begin_short_waits(pool).await?;
        sqlx::query(AssertSqlSafe(format!("DROP TABLE \"{}\"", p.name)))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        dropped.partitions.push(p.name.clone());
    }
    Ok(dropped)
}

/// Whether the `deliveries` partition `name` holds a pending delivery or
/// one finished at or after `cutoff`: two look-ups through indexes (the
/// partial one of pending rows, the BRIN of completion times), not a scan
/// of the day. A finished delivery always has `completed_at`.
async fn still_needed<'e, E>(executor: E, name: &str, cutoff: i64) -> Result<bool>
where
    E: sqlx::PgExecutor<'e>,
{
    Ok(sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT EXISTS (SELECT 1 FROM \"{name}\" WHERE status = 'pending') \
         OR EXISTS (SELECT 1 FROM \"{name}\" WHERE completed_at >= $1)"
    )))
    .bind(cutoff)
    .fetch_one(executor)
    .await?)
}

/// A time no stored delivery was created before: the start of the oldest
/// day partition of `deliveries`; the oldest row of the default partition
/// (small: it holds only what no day covered); the beginning of time while
/// the partition from before the upgrade holds any row.
async fn oldest_delivery_floor(pool: &PgPool) -> Result<i64> {
    let mut floor = i64::MAX;
    for p in list(pool, "deliveries").await? {
        let oldest: Option<i64> = if is_day(&p) {
            p.from
        } else if p.default {
            sqlx::query_scalar(AssertSqlSafe(format!(
                "SELECT min(created_at) FROM \"{}\"",
                p.name
            )))
            .fetch_one(pool)
            .await?
        } else {
            let any: bool = sqlx::query_scalar(AssertSqlSafe(format!(
                "SELECT EXISTS (SELECT 1 FROM \"{}\")",
                p.name
            )))
            .fetch_one(pool)
            .await?;
            any.then_some(i64::MIN)
        };
        if let Some(oldest) = oldest {
            floor = floor.min(oldest);
        }
    }
    Ok(floor)
}
