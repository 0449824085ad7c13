//! The PostgreSQL fan-out: one statement stores a batch of changes
//! (skipping repeats) and their deliveries, and returns what it wrote.

use std::collections::HashMap;

use sqlx::error::BoxDynError;
use sqlx::postgres::PgArguments;
use sqlx::{Arguments as _, AssertSqlSafe, PgPool};

use super::Result;
use super::changes::{Claim, Claims, FanoutOutcome, NeedsSeen, NewChange, outcome, stored_ids};
use super::deliveries::LeasedDelivery;
use crate::envelope::{ChangePayload, SubscriptionView};
use crate::model::{ChangeId, DeliveryId, ReceiverId, SubscriptionId};

/// Runs [`PG_FAN_OUT`] for `changes` (see `Store::fan_out`).
pub(super) async fn fan_out(
    pool: &PgPool,
    changes: &[NewChange],
    claims: Option<&Claims>,
    needs: Option<&NeedsSeen>,
    now: i64,
) -> Result<FanoutOutcome> {
    let empty = Claims::default();
    let args = pg_fan_out_args(changes, claims.unwrap_or(&empty), needs, now)
        .map_err(sqlx::Error::Encode)?;
    let query = sqlx::query_as_with(AssertSqlSafe(PG_FAN_OUT), args);
    let keys = concurrent_keys(changes);
    let rows: Vec<PgFanoutRow> = if keys.is_empty() {
        query.fetch_all(pool).await?
    } else {
        // Two API requests with one idempotency key may arrive
        // at once; without a unique index, each would miss the
        // other's uncommitted change. A lock per key makes the
        // second wait, and its statement (a fresh snapshot)
        // then finds the first's change.
        let mut tx = pool.begin().await?;
        sqlx::query(
            "SELECT pg_advisory_xact_lock(k) FROM (SELECT DISTINCT hashtextextended(key, 0) AS k \
                 FROM unnest($1::text[]) AS key ORDER BY 1) AS keys",
        )
        .bind(&keys)
        .execute(&mut *tx)
        .await?;
        let rows = query.fetch_all(&mut *tx).await?;
        tx.commit().await?;
        rows
    };
    if rows.iter().any(|row| row.needs_changed == Some(true)) {
        return Err(super::Error::NeedsChanged);
    }
    Ok(pg_outcome(changes, rows, now))
}

/// The keys of the changes in `changes` that another fan-out may be
/// storing at the same moment: the API's idempotency keys. (A capture
/// source is imported by one gateway at a time, and its repeats come after
/// the first import committed.)
fn concurrent_keys(changes: &[NewChange]) -> Vec<String> {
    changes
        .iter()
        .filter(|c| c.source == "api")
        .filter_map(|c| c.source_key.as_ref().map(|k| format!("{}:{k}", c.source)))
        .collect()
}

