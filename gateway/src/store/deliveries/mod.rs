//! `deliveries`: the durable queue, leased with `FOR UPDATE SKIP LOCKED` on
//! PostgreSQL so several gateways share it.
//!
//! A lease sets `lease_until` and `lease_owner`, which no index covers (on
//! PostgreSQL the update is HOT: no index writes). Leased rows are not due
//! until the lease ends; if the owner dies they become due again then. Every
//! completion is fenced on `(owner, lease end)`, so a process whose lease was
//! taken over cannot overwrite the new owner's work.
//!
//! Here: what a lease is and how it is taken. The recorder's writes are in
//! [`finish`], the API's reads of the audit trail in [`events`], pruning and
//! queue gauges in [`upkeep`], the console's window of recent attempts in
//! [`recent`].

mod events;
mod finish;
mod recent;
mod upkeep;

pub(crate) use finish::{RECORDER_PLANNER, explain_finish};

use sqlx::AssertSqlSafe;

pub(crate) use events::EventFilter;
pub use events::EventRow;
pub(crate) use recent::RecentAttempt;

use super::{Backend, CLOCK_SKEW_MS, Result, Store};
use crate::envelope::{ChangePayload, EventIds, SubscriptionView, render};
use crate::model::{ChangeId, DeliveryId, ReceiverId, SubscriptionId};

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
#[derive(Debug, Clone, PartialEq, Default, sqlx::FromRow)]
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
    /// The delivery's creation (ms): the key of its partition.
    pub created_at: i64,
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
/// Joins each delivery `d` to its change `c` by primary key, always
/// (PostgreSQL): a plain join may hash a million-row `changes` table for a
/// lease of a hundred rows once the backlog grew. A change and its
/// deliveries share `created_at`, so the look-up reads one partition, and
/// none older than the lease floor (`$7`). `LIMIT 1` keeps the look-up a
/// look-up: without it PostgreSQL flattens the subquery into a join, and
/// the generic plan of the prepared statement (the floor unknown when it
/// is planned) merge-joined the leased rows against every partition of
/// `changes`, sorted: 0.7 s per lease on a store holding a million changes.
pub(super) const CHANGE_BY_ID: &str = "CROSS JOIN LATERAL (SELECT * FROM changes x \
     WHERE x.id = d.change_id AND x.created_at = d.created_at AND x.created_at >= $7 LIMIT 1) c";

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

/// The lease (PostgreSQL): per receiver, its oldest due deliveries up to
/// its budget (`deliveries_due`, a partial index of pending rows), skipped
/// while locked by another lease, then marked leased, with their changes.
/// `$7` is the lease floor ([`Store::refresh_lease_floor`]): partitions
/// older than the oldest one holding pending work are not read; nor those
/// after now (plus [`CLOCK_SKEW_MS`]), nor the default one while the floor
/// is a day's start.
static PG_LEASE: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "WITH budget AS (SELECT * FROM unnest($1::bigint[], $2::int[], $3::bool[], $4::bigint[]) \
                       AS b(receiver_id, n, ordered, lease_until)), \
                     picked AS (SELECT p.id FROM budget b CROSS JOIN LATERAL ( \
                       SELECT d.id FROM deliveries d \
                       WHERE d.receiver_id = b.receiver_id AND d.status = 'pending' AND d.next_attempt_at <= $5 \
                         AND d.lease_until <= $5 AND d.created_at BETWEEN $7 AND $5 + {CLOCK_SKEW_MS} \
                         AND (NOT b.ordered OR NOT EXISTS (SELECT 1 FROM deliveries e WHERE e.receiver_id = d.receiver_id \
                           AND e.status = 'pending' AND e.order_key = d.order_key AND e.id < d.id \
                           AND e.created_at BETWEEN $7 AND $5 + {CLOCK_SKEW_MS})) \
                       ORDER BY d.next_attempt_at, d.id LIMIT b.n FOR UPDATE OF d SKIP LOCKED) p), \
                     leased AS (UPDATE deliveries d SET lease_owner = $6, \
                       lease_until = (SELECT b.lease_until FROM budget b WHERE b.receiver_id = d.receiver_id) \
                     WHERE d.id = ANY(ARRAY(SELECT id FROM picked)) AND d.created_at BETWEEN $7 AND $5 + {CLOCK_SKEW_MS} \
                     RETURNING d.*) \
                     SELECT {LEASED_COLUMNS} FROM leased d {CHANGE_BY_ID}"
    )
});

type PgLeaseQuery<'q, O> = sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments>;

/// Binds [`PG_LEASE`]'s parameters.
fn bind_lease<'q, O>(
    query: PgLeaseQuery<'q, O>,
    owner: &str,
    now: i64,
    floor: i64,
    requests: &[&LeaseRequest],
) -> PgLeaseQuery<'q, O> {
    query
        .bind(requests.iter().map(|r| r.receiver_id).collect::<Vec<_>>())
        .bind(requests.iter().map(|r| r.limit).collect::<Vec<_>>())
        .bind(requests.iter().map(|r| r.ordered).collect::<Vec<_>>())
        .bind(requests.iter().map(|r| r.lease_until).collect::<Vec<_>>())
        .bind(now)
        .bind(owner.to_string())
        .bind(floor)
}

/// The plan PostgreSQL picks for the lease of `requests`, as `EXPLAIN`
/// prints it (nothing is leased: the statement is only planned). The plan
/// is the generic one, planned without the parameters' values, as the
/// lease's connections plan it ([`super::GENERIC_PLANS`]): where a plan that
/// prunes partitions by value would hide a bad shape.
pub(crate) async fn explain_lease(
    pool: &sqlx::PgPool,
    now: i64,
    floor: i64,
    requests: &[LeaseRequest],
) -> Result<String> {
    let requests: Vec<&LeaseRequest> = requests.iter().collect();
    let mut conn = pool.acquire().await?;
    let types = super::explain::prepare_explained(&mut conn, PG_LEASE.as_str()).await?;
    let values = super::explain::parameter_values_sql(types.len());
    bind_lease(
        sqlx::query_as::<_, (String,)>(AssertSqlSafe(values)),
        "explain",
        now,
        floor,
        &requests,
    )
    .fetch_one(&mut *conn)
    .await?;
    super::explain::explain_prepared(&mut conn, &types).await
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
                let rows = bind_lease(
                    sqlx::query_as::<_, LeasedDelivery>(AssertSqlSafe(PG_LEASE.as_str())),
                    owner,
                    now,
                    self.lease_floor(),
                    &requests,
                )
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
}
