//! `deliveries`: the durable queue, leased with `FOR UPDATE SKIP LOCKED` on
//! PostgreSQL so several gateways share it.
//!
//! A lease sets `lease_until` and `lease_owner`, which no index covers (on
//! PostgreSQL the update is HOT: no index writes). Leased rows are not due
//! until the lease ends; if the owner dies they become due again then. Every
//! completion is fenced on `(owner, lease end)`, so a process whose lease was
//! taken over cannot overwrite the new owner's work.

use sqlx::AssertSqlSafe;

use super::{Backend, Error, Result, Store, now_ms, on_pool};
use crate::envelope::{Action, ChangePayload, EventIds, SubscriptionView, render};
use crate::model::{ChangeId, DeliveryId, DeliveryStatus, ReceiverId, SubscriptionId};

/// How many due deliveries to lease for one receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseRequest {
    /// Receiver.
    pub receiver_id: ReceiverId,
    /// At most this many.
    pub limit: i32,
    /// Per-row ordering: skip a delivery while an earlier one for the same row is pending.
    pub ordered: bool,
    /// The lease ends at this time (ms).
    pub lease_until: i64,
}

/// A leased delivery with everything needed to render its body.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct LeasedDelivery {
    /// The delivery's id: the body's `event_id`.
    pub id: DeliveryId,
    /// The change it delivers.
    pub change_id: ChangeId,
    /// The subscription that matched (None for a test ping).
    pub subscription_id: Option<SubscriptionId>,
    /// Where it goes.
    pub receiver_id: ReceiverId,
    /// Attempts made so far.
    pub attempts: i32,
    /// Attempts made before the last manual redelivery (the retry
    /// schedule starts again from there).
    pub retry_base: i32,
    /// The lease's end (ms): the fencing token of its completion.
    pub lease_until: i64,
    /// When fan-out created it (ms).
    pub created_at: i64,
    /// The change.
    #[sqlx(flatten)]
    pub payload: ChangePayload,
    /// What its subscription asks for beyond the diff.
    #[sqlx(flatten)]
    pub view: SubscriptionView,
    /// The revision of the receiver's plugin at lease time (None: no
    /// plugin). The delivery is sent only once transformed by exactly it.
    pub plugin_revision: Option<String>,
}

impl LeasedDelivery {
    /// The body, before any plugin.
    pub(crate) fn body(&self) -> String {
        render(
            EventIds {
                event_id: self.id.get(),
                subscription_id: self.subscription_id.map(SubscriptionId::get),
            },
            &self.payload,
            &self.view,
        )
    }
}

/// How an attempt (or a decision not to attempt) ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Completion {
    /// The receiver answered with its expected status.
    Succeeded,
    /// Try again at this time (ms).
    Retry {
        /// Next attempt (ms).
        at: i64,
    },
    /// No more attempts.
    Failed,
    /// A plugin dropped the event.
    Filtered,
    /// A plugin failed and the receiver wants that final.
    PluginError,
    /// Not attempted (receiver paused, shutdown, plugin not loaded…): due
    /// again at this time, attempts unchanged. [`Finished::last_error`]
    /// says why when it is set; when it is `None` the delivery keeps the
    /// error of its last attempt.
    Released {
        /// When it is due again (ms).
        at: i64,
    },
}

/// One attempt for the audit trail.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AttemptRecord {
    /// 1-based attempt number.
    pub attempt: i32,
    /// Started (ms).
    pub started_at: i64,
    /// Duration, ms.
    pub duration_ms: i32,
    /// URL posted to.
    pub request_url: String,
    /// Request headers (JSON object; secrets masked).
    pub request_headers: String,
    /// Request body.
    pub request_body: Option<String>,
    /// Response status.
    pub response_status: Option<i32>,
    /// First bytes of the response body.
    pub response_body: Option<String>,
    /// `succeeded`, `failed`, `filtered`, `plugin_error`.
    pub outcome: String,
    /// `timeout`, `connect`, `tls`, `status`, `ssrf`, `plugin`, …
    pub error_class: Option<String>,
    /// The error, in words.
    pub error: Option<String>,
}

/// A finished lease.
#[derive(Debug, Clone, PartialEq)]
pub struct Finished {
    /// Delivery.
    pub delivery_id: DeliveryId,
    /// The lease's end (fencing token).
    pub lease_until: i64,
    /// What happened.
    pub completion: Completion,
    /// Last response status.
    pub last_status: Option<i32>,
    /// Last error.
    pub last_error: Option<String>,
    /// The attempt, if one was made.
    pub attempt: Option<AttemptRecord>,
}

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

