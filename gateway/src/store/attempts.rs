//! `attempts`: the audit trail of every request sent.

use super::{Result, Store, on_pool};
use crate::model::DeliveryId;

/// One recorded attempt.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct AttemptRow {
    /// Id.
    pub id: i64,
    /// Delivery.
    pub delivery_id: DeliveryId,
    /// 1-based number.
    pub attempt: i32,
    /// Started (ms).
    pub started_at: i64,
    /// Duration, ms.
    pub duration_ms: i32,
    /// URL.
    pub request_url: String,
    /// Request headers (JSON object).
    pub request_headers: String,
    /// Request body.
    pub request_body: Option<String>,
    /// Response status.
    pub response_status: Option<i32>,
    /// First bytes of the response.
    pub response_body: Option<String>,
    /// Outcome.
    pub outcome: String,
    /// Error class.
    pub error_class: Option<String>,
    /// Error.
    pub error: Option<String>,
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
