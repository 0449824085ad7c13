//! Change capture: audit triggers write every committed row change of the
//! mapped tables into a log in the captured database; importers move them
//! into the store and fan them out in one transaction each.
//!
//! * PostgreSQL ([`postgres`]): `logged_actions` and a trigger function in
//!   their own schema; the importer polls the log's primary key every few
//!   milliseconds, or, with `capture_options.notify`, is woken by a NOTIFY
//!   after commit and sweeps periodically (a disconnected listener misses
//!   notifications).
//!   Imported rows are deleted from the log only after their deliveries are
//!   durable; a repeat import is a no-op (idempotent on the log id).
//! * PostgreSQL, logical mode ([`logical`]): a publication and a `pgoutput`
//!   replication slot, streamed; same payload, no writes in the
//!   application's transactions.
//! * SQLite ([`sqlite`]): `_changewire_log` and triggers in the captured
//!   file; the importer polls `PRAGMA data_version` and keeps a cursor in the
//!   store, advanced in the same step as the fan-out.

mod catalog;
pub(crate) mod diff;
pub(crate) mod expand;
pub(crate) mod logical;
pub(crate) mod postgres;
pub(crate) mod rows;
mod sql;
pub(crate) mod sqlite;
pub(crate) mod switch;

use crate::traces::Traces;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::config::{CaptureMode, Config, StoreUrl};
use crate::delivery::handoff::Handoff;
use crate::health::Health;
use crate::operational::CaptureProgress;
use crate::shared::Shared;
use crate::signals::Signals;
use crate::store::Store;

/// Capture failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The captured database cannot be reached or refused a statement.
    #[error("capture database")]
    Database(#[from] sqlx::Error),
    /// A mapped table does not exist.
    #[error("resource {resource}: table `{table}` does not exist in the captured database")]
    MissingTable {
        /// The resource.
        resource: String,
        /// The table.
        table: String,
    },
    /// A mapped table has no primary key, so its rows cannot be identified.
    #[error(
        "resource {resource}: table `{table}` has no primary key; changewire identifies rows by it"
    )]
    NoPrimaryKey {
        /// The resource.
        resource: String,
        /// The table.
        table: String,
    },
    /// A log row cannot be read (corrupted or written by something else).
    #[error("log row {id}: {reason}")]
    BadLogRow {
        /// The log id.
        id: i64,
        /// What is wrong with it.
        reason: String,
    },
    /// Writing to the store failed.
    #[error(transparent)]
    Store(#[from] crate::store::Error),
    /// Logical mode: the server does not write logical WAL.
    #[error(
        "capture_options.mode = \"logical\" needs wal_level = logical (the server has `{current}`): \
         run `ALTER SYSTEM SET wal_level = logical` and restart PostgreSQL, or use mode \"triggers\""
    )]
    WalLevel {
        /// The server's `wal_level`.
        current: String,
    },
    /// Logical mode: a mapped table's updates and deletes would not carry
    /// the old row.
    #[error(
        "resource {resource}: table `{table}` has REPLICA IDENTITY {current}; logical capture sends \
         old values, which needs `ALTER TABLE {table} REPLICA IDENTITY FULL`"
    )]
    ReplicaIdentity {
        /// The resource.
        resource: String,
        /// The table.
        table: String,
        /// Its replica identity (`DEFAULT`, `NOTHING`, `INDEX`).
        current: String,
    },
    /// Logical mode: PostgreSQL's replication stream leaves generated
    /// columns out, so the payload would differ from the trigger mode's.
    #[error(
        "resource {resource}: table `{table}` has generated column `{column}`, which PostgreSQL's \
         replication stream does not carry; capture it with mode \"triggers\""
    )]
    GeneratedColumn {
        /// The resource.
        resource: String,
        /// The table.
        table: String,
        /// The column.
        column: String,
    },
    /// Logical mode: the replication stream failed or sent something
    /// that cannot be decoded.
    #[error("replication stream: {0}")]
    Protocol(String),
    /// Logical mode: the replication connection failed.
    #[error("replication connection")]
    Replication(#[from] pgwire_replication::PgWireError),
    /// Logical mode: another gateway streams the slot (this one stands by).
    #[error("another gateway streams the replication slot; this one takes over if it stops")]
    SlotHeldElsewhere,
    /// The importer's thread could not be started.
    #[error("starting the capture thread")]
    Thread(#[source] std::io::Error),
}

/// What capture knows about a mapped table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TableInfo {
    /// The resource.
    pub(crate) resource: String,
    /// The table as configured.
    pub(crate) table: String,
    /// Primary key columns, in key order.
    pub(crate) primary_key: Vec<String>,
    /// Whether the table has an `etag` column.
    pub(crate) has_etag: bool,
    /// Single-column foreign keys.
    pub(crate) foreign_keys: Vec<ForeignKey>,
}

