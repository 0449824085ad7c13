//! The recorder's writes: finished leases and their attempts, one
//! transaction per batch (on PostgreSQL, one statement).

use sqlx::AssertSqlSafe;

use super::super::{Backend, Result, Store, now_ms};
use super::{AttemptRecord, Completion, Finished};
use crate::model::{DeliveryId, DeliveryStatus};

impl Store {
    /// Records finished leases and their attempts in one transaction.
    /// Completions whose lease was taken over are ignored (their attempts are
    /// still recorded: the audit trail shows everything that was sent).
    pub async fn finish(&self, owner: &str, batch: &[Finished]) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let now = now_ms();
        let mut rows: Vec<FinishRow> = batch.iter().map(|f| FinishRow::from(f, now)).collect();
        // Ascending ids: whichever way the plan joins the batch, its rows are
        // locked in the order receiver deletion locks them in (no deadlock).
        rows.sort_unstable_by_key(|r| r.id);
        let attempts: Vec<(DeliveryId, &AttemptRecord)> = batch
            .iter()
            .filter_map(|f| f.attempt.as_ref().map(|a| (f.delivery_id, a)))
            .collect();
        match self.backend() {
            Backend::Postgres(main) => {
                // One statement is one transaction: a single round trip on a
                // connection that plans it by primary key.
                let query = bind_finish(
                    sqlx::query(AssertSqlSafe(PG_FINISH.as_str())),
                    owner,
                    now,
                    &rows,
                    &attempts,
                );
                query.execute(self.recorder_pool().unwrap_or(main)).await?;
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
}

/// The recorder's statement (PostgreSQL): the update, then the attempts of
/// the deliveries it found, in one statement.
///
/// A row whose lease is still this process's (`lease_owner = $1`, same lease
/// end) takes the outcome; the others are rewritten unchanged. So every
/// delivery of the batch is row-locked before its attempt is written: a
/// receiver deletion running meanwhile waits for this transaction and then
/// deletes the attempts with the deliveries, or ran first, and then its
/// deliveries are not in `done` and their attempts are not written. Either
/// way no attempt outlives its delivery. The attempts are matched against
/// `done` (the batch's own rows) rather than against `deliveries`: an
/// `EXISTS` on the table was planned, with small batches, as a hash join
/// over a sequential scan of every delivery.
static PG_FINISH: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let mine = "(d.lease_owner = $1 AND d.lease_until = u.lease_until)";
    format!(
        "WITH done AS (UPDATE deliveries d SET \
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
         WHERE d.id = ANY($3) AND d.created_at BETWEEN $24 AND $25 AND d.id = u.id RETURNING d.id) \
         INSERT INTO attempts (delivery_id, attempt, started_at, duration_ms, request_url, request_headers, \
         request_body, response_status, response_body, outcome, error_class, error) \
         SELECT a.* FROM unnest($12::bigint[], $13::int[], $14::bigint[], $15::int[], $16::text[], $17::text[], $18::text[], \
         $19::int[], $20::text[], $21::text[], $22::text[], $23::text[]) \
         AS a(delivery_id, attempt, started_at, duration_ms, request_url, request_headers, request_body, \
         response_status, response_body, outcome, error_class, error) \
         WHERE a.delivery_id IN (SELECT id FROM done)"
    )
});

/// The recorder's planner settings, set on each of its connections: its
/// plan is then what it always should be, primary-key lookups of the
/// batch's deliveries hashed against the batch. Left to itself the planner
/// picked (a) a nested loop that rescans the whole batch for every row
/// (O(n²), whole-row copies included: 175 ms per 500 rows at a 100,000-row
/// backlog), and (b) with statistics that call the table small, a
/// sequential scan of every delivery for a batch of a few hundred: a cost
/// that grows with the table, not the batch; and (c) since partitioning,
/// a bitmap over the batch's time range (the bound that lets PostgreSQL
/// skip older partitions) filtered by id: a cost that grows with the rows
/// written since the oldest delivery of the batch.
pub(crate) const RECORDER_PLANNER: [(&str, &str); 3] = [
    ("enable_nestloop", "off"),
    ("enable_seqscan", "off"),
    ("enable_bitmapscan", "off"),
];

