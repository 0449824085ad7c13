//! PostgreSQL capture: install, introspect, listen, import.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use sqlx::{AssertSqlSafe, PgPool, Row};
use tokio::task::JoinSet;

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
    commit_timestamps: bool,
}

/// The install script (idempotent).
fn install_sql(schema: &str, notify: bool) -> String {
    let notify = if notify {
        format!("PERFORM pg_notify('{CHANNEL}', tx::text);")
    } else {
        "-- no NOTIFY: the importer polls (capture_options.notify = false)".to_string()
    };
    format!(
        r#"
CREATE SCHEMA IF NOT EXISTS {schema};
CREATE TABLE IF NOT EXISTS {schema}.logged_actions (
    id BIGSERIAL PRIMARY KEY,
    table_name TEXT NOT NULL,
    resource TEXT NOT NULL,
    action TEXT NOT NULL,
    transaction_id BIGINT NOT NULL,
    occurred_at TIMESTAMPTZ NOT NULL,
    old_row JSON,
    new_row JSON,
    dispatched_at TIMESTAMPTZ
);
-- The capture's identity: made at the first install, dropped with the log
-- by `capture uninstall --purge`. It names the capture source in the store.
CREATE TABLE IF NOT EXISTS {schema}.capture_meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE OR REPLACE FUNCTION {schema}.capture_row_change() RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE
    o json;
    n json;
    tx bigint := txid_current();
BEGIN
    -- `json` (text) is cheaper to build than `jsonb` and keeps column order.
    IF TG_OP = 'INSERT' THEN
        n := to_json(NEW);
    ELSIF TG_OP = 'UPDATE' THEN
        o := to_json(OLD);
        n := to_json(NEW);
        IF o::text = n::text THEN
            RETURN NULL;
        END IF;
    ELSE
        o := to_json(OLD);
    END IF;
    INSERT INTO {schema}.logged_actions (table_name, resource, action, transaction_id, occurred_at, old_row, new_row)
    VALUES (TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME, TG_ARGV[0],
            CASE TG_OP WHEN 'INSERT' THEN 'CREATE' WHEN 'UPDATE' THEN 'UPDATE' ELSE 'DELETE' END,
            tx, clock_timestamp(), o, n);
    {notify}
    RETURN NULL;
END
$fn$;
"#
    )
}

pub(crate) async fn introspect(
    pool: &PgPool,
    resource: &str,
    table: &str,
) -> Result<TableInfo, Error> {
    let oid: Option<i64> = sqlx::query_scalar("SELECT to_regclass($1)::oid::bigint")
        .bind(table)
        .fetch_one(pool)
        .await?;
    let oid = oid.ok_or_else(|| Error::MissingTable {
        resource: resource.into(),
        table: table.into(),
    })?;
    let primary_key: Vec<String> = sqlx::query_scalar(
        "SELECT a.attname::text FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) \
         WHERE i.indrelid = $1::bigint::oid AND i.indisprimary ORDER BY array_position(i.indkey::int2[], a.attnum)",
    )
    .bind(oid)
    .fetch_all(pool)
    .await?;
    if primary_key.is_empty() {
        return Err(Error::NoPrimaryKey {
            resource: resource.into(),
            table: table.into(),
        });
    }
    let has_etag: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = $1::bigint::oid AND attname = 'etag' AND NOT attisdropped AND attnum > 0)",
    )
    .bind(oid)
    .fetch_one(pool)
    .await?;
    let fks = sqlx::query(
        "SELECT a.attname::text AS col, c.confrelid::regclass::text AS target, af.attname::text AS target_col, \
         format_type(af.atttypid, af.atttypmod) AS target_type \
         FROM pg_constraint c JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1] \
         JOIN pg_attribute af ON af.attrelid = c.confrelid AND af.attnum = c.confkey[1] \
         WHERE c.conrelid = $1::bigint::oid AND c.contype = 'f' AND array_length(c.conkey, 1) = 1",
    )
    .bind(oid)
    .fetch_all(pool)
    .await?;
    let foreign_keys = fks
        .iter()
        .map(|r| super::ForeignKey {
            column: r.get("col"),
            target: r.get("target"),
            target_column: r.get("target_col"),
            target_type: r.get("target_type"),
        })
        .collect();
    Ok(TableInfo {
        resource: resource.into(),
        table: table.into(),
        primary_key,
        has_etag,
        foreign_keys,
    })
}

