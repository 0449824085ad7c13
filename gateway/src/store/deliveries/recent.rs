//! The most recent attempts, for the console's health overview. Reads a
//! bounded window at the top of the attempts' primary key and looks up each
//! attempt's receiver by the deliveries' primary key (a join let PostgreSQL
//! hash the whole deliveries table), so its cost does not grow with the
//! audit trail.

use super::super::{Result, Store, on_pool};
use crate::model::ReceiverId;

/// One recent attempt, as the overview counts it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub(crate) struct RecentAttempt {
    /// Whose.
    pub(crate) receiver_id: ReceiverId,
    /// Started (ms).
    pub(crate) started_at: i64,
    /// How long it took (ms).
    pub(crate) duration_ms: i32,
    /// `succeeded`, `failed`, `filtered`, `plugin_error`.
    pub(crate) outcome: String,
    /// Why it failed.
    pub(crate) error: Option<String>,
}

impl Store {
    /// At most the `window` newest attempts, started at or after `since` (ms).
    pub(crate) async fn recent_attempts(
        &self,
        since: i64,
        window: i64,
    ) -> Result<Vec<RecentAttempt>> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as::<_, RecentAttempt>(
                "SELECT receiver_id, started_at, duration_ms, outcome, error FROM ( \
                 SELECT (SELECT d.receiver_id FROM deliveries d WHERE d.id = a.delivery_id) AS receiver_id, \
                 a.started_at, a.duration_ms, a.outcome, a.error FROM attempts a \
                 WHERE a.id > (SELECT COALESCE(MAX(id), 0) FROM attempts) - $2 AND a.started_at >= $1) w \
                 WHERE receiver_id IS NOT NULL",
            )
            .bind(since)
            .bind(window)
            .fetch_all(pool)
            .await
        })?)
    }
}