type PgQuery<'q> = sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>;

/// Binds [`PG_FINISH`]'s 25 parameters (the last two, the batch's oldest
/// and newest `created_at`, let PostgreSQL read only the days the batch is
/// in: not the older ones, not tomorrow's, not the default partition).
fn bind_finish<'q>(
    query: PgQuery<'q>,
    owner: &str,
    now: i64,
    rows: &[FinishRow],
    attempts: &[(DeliveryId, &AttemptRecord)],
) -> PgQuery<'q> {
    let col = |f: fn(&AttemptRecord) -> Option<String>| {
        attempts.iter().map(|(_, a)| f(a)).collect::<Vec<_>>()
    };
    query
        .bind(owner.to_string())
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
        .bind(attempts.iter().map(|(id, _)| *id).collect::<Vec<_>>())
        .bind(attempts.iter().map(|(_, a)| a.attempt).collect::<Vec<_>>())
        .bind(
            attempts
                .iter()
                .map(|(_, a)| a.started_at)
                .collect::<Vec<_>>(),
        )
        .bind(
            attempts
                .iter()
                .map(|(_, a)| a.duration_ms)
                .collect::<Vec<_>>(),
        )
        .bind(col(|a| Some(a.request_url.clone())))
        .bind(col(|a| Some(a.request_headers.clone())))
        .bind(col(|a| a.request_body.clone()))
        .bind(
            attempts
                .iter()
                .map(|(_, a)| a.response_status)
                .collect::<Vec<_>>(),
        )
        .bind(col(|a| a.response_body.clone()))
        .bind(col(|a| Some(a.outcome.clone())))
        .bind(col(|a| a.error_class.clone()))
        .bind(col(|a| a.error.clone()))
        .bind(rows.iter().map(|r| r.created_at).min().unwrap_or(0))
        .bind(rows.iter().map(|r| r.created_at).max().unwrap_or(0))
}

/// The plan PostgreSQL picks for the recorder's statement with a batch of
/// `ids` with their `created_at` (each finished with an attempt), as `EXPLAIN` prints it. Nothing
/// is written: the statement is only planned.
/// Planned where the recorder runs it: on its own connections, with their
/// planner settings, in its generic plan.
pub(crate) async fn explain_finish(
    store: &Store,
    main: &sqlx::PgPool,
    ids: &[(DeliveryId, i64)],
) -> Result<String> {
    let now = now_ms();
    let record = AttemptRecord {
        attempt: 1,
        started_at: now,
        duration_ms: 1,
        request_url: "https://hooks.example.com/".into(),
        request_headers: "{}".into(),
        request_body: None,
        response_status: Some(200),
        response_body: Some(String::new()),
        outcome: "succeeded".into(),
        error_class: None,
        error: None,
    };
    let finished: Vec<Finished> = ids
        .iter()
        .map(|(id, created_at)| Finished {
            delivery_id: *id,
            created_at: *created_at,
            lease_until: now,
            completion: Completion::Succeeded,
            last_status: Some(200),
            last_error: None,
            attempt: Some(record.clone()),
        })
        .collect();
    let rows: Vec<FinishRow> = finished.iter().map(|f| FinishRow::from(f, now)).collect();
    let attempts: Vec<(DeliveryId, &AttemptRecord)> =
        finished.iter().map(|f| (f.delivery_id, &record)).collect();
    let pool = store.recorder_pool().unwrap_or(main);
    let mut conn = pool.acquire().await?;
    let types = super::super::explain::prepare_explained(&mut conn, PG_FINISH.as_str()).await?;
    let values = super::super::explain::parameter_values_sql(types.len());
    bind_finish(
        sqlx::query(AssertSqlSafe(values.as_str())),
        "explain",
        now,
        &rows,
        &attempts,
    )
    .execute(&mut *conn)
    .await?;
    super::super::explain::explain_prepared(&mut conn, &types).await
}

struct FinishRow {
    id: DeliveryId,
    created_at: i64,
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
            created_at: f.created_at,
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