impl EventRow {
    /// The body sent: as recorded, or rendered again when the audit trail
    /// left it out because it is reproducible.
    pub(crate) fn sent_body(&self, recorded: Option<&str>) -> String {
        match recorded {
            Some(body) => body.to_string(),
            None => render(
                EventIds {
                    event_id: self.id.get(),
                    subscription_id: self.subscription_id.map(SubscriptionId::get),
                },
                &self.payload,
                &self.view,
            ),
        }
    }
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

const EVENT_SELECT: &str = "SELECT d.id, d.change_id, d.subscription_id, d.receiver_id, d.status, d.attempts, \
    d.next_attempt_at, d.last_status, d.last_error, d.created_at, d.updated_at, d.completed_at, c.resource, \
    c.action, c.row_id, c.transaction_id, c.occurred_at, a.request_body AS request_data, \
    a.response_status, a.response_body AS response_data, c.etag, c.old, c.new, c.record, c.related, \
    (SELECT s.include_full_record FROM subscriptions s WHERE s.id = d.subscription_id) AS include_full_record, \
    (SELECT s.expand FROM subscriptions s WHERE s.id = d.subscription_id) AS expand \
    FROM deliveries d JOIN changes c ON c.id = d.change_id \
    LEFT JOIN attempts a ON a.id = (SELECT MAX(x.id) FROM attempts x WHERE x.delivery_id = d.id)";

/// Joins each delivery `d` to its change `c` by primary key, always
/// (PostgreSQL): a plain join may hash a million-row `changes` table for a
/// lease of a hundred rows once the backlog grew.
pub(super) const CHANGE_BY_ID: &str =
    "CROSS JOIN LATERAL (SELECT * FROM changes x WHERE x.id = d.change_id) c";

/// The columns of a [`LeasedDelivery`], from `deliveries d` and [`CHANGE_BY_ID`].
pub(super) const LEASED_COLUMNS: &str = "d.id, d.change_id, d.subscription_id, d.receiver_id, d.attempts, d.retry_base, \
    d.lease_until, d.created_at, c.resource, c.action, c.row_id, c.transaction_id, \
    c.occurred_at, c.etag, c.old, c.new, c.record, c.related, \
    (SELECT s.include_full_record FROM subscriptions s WHERE s.id = d.subscription_id) AS include_full_record, \
    (SELECT s.expand FROM subscriptions s WHERE s.id = d.subscription_id) AS expand, \
    (SELECT p.revision FROM plugins p WHERE p.receiver_id = d.receiver_id) AS plugin_revision";

/// Reads leased deliveries by id (SQLite), oldest first.
pub(super) async fn leased_rows_sqlite(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    ids: &[DeliveryId],
) -> Result<Vec<LeasedDelivery>> {
    let mut rows = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(500) {
        let placeholders = (1..=chunk.len())
            .map(|i| format!("${i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT {LEASED_COLUMNS} FROM deliveries d JOIN changes c ON c.id = d.change_id \
             WHERE d.id IN ({placeholders}) ORDER BY d.id"
        );
        let mut q = sqlx::query_as::<_, LeasedDelivery>(AssertSqlSafe(sql.as_str()));
        for id in chunk {
            q = q.bind(id);
        }
        rows.extend(q.fetch_all(&mut **tx).await?);
    }
    Ok(rows)
}

impl Store {
    /// Leases due deliveries, at most `limit` per receiver, oldest first.
    pub async fn lease(
        &self,
        owner: &str,
        now: i64,
        requests: &[LeaseRequest],
    ) -> Result<Vec<LeasedDelivery>> {
        let requests: Vec<&LeaseRequest> = requests.iter().filter(|r| r.limit > 0).collect();
        if requests.is_empty() {
            return Ok(Vec::new());
        }
        match self.backend() {
            Backend::Postgres(main) => {
                let pool = self.lease_pool().unwrap_or(main);
                let sql = format!(
                    "WITH budget AS (SELECT * FROM unnest($1::bigint[], $2::int[], $3::bool[], $4::bigint[]) \
                       AS b(receiver_id, n, ordered, lease_until)), \
                     picked AS (SELECT p.id FROM budget b CROSS JOIN LATERAL ( \
                       SELECT d.id FROM deliveries d \
                       WHERE d.receiver_id = b.receiver_id AND d.status = 'pending' AND d.next_attempt_at <= $5 \
                         AND d.lease_until <= $5 \
                         AND (NOT b.ordered OR NOT EXISTS (SELECT 1 FROM deliveries e WHERE e.receiver_id = d.receiver_id \
                           AND e.status = 'pending' AND e.order_key = d.order_key AND e.id < d.id)) \
                       ORDER BY d.next_attempt_at, d.id LIMIT b.n FOR UPDATE OF d SKIP LOCKED) p), \
                     leased AS (UPDATE deliveries d SET lease_owner = $6, \
                       lease_until = (SELECT b.lease_until FROM budget b WHERE b.receiver_id = d.receiver_id) \
                     WHERE d.id = ANY(ARRAY(SELECT id FROM picked)) RETURNING d.*) \
                     SELECT {LEASED_COLUMNS} FROM leased d {CHANGE_BY_ID}"
                );
                let rows = sqlx::query_as::<_, LeasedDelivery>(AssertSqlSafe(sql.as_str()))
                    .bind(requests.iter().map(|r| r.receiver_id).collect::<Vec<_>>())
                    .bind(requests.iter().map(|r| r.limit).collect::<Vec<_>>())
                    .bind(requests.iter().map(|r| r.ordered).collect::<Vec<_>>())
                    .bind(requests.iter().map(|r| r.lease_until).collect::<Vec<_>>())
                    .bind(now)
                    .bind(owner)
                    .fetch_all(pool)
                    .await?;
                Ok(rows)
            }
            Backend::Sqlite(pool) => {
                let mut tx = pool.begin().await?;
                let mut ids: Vec<DeliveryId> = Vec::new();
                for r in requests {
                    let picked: Vec<DeliveryId> = sqlx::query_scalar(
                        "UPDATE deliveries SET lease_until = $4, lease_owner = $5 WHERE id IN ( \
                           SELECT d.id FROM deliveries d WHERE d.receiver_id = $1 AND d.status = 'pending' \
                           AND d.next_attempt_at <= $2 AND d.lease_until <= $2 AND ($6 = FALSE OR NOT EXISTS (SELECT 1 FROM deliveries e \
                             WHERE e.receiver_id = d.receiver_id AND e.status = 'pending' AND e.order_key = d.order_key \
                             AND e.id < d.id)) \
                           ORDER BY d.next_attempt_at, d.id LIMIT $3) RETURNING id",
                    )
                    .bind(r.receiver_id)
                    .bind(now)
                    .bind(r.limit)
                    .bind(r.lease_until)
                    .bind(owner)
                    .bind(r.ordered)
                    .fetch_all(&mut *tx)
                    .await?;
                    ids.extend(picked);
                }
                let rows = leased_rows_sqlite(&mut tx, &ids).await?;
                tx.commit().await?;
                Ok(rows)
            }
        }
    }

    /// Records finished leases and their attempts in one transaction.
    /// Completions whose lease was taken over are ignored (their attempts are
    /// still recorded: the audit trail shows everything that was sent).
    pub async fn finish(&self, owner: &str, batch: &[Finished]) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let now = now_ms();
        let rows: Vec<FinishRow> = batch.iter().map(|f| FinishRow::from(f, now)).collect();
        let attempts: Vec<(DeliveryId, &AttemptRecord)> = batch
            .iter()
            .filter_map(|f| f.attempt.as_ref().map(|a| (f.delivery_id, a)))
            .collect();
        match self.backend() {
            Backend::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                // The update below joins the batch (`unnest`) to the rows it
                // names. As a nested loop that rescans the whole batch for
                // every row (O(n²), whole-row copies included): 175 ms per
                // 500 rows once the planner picked it at a 100,000-row
                // backlog. A hash join over the primary-key lookups is linear.
                sqlx::query("SET LOCAL enable_nestloop = off")
                    .execute(&mut *tx)
                    .await?;
                // Every delivery of the batch is updated (a completion whose
                // lease was taken over rewrites its row unchanged), so each
                // one is row-locked before its attempt is written: a
                // receiver deletion running meanwhile waits for this
                // transaction and then deletes the attempts with the
                // deliveries, or ran first and the attempts are not written.
                // Either way no attempt outlives its delivery.
                sqlx::query(AssertSqlSafe(PG_FINISH.as_str()))
                    .bind(owner)
                    .bind(now)
                    .bind(rows.iter().map(|r| r.id).collect::<Vec<_>>())
                    .bind(rows.iter().map(|r| r.lease_until).collect::<Vec<_>>())
                    .bind(rows.iter().map(|r| r.status.as_str()).collect::<Vec<_>>())
                    .bind(rows.iter().map(|r| r.inc).collect::<Vec<_>>())
                    .bind(rows.iter().map(|r| r.next_at).collect::<Vec<_>>())
                    .bind(rows.iter().map(|r| r.last_status).collect::<Vec<_>>())
                    .bind(
                        rows.iter()
                            .map(|r| r.last_error.clone())
                            .collect::<Vec<_>>(),
                    )
                    .bind(rows.iter().map(|r| r.completed_at).collect::<Vec<_>>())
                    .bind(rows.iter().map(|r| r.keep_error).collect::<Vec<_>>())
                    .execute(&mut *tx)
                    .await?;
                if !attempts.is_empty() {
                    insert_attempts_pg(&mut tx, &attempts).await?;
                }
                tx.commit().await?;
            }
            Backend::Sqlite(pool) => {
                let mut tx = pool.begin().await?;
                for r in &rows {
                    sqlx::query(
                        "UPDATE deliveries SET status = $4, attempts = attempts + $5, next_attempt_at = $6, \
                         lease_until = 0, lease_owner = NULL, last_status = COALESCE($7, last_status), \
                         last_error = CASE WHEN $11 THEN last_error ELSE $8 END, \
                         completed_at = $9, updated_at = $10 \
                         WHERE id = $1 AND lease_owner = $2 AND lease_until = $3",
                    )
                    .bind(r.id)
                    .bind(owner)
                    .bind(r.lease_until)
                    .bind(r.status)
                    .bind(r.inc)
                    .bind(r.next_at)
                    .bind(r.last_status)
                    .bind(&r.last_error)
                    .bind(r.completed_at)
                    .bind(now)
                    .bind(r.keep_error)
                    .execute(&mut *tx)
                    .await?;
                }
                for (delivery_id, a) in &attempts {
                    insert_attempt_sqlite(&mut tx, *delivery_id, a).await?;
                }
                tx.commit().await?;
            }
        }
        Ok(())
    }

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
    pub(crate) async fn events_page(
        &self,
        filter: &EventFilter,
        before: i64,
        limit: i64,
    ) -> Result<Vec<EventRow>> {
        let sql = format!(
            "{EVENT_SELECT} WHERE ($1 = 0 OR d.id < $1) AND ($2 IS NULL OR d.receiver_id = $2) \
             AND ($3 IS NULL OR d.subscription_id = $3) AND ($4 IS NULL OR d.status = $4) \
             AND ($5 IS NULL OR c.resource = $5) AND ($6 IS NULL OR c.action = $6) \
             AND ($7 IS NULL OR d.created_at >= $7) AND ($8 IS NULL OR d.created_at < $8) \
             ORDER BY d.id DESC LIMIT $9"
        );
        Ok(on_pool!(self, |pool| sqlx::query_as::<_, EventRow>(
            AssertSqlSafe(sql.as_str())
        )
        .bind(before)
        .bind(filter.receiver_id)
        .bind(filter.subscription_id)
        .bind(filter.status)
        .bind(&filter.resource)
        .bind(filter.action.map(Action::api_name))
        .bind(filter.from_ms)
        .bind(filter.to_ms)
        .bind(limit)
        .fetch_all(pool)
        .await)?)
    }