/// A single-column foreign key, for `expand`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ForeignKey {
    /// The referencing column.
    pub(crate) column: String,
    /// The referenced table.
    pub(crate) target: String,
    /// The referenced column.
    pub(crate) target_column: String,
    /// The referenced column's SQL type (PostgreSQL), for the lookup's cast.
    pub(crate) target_type: String,
}

/// Starts the importer for the configured capture database, if any.
/// Fails when a mapped table is missing or has no primary key.
pub(crate) async fn start(
    shared: &Shared,
    tasks: &mut JoinSet<()>,
    handoff: Option<Handoff>,
    progress: Arc<CaptureProgress>,
) -> Result<(), Error> {
    let config = &shared.config;
    let ctx = Importer {
        progress,
        store: shared.store.clone(),
        signals: shared.signals.clone(),
        health: shared.health.clone(),
        shutdown: shared.shutdown.clone(),
        handoff,
        traces: shared.traces.clone(),
        needs: Arc::default(),
    };
    match &config.capture {
        None => Ok(()),
        Some(StoreUrl::Postgres(url)) => match config.capture_options.mode {
            CaptureMode::Triggers => {
                let capture = postgres::PgCapture::setup(url, config).await?;
                // Back from the logical mode: the slot up to the switch first.
                let prelude = match capture.slot_marker() {
                    Some(marker) => {
                        let drainer = logical::LogicalCapture::drainer(
                            capture.pool(),
                            url,
                            config,
                            capture.tables(),
                            capture.install_id(),
                            marker.to_string(),
                        )
                        .await?;
                        Some(prelude(move |ctx| drainer.drain_to_marker(ctx)))
                    }
                    None => None,
                };
                capture.spawn(ctx, tasks, prelude)
            }
            CaptureMode::Logical => {
                let capture = logical::LogicalCapture::setup(url, config).await?;
                // From the trigger mode: the log's rest first.
                let prelude = capture.log_left().then(|| {
                    let options = capture.connect_options();
                    let (schema, tables, source, capture_options) = (
                        capture.schema().to_string(),
                        capture.tables(),
                        capture.source().to_string(),
                        capture.options().clone(),
                    );
                    prelude(move |ctx| async move {
                        // Connections of the capture thread's runtime.
                        let pool = sqlx::postgres::PgPoolOptions::new()
                            .max_connections(2)
                            .connect_lazy_with(options);
                        match postgres::PgCapture::drainer(
                            pool,
                            &schema,
                            tables,
                            &source,
                            &capture_options,
                        )
                        .await
                        {
                            Ok(log) => log.drain_with_retry(&ctx).await,
                            Err(err) => ctx
                                .health
                                .failing("capture", crate::report::Report(&err).to_string()),
                        }
                    })
                });
                capture.spawn(ctx, tasks, prelude)
            }
        },
        Some(StoreUrl::Sqlite(url)) => sqlite::SqliteCapture::setup(url, config)
            .await?
            .spawn(ctx, tasks),
    }
}

