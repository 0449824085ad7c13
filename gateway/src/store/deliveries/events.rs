//! The audit trail as the API reads it: one event per delivery, with its
//! change and its last attempt; and manual redelivery.

use sqlx::AssertSqlSafe;

use super::super::{Error, Result, Store, now_ms, on_pool};
use crate::envelope::{Action, ChangePayload, SubscriptionView};
use crate::model::{ChangeId, DeliveryId, DeliveryStatus, ReceiverId, SubscriptionId};
use crate::store::redelivery::RedeliveryRange;

/// Filters of `webhookEvents`.
#[derive(Debug, Clone, Default)]
pub(crate) struct EventFilter {
    pub(crate) receiver_id: Option<ReceiverId>,
    pub(crate) subscription_id: Option<SubscriptionId>,
    pub(crate) status: Option<DeliveryStatus>,
    pub(crate) resource: Option<String>,
    pub(crate) action: Option<Action>,
    /// Created at or after (ms).
    pub(crate) from_ms: Option<i64>,
    /// Created before (ms).
    pub(crate) to_ms: Option<i64>,
    /// The changed row's id (as text).
    pub(crate) row_id: Option<String>,
    /// Only events newer than this one (the console's live view).
    pub(crate) newer_than: Option<DeliveryId>,
}

/// A delivery as the API shows it, with its change and last attempt.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct EventRow {
    /// The delivery's id (`event_id`).
    pub id: DeliveryId,
    /// The change it delivers.
    pub change_id: ChangeId,
    /// The subscription that matched (None for a test ping).
    pub subscription_id: Option<SubscriptionId>,
    /// Where it goes.
    pub receiver_id: ReceiverId,
    /// Where it stands.
    pub status: DeliveryStatus,
    /// Attempts made.
    pub attempts: i32,
    /// When the next attempt is due (ms), while pending.
    pub next_attempt_at: i64,
    /// The last response status.
    pub last_status: Option<i32>,
    /// Why the last attempt failed, or why the delivery waits.
    pub last_error: Option<String>,
    /// Created by fan-out (ms).
    pub created_at: i64,
    /// Last changed (ms).
    pub updated_at: i64,
    /// Finished (ms).
    pub completed_at: Option<i64>,
    /// The change.
    #[sqlx(flatten)]
    pub payload: ChangePayload,
    /// What its subscription asks for beyond the diff.
    #[sqlx(flatten)]
    pub view: SubscriptionView,
    /// The last attempt's request body, when the audit trail stored it.
    pub request_data: Option<String>,
    /// The last attempt's response status.
    pub response_status: Option<i32>,
    /// The last attempt's response body (its first bytes).
    pub response_data: Option<String>,
}

/// A value bound to a numbered placeholder.
enum Bound<'a> {
    Int(i64),
    Text(&'a str),
}

/// The conditions of a filter: only those given, each with its placeholder
/// (`$1`, `$2`, … in order; both backends read them).
struct Conditions<'a> {
    clauses: Vec<String>,
    values: Vec<Bound<'a>>,
    needs_changes: bool,
}

impl<'a> Conditions<'a> {
    /// The next placeholder's number.
    fn next(&self) -> usize {
        self.values.len() + 1
    }

    /// `{column_op} $n`, bound to an integer.
    fn int(&mut self, column_op: &str, value: i64) {
        self.clauses.push(format!("{column_op} ${}", self.next()));
        self.values.push(Bound::Int(value));
    }

    /// `{column_op} $n`, bound to text.
    fn text(&mut self, column_op: &str, value: &'a str) {
        self.clauses.push(format!("{column_op} ${}", self.next()));
        self.values.push(Bound::Text(value));
    }

    /// The tables to read: deliveries, and their changes when a condition is on one.
    fn from(&self) -> &'static str {
        if self.needs_changes {
            "deliveries d JOIN changes c ON c.id = d.change_id AND c.created_at = d.created_at"
        } else {
            "deliveries d"
        }
    }

    /// The `WHERE` clause (`TRUE` when nothing filters).
    fn conditions(&self) -> String {
        if self.clauses.is_empty() {
            "TRUE".into()
        } else {
            self.clauses.join(" AND ")
        }
    }
}