    /// Number of events matching a filter.
    pub(crate) async fn event_count(&self, filter: &EventFilter) -> Result<i64> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM deliveries d JOIN changes c ON c.id = d.change_id \
             WHERE ($1 IS NULL OR d.receiver_id = $1) AND ($2 IS NULL OR d.subscription_id = $2) \
             AND ($3 IS NULL OR d.status = $3) AND ($4 IS NULL OR c.resource = $4) AND ($5 IS NULL OR c.action = $5) \
             AND ($6 IS NULL OR d.created_at >= $6) AND ($7 IS NULL OR d.created_at < $7)"
        )
        .bind(filter.receiver_id)
        .bind(filter.subscription_id)
        .bind(filter.status)
        .bind(&filter.resource)
        .bind(filter.action.map(Action::api_name))
        .bind(filter.from_ms)
        .bind(filter.to_ms)
        .fetch_one(pool)
        .await
        })?)
    }

    /// Makes a finished delivery pending again, due now, with a fresh retry budget.
    pub(crate) async fn retry_delivery(&self, id: DeliveryId) -> Result<EventRow> {
        let now = now_ms();
        let done = on_pool!(self, |pool| {
            sqlx::query(
            "UPDATE deliveries SET status = 'pending', next_attempt_at = $2, retry_base = attempts, \
             completed_at = NULL, lease_until = 0, lease_owner = NULL, updated_at = $2 WHERE id = $1 AND status <> 'pending'"
        )
        .bind(id)
        .bind(now)
        .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        let row = self.event(id).await?.ok_or(Error::NotFound {
            entity: "event",
            id: id.get(),
        })?;
        if done == 0 {
            return Err(Error::Duplicate(format!(
                "event {id} is already pending; it will be attempted at its next retry"
            )));
        }
        Ok(row)
    }

    /// Makes up to `limit` failed deliveries of a receiver, created in
    /// `[from, to)`, with ids above `after`, pending again. Returns their ids.
    pub(crate) async fn redeliver_failed(
        &self,
        receiver_id: ReceiverId,
        from: i64,
        to: i64,
        after: i64,
        limit: i64,
    ) -> Result<Vec<DeliveryId>> {
        let now = now_ms();
        let ids: Vec<DeliveryId> = on_pool!(self, |pool| {
            sqlx::query_scalar::<_, DeliveryId>(
            "UPDATE deliveries SET status = 'pending', next_attempt_at = $5, retry_base = attempts, \
             completed_at = NULL, lease_until = 0, lease_owner = NULL, updated_at = $5 WHERE id IN ( \
               SELECT id FROM deliveries WHERE receiver_id = $1 AND status = 'failed' AND created_at >= $2 \
               AND created_at < $3 AND id > $4 ORDER BY id LIMIT $6) RETURNING id"
        )
        .bind(receiver_id)
        .bind(from)
        .bind(to)
        .bind(after)
        .bind(now)
        .bind(limit)
        .fetch_all(pool)
        .await
        })?;
        Ok(ids)
    }

    /// Failed deliveries of a receiver created in `[from, to)`.
    pub(crate) async fn failed_count(
        &self,
        receiver_id: ReceiverId,
        from: i64,
        to: i64,
    ) -> Result<i64> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM deliveries WHERE receiver_id = $1 AND status = 'failed' AND created_at >= $2 AND created_at < $3"
        )
        .bind(receiver_id)
        .bind(from)
        .bind(to)
        .fetch_one(pool)
        .await
        })?)
    }

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
    /// any more; at most `limit` of each per call. Retention counts from
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
            Backend::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                let gone: Vec<DeliveryId> = sqlx::query_scalar(
                    "DELETE FROM deliveries WHERE id IN (SELECT id FROM deliveries \
                     WHERE completed_at < $1 AND status <> 'pending' LIMIT $2) RETURNING id",
                )
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
                gone.len() as u64
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
        on_pool!(self, |pool| sqlx::query(
            "DELETE FROM changes WHERE id IN (SELECT c.id FROM changes c WHERE c.created_at < $1 \
             AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.change_id = c.id) LIMIT $2)"
        )
        .bind(cutoff)
        .bind(limit)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
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

/// The recorder's update (PostgreSQL). A row whose lease is still this
/// process's (`lease_owner = $1`, same lease end) takes the outcome; the
/// others are rewritten unchanged, which row-locks every delivery of the
/// batch before its attempt is written (see [`Store::finish`]).
static PG_FINISH: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let mine = "(d.lease_owner = $1 AND d.lease_until = u.lease_until)";
    format!(
        "UPDATE deliveries d SET \
         status = CASE WHEN {mine} THEN u.status ELSE d.status END, \
         attempts = CASE WHEN {mine} THEN d.attempts + u.inc ELSE d.attempts END, \
         next_attempt_at = CASE WHEN {mine} THEN u.next_at ELSE d.next_attempt_at END, \
         last_status = CASE WHEN {mine} THEN COALESCE(u.last_status, d.last_status) ELSE d.last_status END, \
         last_error = CASE WHEN {mine} AND NOT u.keep_error THEN u.last_error ELSE d.last_error END, \
         completed_at = CASE WHEN {mine} THEN u.completed_at ELSE d.completed_at END, \
         updated_at = CASE WHEN {mine} THEN $2 ELSE d.updated_at END, \
         lease_owner = CASE WHEN {mine} THEN NULL ELSE d.lease_owner END, \
         lease_until = CASE WHEN {mine} THEN 0 ELSE d.lease_until END \
         FROM unnest($3::bigint[], $4::bigint[], $5::text[], $6::int[], $7::bigint[], $8::int[], $9::text[], \
         $10::bigint[], $11::bool[]) AS u(id, lease_until, status, inc, next_at, last_status, last_error, completed_at, keep_error) \
         WHERE d.id = ANY($3) AND d.id = u.id"
    )
});