/// The whole PostgreSQL fan-out as one statement, so one round trip (and
/// its implicit transaction) instead of five: store the changes (skipping
/// duplicates: a key repeated in the batch, or already stored within
/// [`DEDUPLICATION_WINDOW_MS`]; the `LIMIT 1` keeps that look-up a probe of
/// `changes_source_key` per change, which the planner would otherwise
/// turn into a hash of every recent change for a large batch), create a delivery per matching active subscription of an
/// active receiver (the first `n` of each claimed receiver born leased),
/// and return what was written: one row per new change (`delivery_id`
/// NULL) and one per new delivery, a claimed one with its subscription's
/// options and its receiver's plugin revision, so the claimed deliveries
/// need not be read back. Given the needs the caller prepared the batch
/// with (`$21`–`$23`, see [`NeedsSeen`]), it first checks that no active
/// subscription to the batch's resources asks for more; if one does, it
/// stores nothing and returns one row with `needs_changed` true.
pub(super) const PG_FAN_OUT: &str = "WITH u AS ( \
       SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], \
       $7::bigint[], $8::bigint[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[]) WITH ORDINALITY \
       AS u(source, source_key, resource, action, table_name, row_id, transaction_id, occurred_at, etag, \
       old, new, record, related, ord)), \
     guard AS ( \
       SELECT $21::text[] IS NULL OR NOT EXISTS (SELECT 1 FROM subscriptions s \
       WHERE s.active AND (s.expand <> '[]' OR s.include_full_record) AND s.resource = ANY($3::text[]) \
       AND NOT EXISTS (SELECT 1 FROM unnest($21::text[], $22::text[], $23::bool[]) AS k(resource, expand, full_record) \
         WHERE k.resource = s.resource AND k.expand = s.expand AND k.full_record = s.include_full_record)) AS fresh), \
     c AS ( \
       INSERT INTO changes (source, source_key, resource, action, table_name, row_id, transaction_id, \
       occurred_at, etag, old, new, record, related, created_at) \
       SELECT u.source, u.source_key, u.resource, u.action, u.table_name, u.row_id, u.transaction_id, \
       u.occurred_at, u.etag, u.old, u.new, u.record, u.related, $14 \
       FROM (SELECT DISTINCT ON (u.source, coalesce(u.source_key, u.ord::text)) * FROM u \
         ORDER BY u.source, coalesce(u.source_key, u.ord::text), u.ord) u \
       WHERE (SELECT fresh FROM guard) AND (u.source_key IS NULL OR NOT EXISTS (SELECT 1 FROM (SELECT 1 FROM changes x \
         WHERE x.source = u.source AND x.source_key = u.source_key AND x.source_key IS NOT NULL \
         AND x.created_at BETWEEN $14::bigint - $19::bigint AND $14::bigint + $20::bigint LIMIT 1) AS seen)) \
       ORDER BY u.ord \
       RETURNING id, source, source_key, resource, action, row_id), \
     candidates AS ( \
       SELECT c.id AS change_id, s.id AS subscription_id, s.receiver_id, \
       CASE WHEN r.ordered THEN c.resource || ':' || c.row_id END AS order_key, \
       row_number() OVER (PARTITION BY s.receiver_id ORDER BY c.id, s.id) AS n \
       FROM c JOIN subscriptions s ON s.resource = c.resource AND s.action = c.action AND s.active \
       JOIN receivers r ON r.id = s.receiver_id AND r.active), \
     claims AS (SELECT * FROM unnest($15::bigint[], $16::bigint[], $17::bigint[]) AS k(receiver_id, n, lease_until)), \
     d AS ( \
       INSERT INTO deliveries (change_id, subscription_id, receiver_id, status, next_attempt_at, order_key, \
       created_at, updated_at, lease_until, lease_owner) \
       SELECT d.change_id, d.subscription_id, d.receiver_id, 'pending', $14, d.order_key, $14, $14, \
       CASE WHEN d.n <= k.n THEN k.lease_until ELSE 0 END, CASE WHEN d.n <= k.n THEN $18 END \
       FROM candidates d LEFT JOIN claims k ON k.receiver_id = d.receiver_id \
       ORDER BY d.change_id, d.subscription_id \
       RETURNING id, change_id, subscription_id, receiver_id, lease_until, lease_owner IS NOT NULL AS claimed) \
     SELECT c.id AS change_id, c.source, c.source_key, NULL::bigint AS delivery_id, NULL::bigint AS subscription_id, \
       NULL::bigint AS receiver_id, NULL::bigint AS lease_until, NULL::boolean AS claimed, \
       NULL::boolean AS include_full_record, NULL::text AS expand, NULL::text AS plugin_revision, \
       NULL::boolean AS needs_changed FROM c \
     UNION ALL \
     SELECT d.change_id, NULL, NULL, d.id, d.subscription_id, d.receiver_id, d.lease_until, d.claimed, \
       s.include_full_record, s.expand, \
       CASE WHEN d.claimed THEN (SELECT p.revision FROM plugins p WHERE p.receiver_id = d.receiver_id) END, \
       NULL \
       FROM d LEFT JOIN subscriptions s ON d.claimed AND s.id = d.subscription_id \
     UNION ALL \
     SELECT 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, TRUE FROM guard WHERE NOT fresh";

/// How far back a change is looked for under the same `(source,
/// source_key)` before one is stored (PostgreSQL, whose partitioned
/// `changes` cannot hold a unique index without the partition key): the
/// imports a gateway repeats itself (a crash between storing a change and
/// confirming it at its source) come back within seconds, and an API
/// client's retries with one idempotency key within minutes. Bounding the
/// look-up keeps it on the recent partitions however long the trail is.
pub(crate) const DEDUPLICATION_WINDOW_MS: i64 = 7 * 86_400_000;

