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
    /// `running` or `finished`.
    pub(crate) status: String,
    /// Created (ms).
    pub(crate) created_at: i64,
    /// Finished (ms).
    pub(crate) finished_at: Option<i64>,
}

const COLUMNS: &str =
    "id, receiver_id, from_ms, to_ms, total, done, status, created_at, finished_at";

impl Store {
    /// Starts a job.
    pub(crate) async fn insert_redelivery_job(
        &self,
        receiver_id: ReceiverId,
        from: i64,
        to: i64,
        total: i32,
    ) -> Result<RedeliveryJobRow> {
        let sql = format!(
            "INSERT INTO redelivery_jobs (receiver_id, from_ms, to_ms, total, done, status, created_at) \
             VALUES ($1, $2, $3, $4, 0, 'running', $5) RETURNING {COLUMNS}"
        );
        Ok(on_pool!(self, |pool| {
            sqlx::query_as::<_, RedeliveryJobRow>(AssertSqlSafe(sql.as_str()))
                .bind(receiver_id)
                .bind(from)
                .bind(to)
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
