//! `redelivery_jobs`: bulk redelivery of failed events, with progress.

use sqlx::AssertSqlSafe;

use super::{Result, Store, now_ms, on_pool};
use crate::model::ReceiverId;

/// A bulk redelivery.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub(crate) struct RedeliveryJobRow {
    pub(crate) id: i64,
    pub(crate) receiver_id: ReceiverId,
    /// Range start (ms).
    pub(crate) from_ms: i64,
    /// Range end (ms, exclusive).
    pub(crate) to_ms: i64,
    /// Failed events found.
    pub(crate) total: i32,
    /// Events made pending again so far.
    pub(crate) done: i32,
    /// Only events of this resource (`None`: every resource).
    pub(crate) resource: Option<String>,
    /// `running` or `finished`.
    pub(crate) status: String,
    /// Created (ms).
    pub(crate) created_at: i64,
    /// Finished (ms).
    pub(crate) finished_at: Option<i64>,
}

const COLUMNS: &str =
    "id, receiver_id, from_ms, to_ms, resource, total, done, status, created_at, finished_at";

/// Which failed events a redelivery sends again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RedeliveryRange {
    /// Whose.
    pub(crate) receiver_id: ReceiverId,
    /// Created at or after (ms).
    pub(crate) from_ms: i64,
    /// Created before (ms).
    pub(crate) to_ms: i64,
    /// Only this resource's.
    pub(crate) resource: Option<String>,
}

impl RedeliveryJobRow {
    /// The events this job sends again.
    pub(crate) fn range(&self) -> RedeliveryRange {
        RedeliveryRange {
            receiver_id: self.receiver_id,
            from_ms: self.from_ms,
            to_ms: self.to_ms,
            resource: self.resource.clone(),
        }
    }
}

impl Store {
    /// Starts a job.
    pub(crate) async fn insert_redelivery_job(
        &self,
        range: &RedeliveryRange,
        total: i32,
    ) -> Result<RedeliveryJobRow> {
        let sql = format!(
            "INSERT INTO redelivery_jobs (receiver_id, from_ms, to_ms, resource, total, done, status, created_at) \
             VALUES ($1, $2, $3, $4, $5, 0, 'running', $6) RETURNING {COLUMNS}"
        );
        Ok(on_pool!(self, |pool| {
            sqlx::query_as::<_, RedeliveryJobRow>(AssertSqlSafe(sql.as_str()))
                .bind(range.receiver_id)
                .bind(range.from_ms)
                .bind(range.to_ms)
                .bind(&range.resource)
                .bind(total)
                .bind(now_ms())
                .fetch_one(pool)
                .await
        })?)
    }

    /// Records progress; `finished` closes the job.
    pub(crate) async fn update_redelivery_job(
        &self,
        id: i64,
        done: i32,
        finished: bool,
    ) -> Result<()> {
        on_pool!(self, |pool| {
            sqlx::query(
            "UPDATE redelivery_jobs SET done = $2, status = CASE WHEN $3 THEN 'finished' ELSE status END, \
             finished_at = CASE WHEN $3 THEN $4 ELSE finished_at END WHERE id = $1"
        )
        .bind(id)
        .bind(done)
        .bind(finished)
        .bind(now_ms())
        .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        Ok(())
    }

    /// One job.
    pub(crate) async fn redelivery_job(&self, id: i64) -> Result<Option<RedeliveryJobRow>> {
        let sql = format!("SELECT {COLUMNS} FROM redelivery_jobs WHERE id = $1");
        Ok(on_pool!(self, |pool| {
            sqlx::query_as::<_, RedeliveryJobRow>(AssertSqlSafe(sql.as_str()))
                .bind(id)
                .fetch_optional(pool)
                .await
        })?)
    }
}