struct FinishRow {
    id: DeliveryId,
    lease_until: i64,
    status: DeliveryStatus,
    inc: i32,
    next_at: i64,
    last_status: Option<i32>,
    last_error: Option<String>,
    /// A release without a reason keeps the error of the last attempt.
    keep_error: bool,
    completed_at: Option<i64>,
}

impl FinishRow {
    fn from(f: &Finished, now: i64) -> Self {
        let attempted = i32::from(f.attempt.is_some());
        let (status, next_at, completed_at) = match f.completion {
            Completion::Succeeded => (DeliveryStatus::Succeeded, now, Some(now)),
            Completion::Retry { at } => (DeliveryStatus::Pending, at, None),
            Completion::Failed => (DeliveryStatus::Failed, now, Some(now)),
            Completion::Filtered => (DeliveryStatus::Filtered, now, Some(now)),
            Completion::PluginError => (DeliveryStatus::PluginError, now, Some(now)),
            Completion::Released { at } => (DeliveryStatus::Pending, at, None),
        };
        FinishRow {
            id: f.delivery_id,
            lease_until: f.lease_until,
            status,
            inc: attempted,
            next_at,
            last_status: f.last_status,
            last_error: f.last_error.clone(),
            keep_error: matches!(f.completion, Completion::Released { .. })
                && f.last_error.is_none(),
            completed_at,
        }
    }
}

