//! The importer: reads the replication stream, renders each committed
//! transaction's rows, fans them out, and only then confirms the
//! transaction's end to the slot.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt as _;
use pgwire_replication::{Lsn, ReplicationClient, ReplicationEvent};
use sqlx::postgres::PgPoolOptions;

use super::convert::{RelationShape, Renderer, Slot};
use super::pgoutput::{self, Message, Tuple};
use super::xid::XidEpoch;
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
    let mut backoff = crate::capture::Backoff::new();
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
            backoff.reset();
        }
        if matches!(err, Error::SlotHeldElsewhere) {
            // Another gateway streams: this one is a stand-by, ready, and
            // takes over within a few seconds of its end.
            ctx.health.degraded("capture", err.to_string());
            tokio::select! {
                _ = ctx.shutdown.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            }
            continue;
        }
        if !backoff.failed(&ctx, "logical capture", &err).await {
            return;
        }
    }
}

/// Back to triggers: the slot is read to the marker; now it goes.
async fn drop_drained_slot(capture: &LogicalCapture) -> Result<(), Error> {
    switch::drop_slot_and_publication(&capture.pool, &capture.schema).await?;
    switch::forget_switches(&capture.pool, &capture.schema).await?;
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
    /// The index of the next row message in the transaction (every insert,
    /// update and delete counts, mapped or not, so an index never moves
    /// when the mapping changes between a crash and the replay). A large
    /// transaction is fanned out in parts of `batch_size` rows as they
    /// arrive (memory stays bounded), its position confirmed only at its
    /// commit.
    next_index: usize,
    rows: Vec<RowChange>,
    marker: Option<String>,
}

/// A row change as streamed.
struct RowChange {
    /// Its place in its transaction.
    index: usize,
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
    if state.until.is_some() && !switch::slot_exists(&capture.pool, &capture.slot).await? {
        // Back to triggers, and the slot is already gone (dropped by the
        // drain of another gateway, or by an interrupted clean-up).
        return Ok(Ended::Drained);
    }
    let config = slot::replication_config(&capture.url, &capture.schema, &capture.slot)?;
    let mut client = ReplicationClient::connect(config).await?;
    if let Err(err) = client.wait_started().await {
        if err.to_string().contains("is active for PID") {
            return Err(Error::SlotHeldElsewhere);
        }
        return Err(err.into());
    }
    ctx.health.ready("capture");
    let mut relations: HashMap<u32, Arc<RelationShape>> = HashMap::new();
    let mut open: Option<OpenTransaction> = None;
    let mut batch: Vec<Committed> = Vec::new();
    let mut rows_in_batch = 0usize;
    loop {
        let next = if batch.is_empty() {
            tokio::select! {
                _ = ctx.shutdown.cancelled() => {
                    // The worker sends a last status update before it ends
                    // the stream: a restart does not replay what was imported.
                    let _ = tokio::time::timeout(Duration::from_secs(2), client.shutdown()).await;
                    return Ok(Ended::Shutdown);
                }
                event = client.recv() => Some(event),
            }
        } else {
            // Take everything already received, then import it at once.
            client.recv().now_or_never()
        };
        let caught_up = next.is_none();
        if let Some(next) = next {
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
                        next_index: 0,
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
                        && let Some(row) = row_change(&relations, message, &mut tx.next_index)?
                    {
                        tx.rows.push(row);
                        if tx.rows.len() >= capture.options.batch_size {
                            // A large transaction: what came so far goes
                            // now, after the transactions committed before.
                            let part = OpenTransaction {
                                rows: std::mem::take(&mut tx.rows),
                                marker: None,
                                ..*tx
                            };
                            rows_in_batch += part.rows.len();
                            batch.push(Committed {
                                end_lsn: None,
                                open: part,
                            });
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
                    }
                }
                ReplicationEvent::Message { .. }
                | ReplicationEvent::KeepAlive { .. }
                | ReplicationEvent::StoppedAt { .. } => {}
            }
        }
        // Import when nothing more is waiting, or when a batch is full.
        if caught_up || rows_in_batch >= capture.options.batch_size {
            if flush(capture, state, &client, ctx, std::mem::take(&mut batch)).await? {
                client.stop();
                return Ok(Ended::Drained);
            }
            rows_in_batch = 0;
            if caught_up {
                ctx.progress.caught_up();
            }
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
    next_index: &mut usize,
) -> Result<Option<RowChange>, Error> {
    let relation = match &message {
        Message::Insert { relation, .. }
        | Message::Update { relation, .. }
        | Message::Delete { relation, .. } => *relation,
        Message::Relation(_) | Message::Other(_) => return Ok(None),
    };
    let index = *next_index;
    *next_index += 1;
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
            if shape.relation.replica_identity != b'f'
                || old.is_none()
                || !new.resolve_unchanged(old.as_ref())
            {
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
        index,
        shape: shape.clone(),
        action,
        old,
        new,
    }))
}

