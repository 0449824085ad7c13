//! `changes`, and fan-out: a change and its deliveries are written in one
//! transaction, idempotently.
//!
//! A change is identified by `(source, source_key)` (e.g. the capture source
//! and its `logged_actions` id). Importing the same change twice inserts
//! nothing the second time, so a crash between "written here" and "marked
//! dispatched at the source" neither loses nor duplicates a delivery; and
//! `UNIQUE (change_id, subscription_id)` guards the deliveries themselves.

use sqlx::AssertSqlSafe;

use super::{Backend, Result, Store, now_ms};

/// A change about to be stored.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NewChange {
    /// Where it comes from: `pg:<capture>`, `sqlite:<capture>`, `api`, `test`.
    pub source: String,
    /// Its identity at the source (None: no deduplication).
    pub source_key: Option<String>,
    /// `ResourceEnum` value.
    pub resource: String,
    /// `CREATE`, `UPDATE`, `DELETE` (or `TEST` for pings).
    pub action: String,
    /// Captured table, if any.
    pub table_name: Option<String>,
    /// The row's primary key, as JSON text.
    pub row_id: String,
    /// The source transaction.
    pub transaction_id: i64,
    /// When it happened (ms).
    pub occurred_at: i64,
    /// The row's new etag.
    pub etag: Option<String>,
    /// Changed fields before (JSON object text), None on CREATE.
    pub old: Option<String>,
    /// Changed fields after (JSON object text), None on DELETE.
    pub new: Option<String>,
    /// The full row (JSON object text).
    pub record: Option<String>,
    /// Expanded foreign keys: `{"column": {row}}` (JSON object text).
    pub related: Option<String>,
}

/// What a fan-out wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FanoutOutcome {
    /// Changes newly stored (duplicates are skipped).
    pub changes: u64,
    /// Deliveries created.
    pub deliveries: u64,
    /// Receivers that got new deliveries (to wake their workers).
    pub receivers: Vec<i64>,
    /// Ids of the newly stored changes, in input order.
    pub change_ids: Vec<i64>,
}

/// A stored change.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ChangeRow {
    /// Id.
    pub id: i64,
    /// Source.
    pub source: String,
    /// Resource.
    pub resource: String,
    /// Action.
    pub action: String,
    /// Row id (JSON).
    pub row_id: String,
    /// Transaction.
    pub transaction_id: i64,
    /// Occurred (ms).
    pub occurred_at: i64,
}

const DELIVERY_COLUMNS: &str = "change_id, subscription_id, receiver_id, status, next_attempt_at, order_key, created_at, updated_at";

