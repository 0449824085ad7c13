//! PostgreSQL capture, trigger mode: the importer of the trigger log
//! ([`install`] puts the log and triggers in place, [`listen`] wakes the
//! importer on NOTIFY).

mod install;
mod listen;
mod session;

use install::install_sql;
pub(crate) use install::uninstall;
use session::ImportSession;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgPoolOptions;
use sqlx::{AssertSqlSafe, PgPool, Row};
use tokio::task::JoinSet;

use super::catalog::{connect, introspect};
use super::rows::{LoggedRow, to_change};
use super::sql::quote;
use super::{Error, Importer, PollPace, TableInfo};
use crate::config::{Config, redact_url};

/// The channel the trigger notifies after commit.
pub(crate) const CHANNEL: &str = "changewire_changes";

/// A prepared PostgreSQL capture.
pub struct PgCapture {
    pool: PgPool,
    schema: String,
    tables: Arc<HashMap<String, TableInfo>>,
    source: String,
    batch: i64,
    sweep: Duration,
    notify: bool,
    pace: PollPace,
    /// The importer's read of the log ([`read_log_sql`]).
    read_sql: String,
    /// The capture's identity.
    install_id: String,
    /// Back from the logical mode: the marker its slot is read to (and then
    /// dropped) before the log.
    slot_marker: Option<String>,
    /// The importer's connection and its import lock.
    session: tokio::sync::Mutex<ImportSession>,
}