/// Work an importer's thread does before its own loop: what a mode switch
/// left (the trigger log's rest, or the slot up to the switch's marker).
pub(crate) type Prelude = Box<dyn FnOnce(Importer) -> Pin<Box<dyn Future<Output = ()>>> + Send>;

/// Boxes a prelude.
fn prelude<F, Fut>(run: F) -> Prelude
where
    F: FnOnce(Importer) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + 'static,
{
    Box::new(move |ctx| Box::pin(run(ctx)))
}

/// A new identity for a capture installation: 128 random bits, hex. It is
/// written into the captured database at the first install (a metadata
/// table next to the log) and names the capture source in the store, so
/// two captured databases never share a source, and a purged and
/// reinstalled (or recreated) one starts as a new source.
pub(crate) fn new_install_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// Changes arriving within this long keep the importer polling at its busy pace.
const BUSY_WINDOW: Duration = Duration::from_secs(1);

/// How long an importer waits before it looks at its log again: the busy
/// interval while changes are arriving (most of the commit → delivery
/// latency), the idle interval once none came for [`BUSY_WINDOW`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct PollPace {
    busy: Duration,
    idle: Duration,
    last_change: Option<Instant>,
}

impl PollPace {
    /// The pace of `[capture_options]`.
    pub(crate) fn new(options: &crate::config::CaptureOptions) -> Self {
        PollPace {
            busy: options.busy_poll_interval,
            idle: options.poll_interval,
            last_change: None,
        }
    }

    /// Records that the last look found changes.
    pub(crate) fn saw_changes(&mut self) {
        self.last_change = Some(Instant::now());
    }

    /// The wait before the next look.
    pub(crate) fn next_wait(&self) -> Duration {
        match self.last_change {
            Some(at) if at.elapsed() < BUSY_WINDOW => self.busy,
            _ => self.idle,
        }
    }

    /// Waits [`next_wait`](Self::next_wait); false once `shutdown` is
    /// cancelled.
    ///
    /// Short waits sleep the thread: tokio's timer rounds every sleep up to
    /// its next millisecond tick, so a 1 ms busy poll waited 1–2 ms (1.5 on
    /// average, a third of the commit → receiver latency at 500 changes/s)
    /// where the OS sleeps 1.05. Only the capture thread calls this
    /// ([`spawn_on_own_thread`]): its runtime has nothing else to run.
    pub(crate) async fn pause(&self, shutdown: &CancellationToken) -> bool {
        let wait = self.next_wait();
        if wait <= PRECISE_SLEEP_UP_TO {
            std::thread::sleep(wait);
            return !shutdown.is_cancelled();
        }
        tokio::select! {
            _ = shutdown.cancelled() => false,
            _ = tokio::time::sleep(wait) => true,
        }
    }
}

/// Waits up to this long sleep the capture thread instead of a tokio timer.
const PRECISE_SLEEP_UP_TO: Duration = Duration::from_millis(5);

/// Runs an importer on a thread of its own (a single-threaded runtime) with
/// connections of its own. On the main runtime, the next import would queue
/// behind every attempt task a large hand-off just started, a slower import
/// takes a larger batch, and the larger batch starts more attempts at once:
/// under a steady 5,000 changes/s that loop grew commit → delivery latency
/// to a second. On its own thread the importer is scheduled by the OS
/// beside the senders instead of behind them.
fn spawn_on_own_thread<F, Fut>(ctx: Importer, tasks: &mut JoinSet<()>, run: F) -> Result<(), Error>
where
    F: FnOnce(Importer) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + 'static,
{
    let (done, finished) = tokio::sync::oneshot::channel::<()>();
    let health = ctx.health.clone();
    std::thread::Builder::new()
        .name("changewire-capture".into())
        .spawn(move || {
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime.block_on(async move {
                    let store = ctx.store.with_own_connections(4);
                    run(Importer { store, ..ctx }).await;
                }),
                Err(err) => {
                    tracing::error!(error = %err, "the capture thread's runtime did not start");
                    health.failing("capture", format!("capture runtime: {err}"));
                }
            }
            let _ = done.send(());
        })
        .map_err(Error::Thread)?;
    // Shutdown waits for the importer like for any other task.
    tasks.spawn(async move {
        let _ = finished.await;
    });
    Ok(())
}