impl Store {
    /// Stores changes and creates one pending delivery per matching active
    /// subscription of an active receiver, all in one transaction.
    pub async fn fan_out(&self, changes: &[NewChange]) -> Result<FanoutOutcome> {
        if changes.is_empty() {
            return Ok(FanoutOutcome::default());
        }
        let now = now_ms();
        match self.backend() {
            Backend::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                let col =
                    |f: fn(&NewChange) -> Option<String>| changes.iter().map(f).collect::<Vec<_>>();
                let ids: Vec<i64> = sqlx::query_scalar(
                    "INSERT INTO changes (source, source_key, resource, action, table_name, row_id, transaction_id, \
                     occurred_at, etag, old, new, record, related, created_at) \
                     SELECT u.source, u.source_key, u.resource, u.action, u.table_name, u.row_id, u.transaction_id, \
                     u.occurred_at, u.etag, u.old, u.new, u.record, u.related, $14 \
                     FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[], \
                     $8::bigint[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[]) WITH ORDINALITY \
                     AS u(source, source_key, resource, action, table_name, row_id, transaction_id, occurred_at, etag, \
                     old, new, record, related, ord) ORDER BY u.ord \
                     ON CONFLICT (source, source_key) DO NOTHING RETURNING id",
                )
                .bind(col(|c| Some(c.source.clone())))
                .bind(col(|c| c.source_key.clone()))
                .bind(col(|c| Some(c.resource.clone())))
                .bind(col(|c| Some(c.action.clone())))
                .bind(col(|c| c.table_name.clone()))
                .bind(col(|c| Some(c.row_id.clone())))
                .bind(changes.iter().map(|c| c.transaction_id).collect::<Vec<_>>())
                .bind(changes.iter().map(|c| c.occurred_at).collect::<Vec<_>>())
                .bind(col(|c| c.etag.clone()))
                .bind(col(|c| c.old.clone()))
                .bind(col(|c| c.new.clone()))
                .bind(col(|c| c.record.clone()))
                .bind(col(|c| c.related.clone()))
                .bind(now)
                .fetch_all(&mut *tx)
                .await?;
                let receivers: Vec<i64> = if ids.is_empty() {
                    Vec::new()
                } else {
                    sqlx::query_scalar(AssertSqlSafe(format!(
                        "INSERT INTO deliveries ({DELIVERY_COLUMNS}) \
                         SELECT c.id, s.id, s.receiver_id, 'pending', $2, \
                         CASE WHEN r.ordered THEN c.resource || ':' || c.row_id END, $2, $2 \
                         FROM changes c JOIN subscriptions s ON s.resource = c.resource AND s.action = c.action \
                         AND s.active JOIN receivers r ON r.id = s.receiver_id AND r.active \
                         WHERE c.id = ANY($1) ORDER BY c.id, s.id \
                         ON CONFLICT (change_id, subscription_id) DO NOTHING RETURNING receiver_id"
                    )))
                    .bind(&ids)
                    .bind(now)
                    .fetch_all(&mut *tx)
                    .await?
                };
                tx.commit().await?;
                Ok(outcome(ids, receivers))
            }
            Backend::Sqlite(pool) => {
                let mut tx = pool.begin().await?;
                let mut ids = Vec::with_capacity(changes.len());
                let mut receivers = Vec::new();
                for c in changes {
                    let id: Option<i64> = sqlx::query_scalar(
                        "INSERT INTO changes (source, source_key, resource, action, table_name, row_id, \
                         transaction_id, occurred_at, etag, old, new, record, related, created_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
                         ON CONFLICT (source, source_key) DO NOTHING RETURNING id",
                    )
                    .bind(&c.source)
                    .bind(&c.source_key)
                    .bind(&c.resource)
                    .bind(&c.action)
                    .bind(&c.table_name)
                    .bind(&c.row_id)
                    .bind(c.transaction_id)
                    .bind(c.occurred_at)
                    .bind(&c.etag)
                    .bind(&c.old)
                    .bind(&c.new)
                    .bind(&c.record)
                    .bind(&c.related)
                    .bind(now)
                    .fetch_optional(&mut *tx)
                    .await?;
                    let Some(id) = id else { continue };
                    ids.push(id);
                    let got: Vec<i64> = sqlx::query_scalar(AssertSqlSafe(format!(
                        "INSERT INTO deliveries ({DELIVERY_COLUMNS}) \
                         SELECT $1, s.id, s.receiver_id, 'pending', $4, \
                         CASE WHEN r.ordered THEN $2 || ':' || $5 END, $4, $4 \
                         FROM subscriptions s JOIN receivers r ON r.id = s.receiver_id AND r.active = TRUE \
                         WHERE s.resource = $2 AND s.action = $3 AND s.active = TRUE ORDER BY s.id \
                         ON CONFLICT (change_id, subscription_id) DO NOTHING RETURNING receiver_id"
                    )))
                    .bind(id)
                    .bind(&c.resource)
                    .bind(&c.action)
                    .bind(now)
                    .bind(&c.row_id)
                    .fetch_all(&mut *tx)
                    .await?;
                    receivers.extend(got);
                }
                tx.commit().await?;
                Ok(outcome(ids, receivers))
            }
        }
    }

    /// Stores a test ping for one receiver (no subscription) and its delivery.
    pub async fn insert_test_delivery(&self, receiver_id: i64, change: &NewChange) -> Result<i64> {
        let now = now_ms();
        let id = crate::on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let change_id: i64 = sqlx::query_scalar(
                "INSERT INTO changes (source, source_key, resource, action, table_name, row_id, transaction_id, \
                 occurred_at, etag, old, new, record, related, created_at) \
                 VALUES ($1, NULL, $2, $3, NULL, $4, $5, $6, $7, $8, $9, NULL, NULL, $10) RETURNING id",
            )
            .bind(&change.source)
            .bind(&change.resource)
            .bind(&change.action)
            .bind(&change.row_id)
            .bind(change.transaction_id)
            .bind(change.occurred_at)
            .bind(&change.etag)
            .bind(&change.old)
            .bind(&change.new)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
            let id: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
                "INSERT INTO deliveries ({DELIVERY_COLUMNS}) VALUES ($1, NULL, $2, 'pending', $3, NULL, $3, $3) RETURNING id"
            )))
            .bind(change_id)
            .bind(receiver_id)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok::<i64, sqlx::Error>(id)
        })?;
        Ok(id)
    }

    /// One stored change.
    pub async fn change(&self, id: i64) -> Result<Option<ChangeRow>> {
        Ok(crate::on_pool!(self, |pool| {
            sqlx::query_as::<_, ChangeRow>(
            "SELECT id, source, resource, action, row_id, transaction_id, occurred_at FROM changes WHERE id = $1"
        )
        .bind(id)
        .fetch_optional(pool)
        .await
        })?)
    }

    /// Number of stored changes.
    pub async fn change_count(&self) -> Result<i64> {
        Ok(crate::on_pool!(self, |pool| sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM changes"
        )
        .fetch_one(pool)
        .await)?)
    }

    /// The last imported id of a cursor-based capture source (SQLite).
    pub async fn capture_cursor(&self, source: &str) -> Result<i64> {
        let v: Option<i64> = crate::on_pool!(self, |pool| sqlx::query_scalar::<_, i64>(
            "SELECT last_id FROM capture_cursors WHERE source = $1"
        )
        .bind(source)
        .fetch_optional(pool)
        .await)?;
        Ok(v.unwrap_or(0))
    }

    /// Fans out changes and advances a capture cursor in one transaction.
    pub async fn fan_out_with_cursor(
        &self,
        changes: &[NewChange],
        source: &str,
        last_id: i64,
    ) -> Result<FanoutOutcome> {
        // Changes are idempotent on (source, source_key), so fanning out first
        // and then moving the cursor is safe even if the process dies between.
        let outcome = self.fan_out(changes).await?;
        crate::on_pool!(self, |pool| {
            sqlx::query(
            "INSERT INTO capture_cursors (source, last_id) VALUES ($1, $2) \
             ON CONFLICT (source) DO UPDATE SET last_id = excluded.last_id WHERE capture_cursors.last_id < excluded.last_id"
        )
        .bind(source)
        .bind(last_id)
        .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        Ok(outcome)
    }
}

fn outcome(ids: Vec<i64>, mut receivers: Vec<i64>) -> FanoutOutcome {
    let deliveries = receivers.len() as u64;
    receivers.sort_unstable();
    receivers.dedup();
    FanoutOutcome {
        changes: ids.len() as u64,
        deliveries,
        receivers,
        change_ids: ids,
    }
}
