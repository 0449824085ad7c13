//! `operational_subscriptions`, and the deliveries of operational events.

use super::{Result, Store, now_ms, on_pool};
use crate::model::{OperationalEventType, ReceiverId};

/// A receiver's subscription to operational events.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct OperationalSubscriptionRow {
    /// Its id.
    pub(crate) id: i64,
    /// The receiver that gets the events.
    pub(crate) receiver_id: ReceiverId,
    /// The kinds, as [`OperationalEventType::join`] writes them.
    pub(crate) event_types: String,
    /// Who created it.
    pub(crate) created_by: String,
    /// When (ms).
    pub(crate) created_at: i64,
}

impl OperationalSubscriptionRow {
    /// The kinds it gets.
    pub(crate) fn kinds(&self) -> Vec<OperationalEventType> {
        OperationalEventType::split(&self.event_types)
    }
}

const COLUMNS: &str = "id, receiver_id, event_types, created_by, created_at";

impl Store {
    /// Subscribes `receiver` to `kinds` (checked by the caller: not empty).
    pub(crate) async fn create_operational_subscription(
        &self,
        receiver: ReceiverId,
        kinds: &[OperationalEventType],
        created_by: &str,
    ) -> Result<OperationalSubscriptionRow> {
        let sql = format!(
            "INSERT INTO operational_subscriptions (receiver_id, event_types, created_by, created_at) \
             VALUES ($1, $2, $3, $4) RETURNING {COLUMNS}"
        );
        Ok(on_pool!(self, |pool| sqlx::query_as(sqlx::AssertSqlSafe(
            sql.as_str()
        ))
        .bind(receiver)
        .bind(OperationalEventType::join(kinds))
        .bind(created_by)
        .bind(now_ms())
        .fetch_one(pool)
        .await)?)
    }

    /// Deletes one; false when there was none with that id.
    pub(crate) async fn delete_operational_subscription(&self, id: i64) -> Result<bool> {
        let done = on_pool!(self, |pool| sqlx::query(
            "DELETE FROM operational_subscriptions WHERE id = $1"
        )
        .bind(id)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(done > 0)
    }

    /// Every operational subscription, or one receiver's, oldest first.
    pub(crate) async fn operational_subscriptions(
        &self,
        receiver: Option<ReceiverId>,
    ) -> Result<Vec<OperationalSubscriptionRow>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM operational_subscriptions \
             WHERE ($1 IS NULL OR receiver_id = $1) ORDER BY id"
        );
        Ok(on_pool!(self, |pool| sqlx::query_as(sqlx::AssertSqlSafe(
            sql.as_str()
        ))
        .bind(receiver)
        .fetch_all(pool)
        .await)?)
    }

    /// The active receivers subscribed to `kind`.
    pub(crate) async fn operational_receivers(
        &self,
        kind: OperationalEventType,
    ) -> Result<Vec<ReceiverId>> {
        Ok(on_pool!(self, |pool| sqlx::query_scalar(
            "SELECT DISTINCT o.receiver_id FROM operational_subscriptions o \
             JOIN receivers r ON r.id = o.receiver_id AND r.active = TRUE \
             WHERE ',' || o.event_types || ',' LIKE '%,' || $1 || ',%' ORDER BY o.receiver_id"
        )
        .bind(kind.wire_name())
        .fetch_all(pool)
        .await)?)
    }
}
