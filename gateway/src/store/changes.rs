//! `changes`, and fan-out: a change and its deliveries are written in one
//! transaction, idempotently.
//!
//! A change is identified by `(source, source_key)` (e.g. the capture source
//! and its `logged_actions` id). Importing the same change twice inserts
//! nothing the second time, so a crash between "written here" and "marked
//! dispatched at the source" neither loses nor duplicates a delivery. A
//! change's deliveries are written by the statement that stores it, so a
//! repeated change gets none. The PostgreSQL statement is in `fan_out_pg.rs`.

use std::collections::HashMap;

use sqlx::AssertSqlSafe;

use super::deliveries::LeasedDelivery;
use super::{Result, Store, now_ms};
use crate::envelope::ChangePayload;
use crate::model::{ChangeId, DeliveryId, ReceiverId};

/// A change about to be stored: the payload, and where it comes from.
#[derive(Debug, Clone, PartialEq)]
pub struct NewChange {
    /// Where it comes from: `pg:<schema>@<install id>`, `sqlite:<install
    /// id>`, `api`, `test`.
    pub source: String,
    /// Its identity at the source (None: no deduplication).
    pub source_key: Option<String>,
    /// The captured table, if any.
    pub table_name: Option<String>,
    /// The change itself.
    pub payload: ChangePayload,
}

/// What a fan-out wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FanoutOutcome {
    /// Changes newly stored (duplicates are skipped).
    pub changes: u64,
    /// Deliveries created.
    pub deliveries: u64,
    /// Receivers that got new deliveries (to wake their workers).
    pub receivers: Vec<ReceiverId>,
    /// Receivers that got new deliveries this fan-out did not lease to the
    /// caller: the dispatcher has to lease them from the queue.
    pub unclaimed_receivers: Vec<ReceiverId>,
    /// Ids of the newly stored changes, in input order.
    pub change_ids: Vec<ChangeId>,
    /// Per input change, in input order: its id and how many deliveries it
    /// got, or None when it was skipped as a duplicate.
    pub per_change: Vec<Option<(ChangeId, u64)>>,
    /// New deliveries leased to the caller in the same transaction
    /// (in-process hand-off), oldest first.
    pub claimed: Vec<LeasedDelivery>,
}

/// Leases a fan-out may take for its own process while it writes the
/// deliveries (in-process hand-off from fan-out to sending): the rows are
/// born leased, so the dispatcher neither polls for them nor writes a lease.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Claims {
    /// The lease owner (the delivery engine of this process).
    pub owner: String,
    /// Per receiver: how many of its new deliveries to lease, and until when.
    pub receivers: Vec<Claim>,
}

/// One receiver's share of [`Claims`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claim {
    /// Receiver.
    pub receiver_id: ReceiverId,
    /// At most this many of its new deliveries.
    pub limit: i64,
    /// The lease's end (ms).
    pub lease_until: i64,
}

/// What the subscriptions asked of a batch's changes when the caller
/// prepared it: one entry per active subscription that expands a column or
/// wants the full row, `(resource, expand, include_full_record)` as stored.
///
/// A capture keeps these between batches instead of reading them before
/// each one. Given to the PostgreSQL fan-out, the statement that stores the
/// batch checks them: when an active subscription to one of the batch's
/// resources asks for something not listed, it stores nothing and the
/// fan-out fails with [`super::Error::NeedsChanged`], so no change is
/// stored without the related rows or the full row a subscription wants.
/// (SQLite has one writer; its captures read the needs before each batch.)
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NeedsSeen {
    /// Each entry's resource.
    pub resources: Vec<String>,
    /// Each entry's `expand`, as stored (a JSON array of column names).
    pub expand: Vec<String>,
    /// Each entry's `include_full_record`.
    pub full_record: Vec<bool>,
}

impl NeedsSeen {
    /// Adds one subscription's needs.
    pub fn push(&mut self, resource: &str, expand: &str, full_record: bool) {
        self.resources.push(resource.to_string());
        self.expand.push(expand.to_string());
        self.full_record.push(full_record);
    }
}

pub(super) const DELIVERY_COLUMNS: &str = "change_id, subscription_id, receiver_id, status, next_attempt_at, order_key, created_at, updated_at";

impl Store {
    /// Stores a test ping for one receiver (no subscription) and its delivery.
    pub async fn insert_test_delivery(
        &self,
        receiver_id: ReceiverId,
        change: &NewChange,
    ) -> Result<DeliveryId> {
        let ids = self
            .insert_direct_deliveries(change, &[receiver_id])
            .await?;
        ids.first()
            .copied()
            .ok_or(super::Error::Database(sqlx::Error::RowNotFound))
    }