/// What an importer task needs.
#[derive(Clone)]
pub(crate) struct Importer {
    /// The store.
    pub(crate) store: Store,
    pub(crate) signals: Arc<Signals>,
    pub(crate) health: Arc<Health>,
    pub(crate) shutdown: CancellationToken,
    /// This process's delivery engine, to hand new deliveries to.
    pub(crate) handoff: Option<Handoff>,
    /// Where spans of captured changes go.
    pub(crate) traces: Traces,
    /// Marked each time the importer finds its log empty (`capture.lagging`).
    pub(crate) progress: Arc<CaptureProgress>,
    /// What the subscriptions ask of a batch, as last read.
    pub(crate) needs: Arc<expand::NeedsCache>,
}

/// The wait before an importer tries again after a failure: 100 ms,
/// doubling up to 30 s, and 100 ms again after a success.
#[derive(Debug)]
pub(crate) struct Backoff {
    next: Duration,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(100);
    const LAST: Duration = Duration::from_secs(30);

    /// The first wait.
    pub(crate) fn new() -> Self {
        Backoff { next: Self::FIRST }
    }

    /// After a success: the next failure waits the first wait again.
    pub(crate) fn reset(&mut self) {
        self.next = Self::FIRST;
    }

    /// Reports `err` (`/readyz`'s `capture`, the log, saying what failed),
    /// waits, and doubles the next wait; false once the gateway stops.
    pub(crate) async fn failed(&mut self, ctx: &Importer, what: &str, err: &Error) -> bool {
        ctx.health
            .failing("capture", crate::report::Report(err).to_string());
        tracing::warn!(error = %crate::report::Report(err), retry_in = ?self.next, "{what} failed; retrying");
        let wait = self.next;
        self.next = (self.next * 2).min(Self::LAST);
        tokio::select! {
            _ = ctx.shutdown.cancelled() => false,
            _ = tokio::time::sleep(wait) => true,
        }
    }
}

impl Importer {
    /// Stores `changes` and their deliveries (durably; handed to sending
    /// when this returns) and counts them under `source` in `/metrics`.
    /// With `needs`, see [`crate::store::Store::fan_out`].
    pub(crate) async fn fan_out(
        &self,
        changes: &[crate::store::changes::NewChange],
        source: &'static str,
        needs: Option<&crate::store::changes::NeedsSeen>,
    ) -> Result<crate::store::changes::FanoutOutcome, crate::store::Error> {
        let outcome = crate::fanout::fan_out(
            &self.store,
            &self.signals,
            self.handoff.as_ref(),
            &self.traces,
            changes,
            needs,
        )
        .await?;
        metrics::counter!("changewire_changes_captured_total", "source" => source)
            .increment(outcome.changes);
        metrics::counter!("changewire_deliveries_created_total").increment(outcome.deliveries);
        Ok(outcome)
    }
}

/// Removes what either mode installed: the triggers and trigger function
/// (and, with `purge`, the log and the capture's identity), and on
/// PostgreSQL the replication slot and publication.
pub async fn uninstall(config: &Config, purge: bool) -> Result<(), Error> {
    match &config.capture {
        None => Ok(()),
        Some(StoreUrl::Postgres(url)) => {
            logical::uninstall(url, config).await?;
            postgres::uninstall(url, config, purge).await
        }
        Some(StoreUrl::Sqlite(url)) => sqlite::uninstall(url, config, purge).await,
    }
}