/// Connects with a small pool.
pub(crate) async fn connect(url: &str) -> Result<PgPool, Error> {
    // No JIT: see `Store::connect`.
    let options = PgConnectOptions::from_str(url)?.options([("jit", "off")]);
    Ok(PgPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await?)
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
        for info in tables.values() {
            let sql = format!(
                "CREATE OR REPLACE TRIGGER changewire_capture AFTER INSERT OR UPDATE OR DELETE ON {} \
                 FOR EACH ROW EXECUTE FUNCTION {schema}.capture_row_change('{}')",
                quote(&info.table),
                info.resource
            );
            sqlx::query(AssertSqlSafe(sql)).execute(&mut *tx).await?;
        }
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO {schema}.capture_meta (key, value) VALUES ('install_id', $1) ON CONFLICT (key) DO NOTHING"
        )))
        .bind(super::new_install_id())
        .execute(&mut *tx)
        .await?;
        let install_id: String = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT value FROM {schema}.capture_meta WHERE key = 'install_id'"
        )))
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
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
            schema,
            tables: Arc::new(tables),
            batch: i64::try_from(config.capture_options.batch_size).unwrap_or(1000),
            sweep: config.capture_options.sweep_interval,
            notify: config.capture_options.notify,
            pace: PollPace::new(&config.capture_options),
            commit_timestamps,
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
            commit_timestamps,
        })
    }

    /// Imports the log until it is empty.
    pub(crate) async fn drain(&self, ctx: &Importer) -> Result<(), Error> {
        while self.import_batch(ctx).await? > 0 {
            if ctx.shutdown.is_cancelled() {
                break;
            }
        }
        Ok(())
    }

    /// Spawns the listener (main runtime) and the importer (its own thread,
    /// with its own connections).
    pub(crate) fn spawn(mut self, ctx: Importer, tasks: &mut JoinSet<()>) -> Result<(), Error> {
        if self.notify {
            tasks.spawn(listen(self.pool.clone(), ctx.clone()));
        }
        super::spawn_on_own_thread(ctx, tasks, move |ctx| async move {
            // Asynchronous commit: the importer's only writes are the
            // deletions of log rows it has fanned out (durably, in the
            // store). A deletion lost in a server crash brings the rows
            // back, and importing them again is a no-op (fan-out is
            // idempotent per log row), so no commit here waits on the disk.
            let options = (*self.pool.connect_options())
                .clone()
                .options([("synchronous_commit", "off")]);
            self.pool = PgPoolOptions::new()
                .max_connections(2)
                .acquire_timeout(Duration::from_secs(10))
                .connect_lazy_with(options);
            self.import_loop(ctx).await;
        })
    }

    async fn import_loop(mut self, ctx: Importer) {
        let mut backoff = Duration::from_millis(100);
        loop {
            if ctx.shutdown.is_cancelled() {
                return;
            }
            match self.import_batch(&ctx).await {
                Ok(imported) => {
                    ctx.health.ready("capture");
                    backoff = Duration::from_millis(100);
                    if imported > 0 {
                        self.pace.saw_changes();
                        continue; // more may be waiting
                    }
                    ctx.progress.caught_up();
                }
                Err(err) => {
                    ctx.health
                        .failing("capture", crate::report::Report(&err).to_string());
                    tracing::warn!(error = %crate::report::Report(&err), retry_in = ?backoff, "capture import failed; retrying");
                    tokio::select! {
                        _ = ctx.shutdown.cancelled() => return,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(30));
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
        let probe = format!(
            "SELECT EXISTS (SELECT 1 FROM {}.logged_actions)",
            self.schema
        );
        loop {
            if !self.pace.pause(&ctx.shutdown).await {
                return false;
            }
            // A cheap probe of the primary key; errors go to the import, which reports them.
            match sqlx::query_scalar::<_, bool>(AssertSqlSafe(probe.as_str()))
                .fetch_one(&self.pool)
                .await
            {
                Ok(false) => {
                    ctx.progress.caught_up();
                    continue;
                }
                Ok(true) | Err(_) => return true,
            }
        }
    }

    /// Imports one batch; returns how many log rows it handled.
    async fn import_batch(&self, ctx: &Importer) -> Result<usize, Error> {
        let mut tx = self.pool.begin().await?;
        // One importer at a time across gateways keeps per-row commit order;
        // another gateway takes over at once if this one dies (the lock is
        // transaction-scoped). The lock is taken in the same statement as
        // the read, as a one-time filter (no rows when another importer
        // holds it; the scan stays the ordered primary-key scan): one round
        // trip fewer on the commit → delivery path.
        let occurred = if self.commit_timestamps {
            "COALESCE(pg_xact_commit_timestamp(l.xmin), l.occurred_at)"
        } else {
            "l.occurred_at"
        };
        let sql = format!(
            "SELECT l.id, l.resource, l.action, l.transaction_id, \
             (extract(epoch FROM {occurred}) * 1000)::bigint AS occurred_ms, \
             (extract(epoch FROM l.occurred_at) * 1000000)::bigint AS logged_us, \
             l.old_row::text AS old_row, l.new_row::text AS new_row \
             FROM {schema}.logged_actions l \
             WHERE (SELECT pg_try_advisory_xact_lock(hashtext('changewire.capture.import'))) AND l.dispatched_at IS NULL \
             ORDER BY l.id LIMIT $1 FOR UPDATE OF l SKIP LOCKED",
            schema = self.schema
        );
        // What the subscriptions need (a query to the store) is read while
        // the log is (a query to the captured database): one wait, not two.
        let read_log = sqlx::query(AssertSqlSafe(sql))
            .bind(self.batch)
            .fetch_all(&mut *tx);
        let (rows, needs) = tokio::join!(read_log, super::expand::Needs::load(&ctx.store));
        let (rows, needs) = (rows?, needs?);
        if rows.is_empty() {
            return Ok(0);
        }
        let mut ids = Vec::with_capacity(rows.len());
        let mut changes = Vec::with_capacity(rows.len());
        for r in &rows {
            let logged = LoggedRow {
                id: r.try_get("id")?,
                resource: r.try_get("resource")?,
                action: r.try_get("action")?,
                transaction_id: r.try_get("transaction_id")?,
                occurred_at: r.try_get("occurred_ms")?,
                logged_at: r.try_get("logged_us")?,
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
        super::expand::related_pg(&self.pool, &self.tables, &needs, &mut changes).await?;
        needs.trim_records(&mut changes);
        // Deliveries are durable and handed to sending once this returns;
        // the log rows go after, so a crash in between re-imports them as
        // no-ops.
        let outcome = crate::fanout::fan_out(
            &ctx.store,
            &ctx.signals,
            ctx.handoff.as_ref(),
            &ctx.traces,
            &changes,
        )
        .await?;
        let mark = format!(
            "DELETE FROM {}.logged_actions WHERE id = ANY($1)",
            self.schema
        );
        sqlx::query(AssertSqlSafe(mark))
            .bind(&ids)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        metrics::counter!("changewire_changes_captured_total", "source" => "postgres")
            .increment(outcome.changes);
        metrics::counter!("changewire_deliveries_created_total").increment(outcome.deliveries);
        Ok(ids.len())
    }
}

/// Listens for the trigger's notifications and wakes the importer;
/// reconnects with backoff.
async fn listen(pool: PgPool, ctx: Importer) {
    let mut backoff = Duration::from_millis(100);
    loop {
        if ctx.shutdown.is_cancelled() {
            return;
        }
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(l) => l,
            Err(err) => {
                ctx.health.failing("capture_listener", err.to_string());
                tokio::select! {
                    _ = ctx.shutdown.cancelled() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
                continue;
            }
        };
        if let Err(err) = listener.listen(CHANNEL).await {
            ctx.health.failing("capture_listener", err.to_string());
            tokio::time::sleep(backoff).await;
            continue;
        }
        ctx.health.ready("capture_listener");
        backoff = Duration::from_millis(100);
        // Changes committed while disconnected are found by the importer's sweep.
        ctx.signals.capture_pending.notify_one();
        loop {
            tokio::select! {
                _ = ctx.shutdown.cancelled() => return,
                received = listener.try_recv() => match received {
                    Ok(Some(_)) => ctx.signals.capture_pending.notify_one(),
                    Ok(None) => {
                        // The connection dropped; sqlx reconnects on the next call.
                        ctx.signals.capture_pending.notify_one();
                    }
                    Err(err) => {
                        ctx.health.failing("capture_listener", err.to_string());
                        break;
                    }
                }
            }
        }
    }
}

/// Drops the triggers and the trigger function; with `purge`, the log and
/// the capture's identity too.
pub(crate) async fn uninstall(url: &str, config: &Config, purge: bool) -> Result<(), Error> {
    let pool = connect(url).await?;
    let schema = &config.capture_options.schema;
    let mut tx = pool.begin().await?;
    for resource in config.resources.captured() {
        let table = resource.table.clone().unwrap_or_default();
        let exists: Option<i64> = sqlx::query_scalar("SELECT to_regclass($1)::oid::bigint")
            .bind(&table)
            .fetch_one(&mut *tx)
            .await?;
        if exists.is_some() {
            let sql = format!(
                "DROP TRIGGER IF EXISTS changewire_capture ON {}",
                quote(&table)
            );
            sqlx::query(AssertSqlSafe(sql)).execute(&mut *tx).await?;
        }
    }
    sqlx::query(AssertSqlSafe(format!(
        "DROP FUNCTION IF EXISTS {schema}.capture_row_change() CASCADE"
    )))
    .execute(&mut *tx)
    .await?;
    if purge {
        // The identity goes with the log: a reinstall is a new source.
        for table in ["logged_actions", "capture_meta"] {
            sqlx::query(AssertSqlSafe(format!(
                "DROP TABLE IF EXISTS {schema}.{table}"
            )))
            .execute(&mut *tx)
            .await?;
        }
    }
    tx.commit().await?;
    pool.close().await;
    Ok(())
}