/// [`PG_FAN_OUT`]'s 23 arguments: the changes' columns, `now`, the claims'
/// columns, their owner, [`DEDUPLICATION_WINDOW_MS`], the clock skew
/// allowed ([`super::CLOCK_SKEW_MS`]) and the needs' columns (NULL: not
/// checked).
pub(super) fn pg_fan_out_args(
    changes: &[NewChange],
    claims: &Claims,
    needs: Option<&NeedsSeen>,
    now: i64,
) -> std::result::Result<PgArguments, BoxDynError> {
    let col = |f: fn(&NewChange) -> Option<String>| changes.iter().map(f).collect::<Vec<_>>();
    let p = |f: fn(&ChangePayload) -> Option<String>| {
        changes.iter().map(|c| f(&c.payload)).collect::<Vec<_>>()
    };
    let p_int =
        |f: fn(&ChangePayload) -> i64| changes.iter().map(|c| f(&c.payload)).collect::<Vec<_>>();
    let claim = |f: fn(&Claim) -> i64| claims.receivers.iter().map(f).collect::<Vec<_>>();
    let mut args = PgArguments::default();
    args.add(col(|c| Some(c.source.clone())))?;
    args.add(col(|c| c.source_key.clone()))?;
    args.add(p(|c| Some(c.resource.clone())))?;
    args.add(p(|c| Some(c.action.api_name().to_string())))?;
    args.add(col(|c| c.table_name.clone()))?;
    args.add(p(|c| Some(c.row_id.clone())))?;
    args.add(p_int(|c| c.transaction_id))?;
    args.add(p_int(|c| c.occurred_at))?;
    args.add(p(|c| c.etag.clone()))?;
    args.add(p(|c| c.old.clone()))?;
    args.add(p(|c| c.new.clone()))?;
    args.add(p(|c| c.record.clone()))?;
    args.add(p(|c| c.related.clone()))?;
    args.add(now)?;
    args.add(claim(|c| c.receiver_id.get()))?;
    args.add(claim(|c| c.limit))?;
    args.add(claim(|c| c.lease_until))?;
    args.add(claims.owner.clone())?;
    args.add(DEDUPLICATION_WINDOW_MS)?;
    args.add(super::CLOCK_SKEW_MS)?;
    args.add(needs.map(|n| &n.resources))?;
    args.add(needs.map(|n| &n.expand))?;
    args.add(needs.map(|n| &n.full_record))?;
    Ok(args)
}

/// One row of [`PG_FAN_OUT`]: a new change, or a new delivery.
#[derive(Debug, sqlx::FromRow)]
struct PgFanoutRow {
    change_id: ChangeId,
    source: Option<String>,
    source_key: Option<String>,
    delivery_id: Option<DeliveryId>,
    subscription_id: Option<SubscriptionId>,
    receiver_id: Option<ReceiverId>,
    lease_until: Option<i64>,
    claimed: Option<bool>,
    include_full_record: Option<bool>,
    expand: Option<String>,
    plugin_revision: Option<String>,
    /// True on the one row returned when the needs check failed.
    needs_changed: Option<bool>,
}

/// Turns [`PG_FAN_OUT`]'s rows into the outcome; the claimed deliveries are
/// built from the input changes they were written from.
fn pg_outcome(changes: &[NewChange], rows: Vec<PgFanoutRow>, now: i64) -> FanoutOutcome {
    let mut inserted = Vec::new();
    let mut deliveries = Vec::new();
    for row in rows {
        match (row.delivery_id, row.receiver_id) {
            (Some(id), Some(receiver_id)) => deliveries.push((id, receiver_id, row)),
            _ => inserted.push((
                row.change_id,
                row.source.unwrap_or_default(),
                row.source_key,
            )),
        }
    }
    let ids = stored_ids(changes, inserted);
    let by_id: HashMap<ChangeId, &NewChange> = ids
        .iter()
        .zip(changes)
        .filter_map(|(id, change)| id.map(|id| (id, change)))
        .collect();
    deliveries.sort_unstable_by_key(|(id, _, _)| *id);
    let mut claimed = Vec::new();
    let mut created = Vec::with_capacity(deliveries.len());
    for (id, receiver_id, row) in deliveries {
        let is_claimed = row.claimed == Some(true);
        created.push((id, receiver_id, is_claimed, row.change_id));
        let (true, Some(change)) = (is_claimed, by_id.get(&row.change_id)) else {
            continue;
        };
        claimed.push(LeasedDelivery {
            id,
            change_id: row.change_id,
            subscription_id: row.subscription_id,
            receiver_id,
            attempts: 0,
            retry_base: 0,
            lease_until: row.lease_until.unwrap_or(0),
            created_at: now,
            payload: change.payload.clone(),
            view: SubscriptionView {
                include_full_record: row.include_full_record,
                expand: row.expand,
            },
            plugin_revision: row.plugin_revision,
        });
    }
    outcome(ids, created, claimed)
}
