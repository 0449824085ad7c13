//! Fan-out: a batch of changes stored (repeats skipped) with one delivery
//! per matching subscription, in one transaction; on PostgreSQL one
//! statement (`fan_out_pg.rs`), on SQLite a statement per change.

use sqlx::AssertSqlSafe;

use super::changes::{Claims, DELIVERY_COLUMNS, FanoutOutcome, NeedsSeen, NewChange, outcome};
use super::{Backend, Result, Store, now_ms};
use crate::model::{ChangeId, DeliveryId, ReceiverId};

impl Store {
    /// Stores changes and creates one pending delivery per matching active
    /// subscription of an active receiver, all in one transaction.
    ///
    /// With `claims`, up to each receiver's limit of its new deliveries are
    /// written already leased to `claims.owner` and returned in
    /// [`FanoutOutcome::claimed`], ready to send; the rest wait in the queue.
    ///
    /// With `needs` (PostgreSQL; SQLite ignores it), the batch is stored
    /// only if no active subscription to its resources asks for more than
    /// `needs` lists; otherwise nothing is and the result is
    /// [`super::Error::NeedsChanged`] (see [`NeedsSeen`]).
    pub async fn fan_out(
        &self,
        changes: &[NewChange],
        claims: Option<&Claims>,
        needs: Option<&NeedsSeen>,
    ) -> Result<FanoutOutcome> {
        if changes.is_empty() {
            return Ok(FanoutOutcome::default());
        }
        let now = now_ms();
        match self.backend() {
            Backend::Postgres(main) => {
                let pool = self.fan_out_pool().unwrap_or(main);
                super::fan_out_pg::fan_out(pool, changes, claims, needs, now).await
            }
            Backend::Sqlite(pool) => {
                let mut tx = pool.begin().await?;
                let mut ids = Vec::with_capacity(changes.len());
                let mut created: Vec<(DeliveryId, ReceiverId, ChangeId)> = Vec::new();
                for c in changes {
                    let id: Option<ChangeId> = sqlx::query_scalar(
                        "INSERT INTO changes (source, source_key, resource, action, table_name, row_id, \
                         transaction_id, occurred_at, etag, old, new, record, related, created_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
                         ON CONFLICT (source, source_key) DO NOTHING RETURNING id",
                    )
                    .bind(&c.source)
                    .bind(&c.source_key)
                    .bind(&c.payload.resource)
                    .bind(c.payload.action.api_name())
                    .bind(&c.table_name)
                    .bind(&c.payload.row_id)
                    .bind(c.payload.transaction_id)
                    .bind(c.payload.occurred_at)
                    .bind(&c.payload.etag)
                    .bind(&c.payload.old)
                    .bind(&c.payload.new)
                    .bind(&c.payload.record)
                    .bind(&c.payload.related)
                    .bind(now)
                    .fetch_optional(&mut *tx)
                    .await?;
                    ids.push(id);
                    let Some(id) = id else { continue };
                    let got: Vec<(DeliveryId, ReceiverId)> = sqlx::query_as(AssertSqlSafe(format!(
                        "INSERT INTO deliveries ({DELIVERY_COLUMNS}) \
                         SELECT $1, s.id, s.receiver_id, 'pending', $4, \
                         CASE WHEN r.ordered THEN $2 || ':' || $5 END, $4, $4 \
                         FROM subscriptions s JOIN receivers r ON r.id = s.receiver_id AND r.active = TRUE \
                         WHERE s.resource = $2 AND s.action = $3 AND s.active = TRUE ORDER BY s.id \
                         ON CONFLICT (change_id, subscription_id) DO NOTHING RETURNING id, receiver_id"
                    )))
                    .bind(id)
                    .bind(&c.payload.resource)
                    .bind(c.payload.action.api_name())
                    .bind(now)
                    .bind(&c.payload.row_id)
                    .fetch_all(&mut *tx)
                    .await?;
                    created.extend(got.into_iter().map(|(d, r)| (d, r, id)));
                }
                let claimed_ids = claim_sqlite(&mut tx, &created, claims).await?;
                let claimed = super::deliveries::leased_rows_sqlite(&mut tx, &claimed_ids).await?;
                tx.commit().await?;
                let created = created
                    .into_iter()
                    .map(|(id, receiver, change)| (id, receiver, claimed_ids.contains(&id), change))
                    .collect();
                Ok(outcome(ids, created, claimed))
            }
        }
    }
}

/// Leases each claimed receiver's share of the deliveries just created
/// (SQLite has one writer, so an extra update in the same transaction is
/// all it takes).
async fn claim_sqlite(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    created: &[(DeliveryId, ReceiverId, ChangeId)],
    claims: Option<&Claims>,
) -> Result<Vec<DeliveryId>> {
    let mut claimed = Vec::new();
    let Some(claims) = claims else {
        return Ok(claimed);
    };
    for claim in &claims.receivers {
        let ids: Vec<DeliveryId> = created
            .iter()
            .filter(|(_, receiver, _)| *receiver == claim.receiver_id)
            .map(|(id, _, _)| *id)
            .take(usize::try_from(claim.limit).unwrap_or(0))
            .collect();
        for id in ids {
            sqlx::query("UPDATE deliveries SET lease_until = $2, lease_owner = $3 WHERE id = $1")
                .bind(id)
                .bind(claim.lease_until)
                .bind(&claims.owner)
                .execute(&mut **tx)
                .await?;
            claimed.push(id);
        }
    }
    claimed.sort_unstable();
    Ok(claimed)
}