/// A row change waiting for its rendered rows.
struct Queued {
    commit_lsn: u64,
    commit_micros: i64,
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
    let mut foreign_marker = None;
    let mut renderer = Renderer::default();
    let mut queued: Vec<Queued> = Vec::new();
    for committed in batch {
        if state.until.is_some() && committed.open.marker == state.until {
            reached = true;
            break;
        }
        let commit_lsn = committed.open.commit_lsn;
        let last_before_marker = last_end;
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
        if committed.open.marker.is_some() {
            // Another gateway switched this database back to triggers: what
            // follows the marker is in their log, and the slot is theirs to
            // read to here. What came before it in this batch is still
            // imported and confirmed; nothing from the marker on.
            last_end = last_before_marker;
            foreign_marker = committed.open.marker;
            break;
        }
        // Rounded to the millisecond, as the trigger mode's SQL does.
        let occurred_ms = (committed.open.commit_micros + PG_EPOCH_MICROS + 500).div_euclid(1000);
        let commit_micros = committed.open.commit_micros;
        for row in committed.open.rows {
            let resource = capture
                .resources
                .get(&row.shape.relation.id)
                .cloned()
                .unwrap_or_default();
            let old = row.old.map(|t| renderer.push(&row.shape, t));
            let new = row.new.map(|t| renderer.push(&row.shape, t));
            queued.push(Queued {
                commit_lsn,
                commit_micros,
                occurred_ms,
                xid: committed.open.xid,
                index: row.index,
                resource,
                action: row.action,
                old,
                new,
            });
        }
    }
    if !queued.is_empty() {
        let (rendered, epoch) = tokio::join!(
            renderer.render(&capture.pool),
            state
                .epoch
                .refresh_for(&capture.pool, queued.iter().map(|q| q.xid)),
        );
        epoch?;
        let mut rendered = rendered?;
        let mut changes = Vec::with_capacity(queued.len());
        for Queued {
            commit_lsn,
            commit_micros,
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
                // The change's identity at its source: its transaction's
                // commit position and time (positions repeat on a new
                // timeline after a restore or failover; with the time they
                // do not) and its place in the transaction.
                source_key: format!(
                    "lsn:{}@{commit_micros}#{n}",
                    Lsn::from_u64(commit_lsn).to_pg_string()
                ),
                old_row: old.and_then(|s| rendered.take(s)),
                new_row: new.and_then(|s| rendered.take(s)),
            };
            if let Some(change) = to_change(&capture.source, table, &logged)? {
                changes.push(change);
            }
        }
        crate::capture::expand::fan_out_pg(
            ctx,
            &capture.pool,
            &capture.tables,
            changes,
            "postgres-logical",
        )
        .await?;
    }
    // Durable: the slot may let go of everything up to here.
    if let Some(end) = last_end {
        client.update_applied_lsn(Lsn::from_u64(end));
    }
    if let Some(marker) = foreign_marker {
        return Err(Error::Protocol(format!(
            "the database was switched back to the trigger mode (marker {marker}): this \
             gateway's logical capture stops; restart it with capture_options.mode = \
             \"triggers\""
        )));
    }
    Ok(reached)
}
