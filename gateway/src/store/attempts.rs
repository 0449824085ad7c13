//! `attempts`: the audit trail of every request sent.

use super::deliveries::AttemptRecord;
use super::{Result, Store, on_pool};
use crate::model::DeliveryId;

/// One recorded attempt: what was written ([`AttemptRecord`]) and where.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct AttemptRow {
    /// Its id.
    pub id: i64,
    /// The delivery it belongs to.
    pub delivery_id: DeliveryId,
    /// The attempt.
    #[sqlx(flatten)]
    pub record: AttemptRecord,
}

impl Store {
    /// Attempts of one delivery, oldest first.
    pub async fn attempts(&self, delivery_id: DeliveryId) -> Result<Vec<AttemptRow>> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as::<_, AttemptRow>(
            "SELECT id, delivery_id, attempt, started_at, duration_ms, request_url, request_headers, request_body, \
             response_status, response_body, outcome, error_class, error FROM attempts WHERE delivery_id = $1 ORDER BY id"
        )
        .bind(delivery_id)
        .fetch_all(pool)
        .await
        })?)
    }
}