/// Records attempts of deliveries that still exist (a receiver deleted
/// meanwhile took its deliveries along; there is no foreign key to refuse
/// the rest, see migration 0002).
async fn insert_attempts_pg(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    attempts: &[(DeliveryId, &AttemptRecord)],
) -> Result<(), sqlx::Error> {
    let col = |f: fn(&AttemptRecord) -> Option<String>| {
        attempts.iter().map(|(_, a)| f(a)).collect::<Vec<_>>()
    };
    sqlx::query(
        "INSERT INTO attempts (delivery_id, attempt, started_at, duration_ms, request_url, request_headers, \
         request_body, response_status, response_body, outcome, error_class, error) \
         SELECT u.* FROM unnest($1::bigint[], $2::int[], $3::bigint[], $4::int[], $5::text[], $6::text[], $7::text[], \
         $8::int[], $9::text[], $10::text[], $11::text[], $12::text[]) \
         AS u(delivery_id, attempt, started_at, duration_ms, request_url, request_headers, request_body, \
         response_status, response_body, outcome, error_class, error) \
         WHERE EXISTS (SELECT 1 FROM deliveries d WHERE d.id = u.delivery_id)",
    )
    .bind(attempts.iter().map(|(id, _)| *id).collect::<Vec<_>>())
    .bind(attempts.iter().map(|(_, a)| a.attempt).collect::<Vec<_>>())
    .bind(attempts.iter().map(|(_, a)| a.started_at).collect::<Vec<_>>())
    .bind(attempts.iter().map(|(_, a)| a.duration_ms).collect::<Vec<_>>())
    .bind(col(|a| Some(a.request_url.clone())))
    .bind(col(|a| Some(a.request_headers.clone())))
    .bind(col(|a| a.request_body.clone()))
    .bind(attempts.iter().map(|(_, a)| a.response_status).collect::<Vec<_>>())
    .bind(col(|a| a.response_body.clone()))
    .bind(col(|a| Some(a.outcome.clone())))
    .bind(col(|a| a.error_class.clone()))
    .bind(col(|a| a.error.clone()))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Records an attempt if its delivery still exists (a receiver deleted
/// meanwhile took its deliveries along; its foreign key would otherwise fail
/// the whole batch, again and again).
async fn insert_attempt_sqlite(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    delivery_id: DeliveryId,
    a: &AttemptRecord,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO attempts (delivery_id, attempt, started_at, duration_ms, request_url, request_headers, \
         request_body, response_status, response_body, outcome, error_class, error) \
         SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12 \
         WHERE EXISTS (SELECT 1 FROM deliveries WHERE id = $1)",
    )
    .bind(delivery_id)
    .bind(a.attempt)
    .bind(a.started_at)
    .bind(a.duration_ms)
    .bind(&a.request_url)
    .bind(&a.request_headers)
    .bind(&a.request_body)
    .bind(a.response_status)
    .bind(&a.response_body)
    .bind(&a.outcome)
    .bind(&a.error_class)
    .bind(&a.error)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