impl EventFilter {
    /// This filter's conditions. The status and the action are written as
    /// literals (they are this crate's own fixed names, never input), so
    /// PostgreSQL can use the partial index of unsuccessful deliveries.
    fn conditions(&self) -> Conditions<'_> {
        let mut w = Conditions {
            clauses: Vec::new(),
            values: Vec::new(),
            needs_changes: false,
        };
        if let Some(id) = self.receiver_id {
            w.int("d.receiver_id =", id.get());
        }
        if let Some(id) = self.subscription_id {
            w.int("d.subscription_id =", id.get());
        }
        if let Some(status) = self.status {
            w.clauses.push(format!("d.status = '{}'", status.as_str()));
        }
        if let Some(from) = self.from_ms {
            w.int("d.created_at >=", from);
        }
        if let Some(to) = self.to_ms {
            w.int("d.created_at <", to);
        }
        if let Some(id) = self.newer_than {
            w.int("d.id >", id.get());
        }
        if let Some(resource) = &self.resource {
            w.needs_changes = true;
            w.text("c.resource =", resource);
        }
        if let Some(action) = self.action {
            w.needs_changes = true;
            w.clauses
                .push(format!("c.action = '{}'", action.api_name()));
        }
        if let Some(row_id) = &self.row_id {
            w.needs_changes = true;
            w.text("c.row_id =", row_id);
        }
        w
    }
}

const EVENT_SELECT: &str = "SELECT d.id, d.change_id, d.subscription_id, d.receiver_id, d.status, d.attempts, \
    d.next_attempt_at, d.last_status, d.last_error, d.created_at, d.updated_at, d.completed_at, c.resource, \
    c.action, c.row_id, c.transaction_id, c.occurred_at, a.request_body AS request_data, \
    a.response_status, a.response_body AS response_data, c.etag, c.old, c.new, c.record, c.related, \
    (SELECT s.include_full_record FROM subscriptions s WHERE s.id = d.subscription_id) AS include_full_record, \
    (SELECT s.expand FROM subscriptions s WHERE s.id = d.subscription_id) AS expand \
    FROM deliveries d JOIN changes c ON c.id = d.change_id AND c.created_at = d.created_at \
    LEFT JOIN attempts a ON a.id = (SELECT MAX(x.id) FROM attempts x WHERE x.delivery_id = d.id)";

impl Store {
    /// One event.
    pub async fn event(&self, id: DeliveryId) -> Result<Option<EventRow>> {
        let sql = format!("{EVENT_SELECT} WHERE d.id = $1");
        Ok(on_pool!(self, |pool| sqlx::query_as::<_, EventRow>(
            AssertSqlSafe(sql.as_str())
        )
        .bind(id)
        .fetch_optional(pool)
        .await)?)
    }

    /// A page of events, newest first, with ids below `before` (0: from the newest).
    ///
    /// The deliveries are chosen first (only the filters given become
    /// conditions, so each uses its index), then joined with their change
    /// and last attempt: 50 rows are joined, not every row in a time range.
    pub(crate) async fn events_page(
        &self,
        filter: &EventFilter,
        before: i64,
        limit: i64,
    ) -> Result<Vec<EventRow>> {
        let mut w = filter.conditions();
        if before != 0 {
            w.int("d.id <", before);
        }
        let from = w.from();
        let conditions = w.conditions();
        // A literal, not a parameter: PostgreSQL's generic plan for a bound
        // limit can pick a scan of every attempt. It is a number, never text.
        let limit = limit.max(1);
        let sql = format!(
            "{EVENT_SELECT} WHERE d.id IN (SELECT d.id FROM {from} WHERE {conditions} \
             ORDER BY d.id DESC LIMIT {limit}) ORDER BY d.id DESC"
        );
        Ok(on_pool!(self, |pool| {
            let mut query = sqlx::query_as::<_, EventRow>(AssertSqlSafe(sql.as_str()));
            for value in &w.values {
                query = match value {
                    Bound::Int(v) => query.bind(*v),
                    Bound::Text(v) => query.bind(*v),
                };
            }
            query.fetch_all(pool).await
        })?)
    }

