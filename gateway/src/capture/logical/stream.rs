//! The importer: reads the replication stream, renders each committed
//! transaction's rows, fans them out, and only then confirms the
//! transaction's end to the slot.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt as _;
use pgwire_replication::{Lsn, ReplicationClient, ReplicationEvent};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

use super::convert::{RelationShape, Renderer, Slot};
use super::pgoutput::{self, Message, Tuple};
use super::{LogicalCapture, slot};
use crate::capture::rows::{LoggedRow, to_change};
use crate::capture::switch::{self, Skip};
use crate::capture::{Error, Importer};

/// Microseconds from 1970 to PostgreSQL's epoch (2000-01-01).
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// Runs the stream until shutdown (or, for a drainer, the marker),
/// reconnecting with backoff.
pub(super) async fn run(mut capture: LogicalCapture, ctx: Importer) {
    // Connections of this thread's runtime.
    capture.pool = PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(10))
        .connect_lazy_with((*capture.pool.connect_options()).clone());
    let mut backoff = Duration::from_millis(100);
    let mut state = State {
        skip: capture.skip.clone(),
        until: capture.until.clone(),
        epoch: XidEpoch::default(),
    };
    loop {
        if ctx.shutdown.is_cancelled() {
            return;
        }
        let started = std::time::Instant::now();
        let result = match session(&capture, &mut state, &ctx).await {
            Ok(Ended::Shutdown) => Ok(()),
            Ok(Ended::Drained) => drop_drained_slot(&capture).await,
            Err(err) => Err(err),
        };
        let Err(err) = result else {
            return;
        };
        if started.elapsed() > Duration::from_secs(30) {
            // A session that ran for a while failed: start backing off anew.
            backoff = Duration::from_millis(100);
        }
        ctx.health
            .failing("capture", crate::report::Report(&err).to_string());
        tracing::warn!(error = %crate::report::Report(&err), retry_in = ?backoff, "logical capture failed; retrying");
        tokio::select! {
            _ = ctx.shutdown.cancelled() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
}

/// Back to triggers: the slot is read to the marker; now it goes.
async fn drop_drained_slot(capture: &LogicalCapture) -> Result<(), Error> {
    slot::drop_slot_and_publication(&capture.pool, &capture.schema).await?;
    switch::slot_drained(&capture.pool, &capture.schema).await?;
    tracing::info!("the replication slot is drained and dropped: capturing with triggers");
    Ok(())
}

/// What outlives a replication session.
struct State {
    skip: Skip,
    /// Back to triggers: the marker that ends the stream.
    until: Option<String>,
    epoch: XidEpoch,
}

/// How a session ended well.
enum Ended {
    /// The gateway is stopping.
    Shutdown,
    /// The marker of a switch back to triggers was reached.
    Drained,
}

/// A transaction being received (or a part of one).
struct OpenTransaction {
    xid: u32,
    commit_micros: i64,
    /// Where it commits (its `Begin` says so before its rows arrive).
    commit_lsn: u64,
    /// The index in the transaction of `rows[0]`: a large transaction is
    /// fanned out in parts of `batch_size` rows as they arrive (memory stays
    /// bounded), its position confirmed only at its commit.
    first_index: usize,
    rows: Vec<RowChange>,
    marker: Option<String>,
}

/// A row change as streamed.
struct RowChange {
    shape: Arc<RelationShape>,
    action: &'static str,
    old: Option<Tuple>,
    new: Option<Tuple>,
}

/// A committed transaction, or a part of one still open.
struct Committed {
    /// Where it ends, once committed (`None`: a part; nothing to confirm).
    end_lsn: Option<u64>,
    open: OpenTransaction,
}

/// One replication session.
async fn session(
    capture: &LogicalCapture,
    state: &mut State,
    ctx: &Importer,
) -> Result<Ended, Error> {
    let config = slot::replication_config(&capture.url, &capture.schema, &capture.slot)?;
    let mut client = ReplicationClient::connect(config).await?;
    client.wait_started().await?;
    ctx.health.ready("capture");
    let mut relations: HashMap<u32, Arc<RelationShape>> = HashMap::new();
    let mut open: Option<OpenTransaction> = None;
    let mut batch: Vec<Committed> = Vec::new();
    let mut rows_in_batch = 0usize;
    loop {
        let next = if batch.is_empty() {
            tokio::select! {
                _ = ctx.shutdown.cancelled() => {
                    client.stop();
                    return Ok(Ended::Shutdown);
                }
                event = client.recv() => event,
            }
        } else {
            // Take everything already received, then import it at once.
            match client.recv().now_or_never() {
                Some(event) => event,
                None => {
                    if flush(capture, state, &client, ctx, std::mem::take(&mut batch)).await? {
                        client.stop();
                        return Ok(Ended::Drained);
                    }
                    rows_in_batch = 0;
                    ctx.progress.caught_up();
                    continue;
                }
            }
        };
        let Some(event) = next? else {
            return Err(Error::Protocol(
                "the server ended the replication stream".into(),
            ));
        };
        match event {
            ReplicationEvent::Begin {
                final_lsn,
                xid,
                commit_time_micros,
            } => {
                open = Some(OpenTransaction {
                    xid,
                    commit_micros: commit_time_micros,
                    commit_lsn: final_lsn.as_u64(),
                    first_index: 0,
                    rows: Vec::new(),
                    marker: None,
                });
            }
            ReplicationEvent::XLogData { data, .. } => {
                let message = pgoutput::decode(&data)?;
                if let Message::Relation(relation) = message {
                    let id = relation.id;
                    if capture.resources.contains_key(&id) {
                        let shape = RelationShape::describe(&capture.pool, relation).await?;
                        relations.insert(id, Arc::new(shape));
                    }
                } else if let Some(tx) = open.as_mut()
                    && let Some(row) = row_change(&relations, message)?
                {
                    tx.rows.push(row);
                    if tx.rows.len() >= capture.batch {
                        // A large transaction: what came so far goes now,
                        // after the transactions committed before it.
                        let part = OpenTransaction {
                            rows: std::mem::take(&mut tx.rows),
                            marker: None,
                            ..*tx
                        };
                        tx.first_index += part.rows.len();
                        batch.push(Committed {
                            end_lsn: None,
                            open: part,
                        });
                        if flush(capture, state, &client, ctx, std::mem::take(&mut batch)).await? {
                            client.stop();
                            return Ok(Ended::Drained);
                        }
                        rows_in_batch = 0;
                    }
                }
            }
            ReplicationEvent::Message {
                prefix, content, ..
            } if prefix == switch::MARKER_PREFIX => {
                if let Some(tx) = open.as_mut() {
                    tx.marker = Some(String::from_utf8_lossy(&content).into_owned());
                }
            }
            ReplicationEvent::Commit { end_lsn, .. } => {
                if let Some(tx) = open.take() {
                    rows_in_batch += tx.rows.len();
                    batch.push(Committed {
                        end_lsn: Some(end_lsn.as_u64()),
                        open: tx,
                    });
                    if rows_in_batch >= capture.batch {
                        if flush(capture, state, &client, ctx, std::mem::take(&mut batch)).await? {
                            client.stop();
                            return Ok(Ended::Drained);
                        }
                        rows_in_batch = 0;
                    }
                }
            }
            ReplicationEvent::Message { .. }
            | ReplicationEvent::KeepAlive { .. }
            | ReplicationEvent::StoppedAt { .. } => {}
        }
    }
}

/// A decoded row message as a change of a mapped relation.
///
/// An update or delete without the whole old row means the table's
/// `REPLICA IDENTITY` was changed from `FULL` while capturing: an error
/// (capture stops at that change, `/readyz` says why) rather than a payload
/// that differs from the trigger mode's.
fn row_change(
    relations: &HashMap<u32, Arc<RelationShape>>,
    message: Message,
) -> Result<Option<RowChange>, Error> {
    let relation = match &message {
        Message::Insert { relation, .. }
        | Message::Update { relation, .. }
        | Message::Delete { relation, .. } => *relation,
        Message::Relation(_) | Message::Other(_) => return Ok(None),
    };
    let Some(shape) = relations.get(&relation) else {
        // Not a mapped table (the publication holds only mapped ones).
        return Ok(None);
    };
    let no_old_row = || {
        Error::Protocol(format!(
            "{}: a change came without its old row, so the table's REPLICA IDENTITY is no longer \
             FULL and capture cannot go past it. Run `ALTER TABLE {} REPLICA IDENTITY FULL`, then \
             `changewire capture uninstall` and start again (a new slot; what was committed in \
             between is not captured), or capture this table with the trigger mode",
            shape.relation.qualified_name, shape.relation.qualified_name
        ))
    };
    let (action, old, new) = match message {
        Message::Insert { new, .. } => ("CREATE", None, Some(new)),
        Message::Update { old, mut new, .. } => {
            if shape.relation.replica_identity != b'f' || old.is_none() {
                return Err(no_old_row());
            }
            if !new.resolve_unchanged(old.as_ref()) {
                return Err(no_old_row());
            }
            ("UPDATE", old, Some(new))
        }
        Message::Delete { old, .. } => {
            if shape.relation.replica_identity != b'f' {
                return Err(no_old_row());
            }
            ("DELETE", Some(old), None)
        }
        Message::Relation(_) | Message::Other(_) => return Ok(None),
    };
    Ok(Some(RowChange {
        shape: shape.clone(),
        action,
        old,
        new,
    }))
}

/// A row change waiting for its rendered rows.
struct Queued {
    commit_lsn: u64,
    occurred_ms: i64,
    xid: u32,
    /// Its place in its transaction.
    index: usize,
    resource: String,
    action: &'static str,
    old: Option<Slot>,
    new: Option<Slot>,
}

/// Imports committed transactions, then confirms the last one's end; true
/// once the marker of a switch back to triggers was reached (nothing from
/// it on is imported).
async fn flush(
    capture: &LogicalCapture,
    state: &mut State,
    client: &ReplicationClient,
    ctx: &Importer,
    batch: Vec<Committed>,
) -> Result<bool, Error> {
    let mut last_end = None;
    let mut reached = false;
    let mut renderer = Renderer::default();
    let mut queued: Vec<Queued> = Vec::new();
    for committed in batch {
        if state.until.is_some() && committed.open.marker == state.until {
            reached = true;
            break;
        }
        let commit_lsn = committed.open.commit_lsn;
        last_end = committed.end_lsn.or(last_end);
        if let Skip::UntilMarker(token) = &state.skip {
            if committed.open.marker.as_deref() == Some(token.as_str()) {
                switch::marker_seen(&capture.pool, &capture.schema, commit_lsn).await?;
                state.skip = Skip::Through(commit_lsn);
            }
            continue;
        }
        if state.skip.skips(commit_lsn) {
            continue;
        }
        let occurred_ms = (committed.open.commit_micros + PG_EPOCH_MICROS) / 1000;
        for (n, row) in committed.open.rows.into_iter().enumerate() {
            let resource = capture
                .resources
                .get(&row.shape.relation.id)
                .cloned()
                .unwrap_or_default();
            let old = row.old.map(|t| renderer.push(&row.shape, t));
            let new = row.new.map(|t| renderer.push(&row.shape, t));
            queued.push(Queued {
                commit_lsn,
                occurred_ms,
                xid: committed.open.xid,
                index: committed.open.first_index + n,
                resource,
                action: row.action,
                old,
                new,
            });
        }
    }
    if !queued.is_empty() {
        let newest_xid = queued.iter().map(|q| q.xid).max().unwrap_or(0);
        let (rendered, needs, _) = tokio::join!(
            renderer.render(&capture.pool),
            crate::capture::expand::Needs::load(&ctx.store),
            state.epoch.refresh_for(&capture.pool, newest_xid),
        );
        let (mut rendered, needs) = (rendered?, needs?);
        let mut changes = Vec::with_capacity(queued.len());
        for Queued {
            commit_lsn,
            occurred_ms,
            xid,
            index: n,
            resource,
            action,
            old,
            new,
        } in queued
        {
            let Some(table) = capture.tables.get(&resource) else {
                continue;
            };
            let logged = LoggedRow {
                id: i64::try_from(n).unwrap_or(i64::MAX),
                resource,
                action: action.to_string(),
                transaction_id: state.epoch.full(xid),
                occurred_at: occurred_ms,
                logged_at: 0,
                old_row: old.and_then(|s| rendered.take(s)),
                new_row: new.and_then(|s| rendered.take(s)),
            };
            if let Some(mut change) = to_change(&capture.source, table, &logged)? {
                // The change's identity at its source: its transaction's
                // commit position and its place in the transaction.
                change.source_key = Some(format!(
                    "lsn:{}#{n}",
                    Lsn::from_u64(commit_lsn).to_pg_string()
                ));
                changes.push(change);
            }
        }
        crate::capture::expand::related_pg(&capture.pool, &capture.tables, &needs, &mut changes)
            .await?;
        needs.trim_records(&mut changes);
        let outcome = crate::fanout::fan_out(
            &ctx.store,
            &ctx.signals,
            ctx.handoff.as_ref(),
            &ctx.traces,
            &changes,
        )
        .await?;
        metrics::counter!("changewire_changes_captured_total", "source" => "postgres-logical")
            .increment(outcome.changes);
        metrics::counter!("changewire_deliveries_created_total").increment(outcome.deliveries);
    }
    // Durable: the slot may let go of everything up to here.
    if let Some(end) = last_end {
        client.update_applied_lsn(Lsn::from_u64(end));
    }
    Ok(reached)
}

/// Extends the stream's 32-bit transaction ids to the 64-bit ids the
/// trigger mode reports (`txid_current()`), from the server's next id.
#[derive(Debug, Default)]
struct XidEpoch {
    next_full: u64,
}

impl XidEpoch {
    /// Reads the server's next transaction id when `xid` may be newer
    /// than the one known (rarely: once per 2^32 transactions at most,
    /// and at start).
    async fn refresh_for(&mut self, pool: &PgPool, xid: u32) -> Result<(), Error> {
        if self.next_full != 0 && u64::from(xid) < (self.next_full & 0xFFFF_FFFF) {
            return Ok(());
        }
        let next: i64 =
            sqlx::query_scalar("SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint")
                .fetch_one(pool)
                .await?;
        self.next_full = u64::try_from(next).unwrap_or(0);
        Ok(())
    }

    /// The 64-bit id of a past transaction's 32-bit `xid`.
    fn full(&self, xid: u32) -> i64 {
        let epoch = self.next_full >> 32;
        let low = self.next_full & 0xFFFF_FFFF;
        let epoch = if u64::from(xid) < low {
            epoch
        } else {
            epoch.saturating_sub(1)
        };
        i64::try_from((epoch << 32) | u64::from(xid)).unwrap_or(i64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transaction_ids_take_the_epoch() {
        let e = XidEpoch {
            next_full: (3 << 32) | 1000,
        };
        assert_eq!(e.full(999), (3 << 32) | 999);
        // An id above the next one's low half is from before the wrap.
        assert_eq!(e.full(4_000_000_000), (2 << 32) | 4_000_000_000);
        let first = XidEpoch { next_full: 800 };
        assert_eq!(first.full(750), 750);
    }
}