    /// Stores a change addressed to `receivers` directly (no subscription:
    /// a test ping, an operational event) and one delivery for each, in one
    /// transaction.
    pub(crate) async fn insert_direct_deliveries(
        &self,
        change: &NewChange,
        receivers: &[ReceiverId],
    ) -> Result<Vec<DeliveryId>> {
        let now = now_ms();
        let ids = crate::store::on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let change_id: i64 = sqlx::query_scalar(
                "INSERT INTO changes (source, source_key, resource, action, table_name, row_id, transaction_id, \
                 occurred_at, etag, old, new, record, related, created_at) \
                 VALUES ($1, NULL, $2, $3, NULL, $4, $5, $6, $7, $8, $9, NULL, NULL, $10) RETURNING id",
            )
            .bind(&change.source)
            .bind(&change.payload.resource)
            .bind(change.payload.action.api_name())
            .bind(&change.payload.row_id)
            .bind(change.payload.transaction_id)
            .bind(change.payload.occurred_at)
            .bind(&change.payload.etag)
            .bind(&change.payload.old)
            .bind(&change.payload.new)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
            let mut ids = Vec::with_capacity(receivers.len());
            for receiver_id in receivers {
                let id: DeliveryId = sqlx::query_scalar(AssertSqlSafe(format!(
                    "INSERT INTO deliveries ({DELIVERY_COLUMNS}) VALUES ($1, NULL, $2, 'pending', $3, NULL, $3, $3) RETURNING id"
                )))
                .bind(change_id)
                .bind(receiver_id)
                .bind(now)
                .fetch_one(&mut *tx)
                .await?;
                ids.push(id);
            }
            tx.commit().await?;
            Ok::<Vec<DeliveryId>, sqlx::Error>(ids)
        })?;
        Ok(ids)
    }

    /// Number of stored changes.
    pub async fn change_count(&self) -> Result<i64> {
        Ok(crate::store::on_pool!(self, |pool| sqlx::query_scalar::<
            _,
            i64,
        >(
            "SELECT COUNT(*) FROM changes"
        )
        .fetch_one(pool)
        .await)?)
    }
}

/// Matches the ids `INSERT … RETURNING id, source, source_key` gave back
/// to the input changes: a keyed change by its key, the others in input
/// order (their ids were drawn in that order). None for a change skipped as
/// a duplicate.
pub(super) fn stored_ids(
    changes: &[NewChange],
    mut inserted: Vec<(ChangeId, String, Option<String>)>,
) -> Vec<Option<ChangeId>> {
    inserted.sort_unstable_by_key(|(id, _, _)| *id);
    let mut keyed: HashMap<(&str, &str), ChangeId> = HashMap::new();
    let mut unkeyed = Vec::new();
    for (id, source, key) in &inserted {
        match key {
            Some(key) => {
                keyed.entry((source.as_str(), key.as_str())).or_insert(*id);
            }
            None => unkeyed.push(*id),
        }
    }
    let mut unkeyed = unkeyed.into_iter();
    changes
        .iter()
        .map(|c| match c.source_key.as_deref() {
            Some(key) => keyed.remove(&(c.source.as_str(), key)),
            None => unkeyed.next(),
        })
        .collect()
}

pub(super) fn outcome(
    ids: Vec<Option<ChangeId>>,
    created: Vec<(DeliveryId, ReceiverId, bool, ChangeId)>,
    claimed: Vec<LeasedDelivery>,
) -> FanoutOutcome {
    let deliveries = created.len() as u64;
    let mut receivers: Vec<ReceiverId> = created.iter().map(|(_, r, _, _)| *r).collect();
    receivers.sort_unstable();
    receivers.dedup();
    let mut unclaimed_receivers: Vec<ReceiverId> = created
        .iter()
        .filter(|(_, _, claimed, _)| !claimed)
        .map(|(_, r, _, _)| *r)
        .collect();
    unclaimed_receivers.sort_unstable();
    unclaimed_receivers.dedup();
    let mut per_id: HashMap<ChangeId, u64> = HashMap::new();
    for (_, _, _, change) in &created {
        *per_id.entry(*change).or_default() += 1;
    }
    let per_change = ids
        .iter()
        .map(|id| id.map(|id| (id, per_id.get(&id).copied().unwrap_or(0))))
        .collect();
    let change_ids: Vec<ChangeId> = ids.iter().flatten().copied().collect();
    FanoutOutcome {
        changes: change_ids.len() as u64,
        deliveries,
        receivers,
        unclaimed_receivers,
        change_ids,
        per_change,
        claimed,
    }
}