impl PgCapture {
    /// Connects, checks every mapped table and installs the log, the trigger
    /// function and the triggers (idempotently, under an advisory lock).
    pub async fn setup(url: &str, config: &Config) -> Result<PgCapture, Error> {
        let pool = connect(url).await?;
        let schema = config.capture_options.schema.clone();
        let mut tables = HashMap::new();
        for resource in config.resources.captured() {
            let table = resource.table.clone().unwrap_or_default();
            let info = introspect(&pool, &resource.name, &table).await?;
            tables.insert(resource.name.clone(), info);
        }
        let mut tx = pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('changewire.capture.install'))")
            .execute(&mut *tx)
            .await?;
        sqlx::raw_sql(AssertSqlSafe(install_sql(
            &schema,
            config.capture_options.notify,
        )))
        .execute(&mut *tx)
        .await?;
        let names: Vec<String> = tables.values().map(|t| t.table.clone()).collect();
        let had_triggers: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'changewire_capture' \
             AND tgrelid = ANY(SELECT to_regclass(t) FROM unnest($1::text[]) t))",
        )
        .bind(&names)
        .fetch_one(&mut *tx)
        .await?;
        for info in tables.values() {
            let sql = format!(
                "CREATE OR REPLACE TRIGGER changewire_capture AFTER INSERT OR UPDATE OR DELETE ON {} \
                 FOR EACH ROW EXECUTE FUNCTION {schema}.capture_row_change('{}')",
                quote(&info.table),
                info.resource
            );
            sqlx::query(AssertSqlSafe(sql)).execute(&mut *tx).await?;
        }
        let install_id = super::switch::install_id(&mut tx, &schema).await?;
        // Back from the logical mode: its slot is read to this marker first.
        let found = super::switch::to_triggers(&mut tx, &schema, &install_id, had_triggers).await?;
        tx.commit().await?;
        let slot_marker = match found {
            super::switch::SlotFound::None => None,
            super::switch::SlotFound::Drain(token) => Some(token),
            super::switch::SlotFound::Unused => {
                tracing::info!(
                    "a replication slot from a switch to logical capture that never finished: dropped"
                );
                super::switch::drop_slot_and_publication(&pool, &schema).await?;
                None
            }
        };
        let tables = Arc::new(tables);
        let commit_timestamps: bool =
            sqlx::query_scalar("SELECT current_setting('track_commit_timestamp') = 'on'")
                .fetch_one(&pool)
                .await
                .unwrap_or(false);
        tracing::info!(
            capture = %redact_url(url),
            tables = tables.len(),
            commit_timestamps,
            install_id = %install_id,
            "PostgreSQL capture installed"
        );
        Ok(PgCapture {
            pool,
            // Two captured databases (even with the same schema) never share
            // a source, and a purged and reinstalled log is a new one.
            source: format!("pg:{schema}@{install_id}"),
            read_sql: read_log_sql(&schema, commit_timestamps),
            schema,
            tables,
            batch: i64::try_from(config.capture_options.batch_size).unwrap_or(1000),
            sweep: config.capture_options.sweep_interval,
            notify: config.capture_options.notify,
            pace: PollPace::new(&config.capture_options),
            install_id,
            slot_marker,
            session: Default::default(),
        })
    }

    /// An importer of what the trigger mode left in its log, after a switch
    /// to the logical mode (the triggers are gone; the log only shrinks).
    pub(crate) async fn drainer(
        pool: PgPool,
        schema: &str,
        tables: Arc<HashMap<String, TableInfo>>,
        source: &str,
        options: &crate::config::CaptureOptions,
    ) -> Result<PgCapture, Error> {
        let commit_timestamps: bool =
            sqlx::query_scalar("SELECT current_setting('track_commit_timestamp') = 'on'")
                .fetch_one(&pool)
                .await?;
        Ok(PgCapture {
            pool,
            schema: schema.to_string(),
            tables,
            source: source.to_string(),
            batch: i64::try_from(options.batch_size).unwrap_or(1000),
            sweep: options.sweep_interval,
            notify: false,
            pace: PollPace::new(options),
            read_sql: read_log_sql(schema, commit_timestamps),
            install_id: String::new(),
            slot_marker: None,
            session: Default::default(),
        })
    }

    /// Imports the log until it is empty (waiting while another gateway's
    /// importer holds the import lock).
    pub(crate) async fn drain(&self, ctx: &Importer) -> Result<(), Error> {
        while !ctx.shutdown.is_cancelled() {
            if self.import_batch(ctx).await? > 0 {
                continue;
            }
            if !super::switch::log_has_rows(&self.pool, &self.schema).await? {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Ok(())
    }

    /// The mapped tables.
    pub(crate) fn tables(&self) -> Arc<HashMap<String, TableInfo>> {
        self.tables.clone()
    }

    /// Connections to the captured database.
    pub(crate) fn pool(&self) -> PgPool {
        self.pool.clone()
    }

    /// The capture's identity.
    pub(crate) fn install_id(&self) -> &str {
        &self.install_id
    }

    /// Back from the logical mode: the marker to read its slot to.
    pub(crate) fn slot_marker(&self) -> Option<&str> {
        self.slot_marker.as_deref()
    }

    /// Imports the log until it is empty, retrying with backoff until it
    /// is done or the gateway stops.
    pub(crate) async fn drain_with_retry(&self, ctx: &Importer) {
        let mut backoff = super::Backoff::new();
        while let Err(err) = self.drain(ctx).await {
            if !backoff
                .failed(ctx, "importing the trigger log's rest", &err)
                .await
            {
                return;
            }
        }
    }

    /// Spawns the listener (main runtime) and, on a thread of its own, the
    /// `prelude` (a mode switch's leftovers), then the importer.
    pub(crate) fn spawn(
        mut self,
        ctx: Importer,
        tasks: &mut JoinSet<()>,
        prelude: Option<super::Prelude>,
    ) -> Result<(), Error> {
        if self.notify {
            tasks.spawn(listen::listen(self.pool.clone(), ctx.clone()));
        }
        super::spawn_on_own_thread(ctx, tasks, move |ctx| async move {
            // Asynchronous commit: the importer's only writes are the
            // deletions of log rows it has fanned out (durably, in the
            // store). A deletion lost in a server crash brings the rows
            // back, and importing them again is a no-op (fan-out is
            // idempotent per log row), so no commit here waits on the disk.
            // Its read is planned once per connection, not once per run
            // (the planning cost more than the read).
            let options = (*self.pool.connect_options())
                .clone()
                .options([("synchronous_commit", "off"), crate::store::GENERIC_PLANS]);
            self.pool = PgPoolOptions::new()
                .max_connections(2)
                .acquire_timeout(Duration::from_secs(10))
                .connect_lazy_with(options);
            // What committed before the triggers existed is in the slot:
            // delivered first, then the log.
            if let Some(prelude) = prelude {
                prelude(ctx.clone()).await;
            }
            self.import_loop(ctx).await;
        })
    }

    async fn import_loop(mut self, ctx: Importer) {
        let mut backoff = super::Backoff::new();
        loop {
            if ctx.shutdown.is_cancelled() {
                return;
            }
            match self.import_batch(&ctx).await {
                Ok(imported) => {
                    ctx.health.ready("capture");
                    backoff.reset();
                    if imported > 0 {
                        self.pace.saw_changes();
                    }
                    if imported as u64 >= self.batch.unsigned_abs() {
                        continue; // a full batch: more may be waiting
                    }
                    if imported == 0 {
                        ctx.progress.caught_up();
                    }
                }
                Err(err) => {
                    if !backoff.failed(&ctx, "capture import", &err).await {
                        return;
                    }
                    continue;
                }
            }
            if !self.wait_for_changes(&ctx).await {
                return;
            }
        }
    }

    /// Waits until changes may be waiting; false on shutdown.
    async fn wait_for_changes(&self, ctx: &Importer) -> bool {
        if self.notify {
            tokio::select! {
                _ = ctx.shutdown.cancelled() => return false,
                _ = ctx.signals.capture_pending.notified() => {}
                _ = tokio::time::sleep(self.sweep) => {}
            }
            return true;
        }
        // The import's read of the log is the probe: an empty read costs
        // what a probe would, and a read that finds rows saves a round trip.
        self.pace.pause(&ctx.shutdown).await
    }

    /// Imports one batch; returns how many log rows it handled (none while
    /// another gateway's importer holds the import lock). After a failure
    /// the importer's connection is closed, and its lock with it.
    async fn import_batch(&self, ctx: &Importer) -> Result<usize, Error> {
        let mut session = self.session.lock().await;
        let result = self.import_batch_on(&mut session, ctx).await;
        if result.is_err() {
            session.reset().await;
        }
        result
    }

    async fn import_batch_on(
        &self,
        session: &mut ImportSession,
        ctx: &Importer,
    ) -> Result<usize, Error> {
        let imported = session.to_delete();
        let Some(conn) = session.locked(&self.pool).await? else {
            return Ok(0);
        };
        let rows = sqlx::query(AssertSqlSafe(self.read_sql.as_str()))
            .bind(self.batch)
            .bind(&imported)
            .fetch_all(&mut *conn)
            .await?;
        session.deleted(&imported, &self.pool, &self.schema);
        if rows.is_empty() {
            return Ok(0);
        }
        let mut ids = Vec::with_capacity(rows.len());
        let mut changes = Vec::with_capacity(rows.len());
        for r in &rows {
            let id = r.try_get("id")?;
            let logged = LoggedRow {
                id,
                resource: r.try_get("resource")?,
                action: r.try_get("action")?,
                transaction_id: r.try_get("transaction_id")?,
                occurred_at: r.try_get("occurred_ms")?,
                source_key: LoggedRow::log_key(id, r.try_get("logged_us")?),
                old_row: r.try_get("old_row")?,
                new_row: r.try_get("new_row")?,
            };
            ids.push(logged.id);
            let Some(table) = self.tables.get(&logged.resource) else {
                // A trigger for a resource no longer mapped: mark it handled.
                tracing::debug!(resource = %logged.resource, "change for an unmapped resource skipped");
                continue;
            };
            if let Some(change) = to_change(&self.source, table, &logged)? {
                changes.push(change);
            }
        }
        // Deliveries are durable and handed to sending once this returns;
        // the log rows go with the next read, so a crash in between
        // re-imports them as no-ops.
        super::expand::fan_out_pg(ctx, &self.pool, &self.tables, changes, "postgres").await?;
        let n = ids.len();
        session.imported(ids);
        Ok(n)
    }
}

/// The importer's read of the log, with `$1` the batch size and `$2` the
/// rows the last batch fanned out: those are deleted by this read (one
/// round trip, not two per batch), and the read leaves them out, since it
/// sees the log as it was before the deletion. `occurred_ms` is the
/// commit's time where the server tracks it, else the trigger's clock.
fn read_log_sql(schema: &str, commit_timestamps: bool) -> String {
    let occurred = if commit_timestamps {
        "COALESCE(pg_xact_commit_timestamp(l.xmin), l.occurred_at)"
    } else {
        "l.occurred_at"
    };
    format!(
        "WITH imported AS (DELETE FROM {schema}.logged_actions WHERE id = ANY($2)) \
         SELECT l.id, l.resource, l.action, l.transaction_id, \
         (extract(epoch FROM {occurred}) * 1000)::bigint AS occurred_ms, \
         (extract(epoch FROM l.occurred_at) * 1000000)::bigint AS logged_us, \
         l.old_row::text AS old_row, l.new_row::text AS new_row \
         FROM {schema}.logged_actions l WHERE l.dispatched_at IS NULL AND l.id <> ALL($2) \
         ORDER BY l.id LIMIT $1"
    )
}