    /// Number of events matching a filter.
    pub(crate) async fn event_count(&self, filter: &EventFilter) -> Result<i64> {
        let w = filter.conditions();
        let sql = format!("SELECT COUNT(*) FROM {} WHERE {}", w.from(), w.conditions());
        Ok(on_pool!(self, |pool| {
            let mut query = sqlx::query_scalar::<_, i64>(AssertSqlSafe(sql.as_str()));
            for value in &w.values {
                query = match value {
                    Bound::Int(v) => query.bind(*v),
                    Bound::Text(v) => query.bind(*v),
                };
            }
            query.fetch_one(pool).await
        })?)
    }

    /// Makes a finished delivery pending again, due now, with a fresh retry budget.
    pub(crate) async fn retry_delivery(&self, id: DeliveryId) -> Result<EventRow> {
        let now = now_ms();
        let select = format!("{EVENT_SELECT} WHERE d.id = $1");
        // One transaction: the event is read as this update left it. Due
        // now, it could otherwise be leased, sent and recorded by a
        // dispatcher between the two statements; the row lock holds the
        // lease off until the answer is read.
        let (done, row) = on_pool!(self, |pool| {
            async {
            let mut tx = pool.begin().await?;
            let done = sqlx::query(
                "UPDATE deliveries SET status = 'pending', next_attempt_at = $2, retry_base = attempts, \
                 completed_at = NULL, lease_until = 0, lease_owner = NULL, updated_at = $2 WHERE id = $1 AND status <> 'pending'",
            )
            .bind(id)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            let row = sqlx::query_as::<_, EventRow>(AssertSqlSafe(select.as_str()))
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok::<_, sqlx::Error>((done, row))
        }
        .await
        })?;
        let row = row.ok_or(Error::NotFound {
            entity: "event",
            id: id.get(),
        })?;
        if done == 0 {
            return Err(Error::Duplicate(format!(
                "event {id} is already pending; it will be attempted at its next retry"
            )));
        }
        self.lower_lease_floor(row.created_at);
        Ok(row)
    }

    /// Makes a batch of the range's failed deliveries (ids above `after`)
    /// pending again, due now, with a fresh retry budget; returns their ids.
    pub(crate) async fn redeliver_failed(
        &self,
        range: &RedeliveryRange,
        after: i64,
        limit: i64,
    ) -> Result<Vec<DeliveryId>> {
        let now = now_ms();
        let made_pending: Vec<(DeliveryId, i64)> = on_pool!(self, |pool| {
            sqlx::query_as::<_, (DeliveryId, i64)>(
            "UPDATE deliveries SET status = 'pending', next_attempt_at = $5, retry_base = attempts, \
             completed_at = NULL, lease_until = 0, lease_owner = NULL, updated_at = $5 WHERE id IN ( \
               SELECT d.id FROM deliveries d WHERE d.receiver_id = $1 AND d.status = 'failed' AND d.created_at >= $2 \
               AND d.created_at < $3 AND d.id > $4 AND ($7 IS NULL OR EXISTS \
               (SELECT 1 FROM changes c WHERE c.id = d.change_id AND c.created_at = d.created_at AND c.resource = $7)) ORDER BY d.id LIMIT $6) RETURNING id, created_at"
        )
        .bind(range.receiver_id)
        .bind(range.from_ms)
        .bind(range.to_ms)
        .bind(after)
        .bind(now)
        .bind(limit)
        .bind(&range.resource)
        .fetch_all(pool)
        .await
        })?;
        if let Some(oldest) = made_pending.iter().map(|(_, at)| *at).min() {
            self.lower_lease_floor(oldest);
        }
        Ok(made_pending.into_iter().map(|(id, _)| id).collect())
    }

    /// Failed deliveries in a redelivery's range.
    pub(crate) async fn failed_count(&self, range: &RedeliveryRange) -> Result<i64> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM deliveries d WHERE d.receiver_id = $1 AND d.status = 'failed' \
             AND d.created_at >= $2 AND d.created_at < $3 AND ($4 IS NULL OR EXISTS \
             (SELECT 1 FROM changes c WHERE c.id = d.change_id AND c.created_at = d.created_at AND c.resource = $4))"
        )
        .bind(range.receiver_id)
        .bind(range.from_ms)
        .bind(range.to_ms)
        .bind(&range.resource)
        .fetch_one(pool)
        .await
        })?)
    }
}
