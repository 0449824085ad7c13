//! SQLite capture: triggers in the captured file write `_changewire_log`;
//! the importer notices commits by polling `PRAGMA data_version` and keeps a
//! cursor in the store, so it never writes to the captured file except to
//! trim log rows it has already imported.
//!
//! SQLite has no transaction identifier visible to triggers: each change's
//! `transaction_id` is its log id.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use sqlx::{AssertSqlSafe, Row, SqlitePool};
use tokio::task::JoinSet;

use super::rows::{LoggedRow, to_change};
use super::{Error, ForeignKey, Importer, PollPace, TableInfo};
use crate::config::Config;
use crate::envelope::Action;
use crate::store::changes::CaptureCursor;

/// The log table in the captured file.
pub(crate) const LOG_TABLE: &str = "_changewire_log";

/// The capture's identity in the captured file: `install_id`, made at the
/// first install and dropped with the log by `capture uninstall --purge`.
/// A purged and reinstalled (or recreated) file is a new source, with a
/// cursor of its own that starts at its first row.
pub(crate) const META_TABLE: &str = "_changewire_meta";

/// Log rows kept after import before they are trimmed.
const TRIM_AFTER: i64 = 1000;

/// A prepared SQLite capture.
pub(crate) struct SqliteCapture {
    pool: SqlitePool,
    tables: Arc<HashMap<String, TableInfo>>,
    columns: Arc<HashMap<String, Vec<String>>>,
    source: String,
    /// The source name before identities (`sqlite:<url>`), when this start
    /// created the identity: its cursor is taken over once.
    legacy_source: Option<String>,
    url: String,
    batch: i64,
    sweep: Duration,
    pace: PollPace,
    imported_since_trim: std::sync::atomic::AtomicI64,
}

/// `json_object('c', <prefix>"c", …)` for a column list; BLOBs become hex.
pub(crate) fn json_object_expr(columns: &[String], prefix: &str) -> String {
    let pairs: Vec<String> = columns
        .iter()
        .map(|c| {
            let col = format!("{prefix}\"{c}\"");
            format!("'{c}', CASE typeof({col}) WHEN 'blob' THEN hex({col}) ELSE {col} END")
        })
        .collect();
    format!("json_object({})", pairs.join(", "))
}

fn bare_table(table: &str) -> &str {
    table.rsplit('.').next().unwrap_or(table)
}

async fn introspect(
    pool: &SqlitePool,
    resource: &str,
    table: &str,
) -> Result<(TableInfo, Vec<String>), Error> {
    let name = bare_table(table);
    let cols = sqlx::query(AssertSqlSafe(format!("PRAGMA table_info(\"{name}\")")))
        .fetch_all(pool)
        .await?;
    if cols.is_empty() {
        return Err(Error::MissingTable {
            resource: resource.into(),
            table: table.into(),
        });
    }
    let mut columns = Vec::new();
    let mut pk: Vec<(i64, String)> = Vec::new();
    for c in &cols {
        let col: String = c.try_get("name")?;
        let pk_pos: i64 = c.try_get("pk")?;
        if pk_pos > 0 {
            pk.push((pk_pos, col.clone()));
        }
        columns.push(col);
    }
    pk.sort();
    if pk.is_empty() {
        return Err(Error::NoPrimaryKey {
            resource: resource.into(),
            table: table.into(),
        });
    }
    let fks = sqlx::query(AssertSqlSafe(format!(
        "PRAGMA foreign_key_list(\"{name}\")"
    )))
    .fetch_all(pool)
    .await?;
    let mut foreign_keys = Vec::new();
    for f in &fks {
        let seq: i64 = f.try_get("seq")?;
        if seq != 0 {
            continue;
        }
        let to: Option<String> = f.try_get("to")?;
        foreign_keys.push(ForeignKey {
            column: f.try_get("from")?,
            target: f.try_get("table")?,
            target_column: to.unwrap_or_else(|| "rowid".into()),
            target_type: String::new(),
        });
    }
    let has_etag = columns.iter().any(|c| c == "etag");
    Ok((
        TableInfo {
            resource: resource.into(),
            table: name.to_string(),
            primary_key: pk.into_iter().map(|(_, c)| c).collect(),
            has_etag,
            foreign_keys,
        },
        columns,
    ))
}

fn trigger_sql(info: &TableInfo, columns: &[String]) -> Vec<String> {
    let t = &info.table;
    let now = "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)";
    let insert = |action: &str, old: &str, new: &str| {
        format!(
            "INSERT INTO {LOG_TABLE} (table_name, resource, action, occurred_at, old_row, new_row) \
             VALUES ('{t}', '{}', '{action}', {now}, {old}, {new});",
            info.resource
        )
    };
    let changed = columns
        .iter()
        .map(|c| format!("OLD.\"{c}\" IS NOT NEW.\"{c}\""))
        .collect::<Vec<_>>()
        .join(" OR ");
    let old = json_object_expr(columns, "OLD.");
    let new = json_object_expr(columns, "NEW.");
    vec![
        format!("DROP TRIGGER IF EXISTS \"changewire_{t}_insert\""),
        format!("DROP TRIGGER IF EXISTS \"changewire_{t}_update\""),
        format!("DROP TRIGGER IF EXISTS \"changewire_{t}_delete\""),
        format!(
            "CREATE TRIGGER \"changewire_{t}_insert\" AFTER INSERT ON \"{t}\" BEGIN {} END",
            insert(Action::Create.api_name(), "NULL", &new)
        ),
        format!(
            "CREATE TRIGGER \"changewire_{t}_update\" AFTER UPDATE ON \"{t}\" WHEN {changed} BEGIN {} END",
            insert(Action::Update.api_name(), &old, &new)
        ),
        format!(
            "CREATE TRIGGER \"changewire_{t}_delete\" AFTER DELETE ON \"{t}\" BEGIN {} END",
            insert(Action::Delete.api_name(), &old, "NULL")
        ),
    ]
}

async fn open(url: &str) -> Result<SqlitePool, Error> {
    let options = SqliteConnectOptions::from_str(url)?
        .create_if_missing(false)
        .busy_timeout(Duration::from_secs(10));
    // One connection: `data_version` is per connection.
    Ok(SqlitePoolOptions::new()
        .max_connections(1)
        .min_connections(1)
        .connect_with(options)
        .await?)
}

impl SqliteCapture {
    /// Opens the captured file, checks every mapped table, and (re)installs
    /// the log table and triggers (re-created at every start, so new columns
    /// are captured).
    pub(crate) async fn setup(url: &str, config: &Config) -> Result<SqliteCapture, Error> {
        let pool = open(url).await?;
        let mut tables = HashMap::new();
        let mut columns = HashMap::new();
        for resource in config.resources.captured() {
            let (info, cols) = introspect(
                &pool,
                &resource.name,
                resource.table.as_deref().unwrap_or_default(),
            )
            .await?;
            columns.insert(info.table.clone(), cols);
            tables.insert(resource.name.clone(), info);
        }
        // Referenced tables' columns, for expansions.
        let targets: Vec<String> = tables
            .values()
            .flat_map(|t| t.foreign_keys.iter().map(|f| f.target.clone()))
            .collect();
        for target in targets {
            if columns.contains_key(&target) {
                continue;
            }
            let cols = sqlx::query(AssertSqlSafe(format!("PRAGMA table_info(\"{target}\")")))
                .fetch_all(&pool)
                .await?;
            let names: Vec<String> = cols.iter().filter_map(|c| c.try_get("name").ok()).collect();
            columns.insert(target, names);
        }
        let mut tx = pool.begin().await?;
        sqlx::query(AssertSqlSafe(format!(
            "CREATE TABLE IF NOT EXISTS {LOG_TABLE} (id INTEGER PRIMARY KEY AUTOINCREMENT, table_name TEXT NOT NULL, \
             resource TEXT NOT NULL, action TEXT NOT NULL, occurred_at INTEGER NOT NULL, old_row TEXT, new_row TEXT)"
        )))
        .execute(&mut *tx)
        .await?;
        for info in tables.values() {
            for stmt in trigger_sql(info, &columns[&info.table]) {
                sqlx::query(AssertSqlSafe(stmt)).execute(&mut *tx).await?;
            }
        }
        sqlx::query(AssertSqlSafe(format!(
            "CREATE TABLE IF NOT EXISTS {META_TABLE} (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
        )))
        .execute(&mut *tx)
        .await?;
        let created = sqlx::query(AssertSqlSafe(format!(
            "INSERT OR IGNORE INTO {META_TABLE} (key, value) VALUES ('install_id', $1)"
        )))
        .bind(super::new_install_id())
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        let install_id: String = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT value FROM {META_TABLE} WHERE key = 'install_id'"
        )))
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        tracing::info!(
            capture = url,
            tables = tables.len(),
            install_id = %install_id,
            "SQLite capture installed"
        );
        Ok(SqliteCapture {
            pool,
            tables: Arc::new(tables),
            columns: Arc::new(columns),
            source: format!("sqlite:{install_id}"),
            legacy_source: created.then(|| format!("sqlite:{url}")),
            url: url.to_string(),
            batch: i64::try_from(config.capture_options.batch_size).unwrap_or(1000),
            sweep: config.capture_options.sweep_interval,
            pace: PollPace::new(&config.capture_options),
            imported_since_trim: std::sync::atomic::AtomicI64::new(0),
        })
    }

    /// Spawns the poller.
    pub(crate) fn spawn(mut self, ctx: Importer, tasks: &mut JoinSet<()>) -> Result<(), Error> {
        super::spawn_on_own_thread(ctx, tasks, move |ctx| async move {
            self.pool = SqlitePoolOptions::new()
                .max_connections(2)
                .connect_lazy_with((*self.pool.connect_options()).clone());
            self.poll_loop(ctx).await;
        })
    }

    async fn poll_loop(self, ctx: Importer) {
        if let Some(legacy) = &self.legacy_source {
            // Until this version the source was named by its URL; its cursor
            // carries over to the identity this start wrote (the log is the
            // same), once.
            match ctx.store.capture_cursor(legacy).await {
                Ok(cursor) if cursor.last_id > 0 => {
                    let taken = CaptureCursor {
                        last_id: cursor.last_id,
                        last_logged_at: None,
                    };
                    if let Err(err) = ctx.store.advance_cursor(&self.source, taken).await {
                        tracing::warn!(error = %crate::report::Report(&err), "taking over the capture cursor of {legacy} failed; the log is read from its start");
                    }
                }
                Ok(_) => {}
                Err(err) => {
                    tracing::warn!(error = %crate::report::Report(&err), "reading the capture cursor of {legacy} failed; the log is read from its start")
                }
            }
        }
        let mut pace = self.pace;
        let mut last_version: Option<i64> = None;
        let mut last_sweep = tokio::time::Instant::now();
        let mut backoff = Duration::from_millis(100);
        loop {
            if ctx.shutdown.is_cancelled() {
                return;
            }
            let version: Result<i64, sqlx::Error> = sqlx::query_scalar("PRAGMA data_version")
                .fetch_one(&self.pool)
                .await;
            let due = match version {
                Ok(v) => {
                    let changed = last_version != Some(v);
                    last_version = Some(v);
                    changed || last_sweep.elapsed() >= self.sweep
                }
                Err(_) => true,
            };
            if due {
                last_sweep = tokio::time::Instant::now();
                loop {
                    match self.import_batch(&ctx).await {
                        Ok(n) => {
                            ctx.health.ready("capture");
                            backoff = Duration::from_millis(100);
                            if n == 0 {
                                break;
                            }
                            pace.saw_changes();
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
                            break;
                        }
                    }
                }
            }
            if !pace.pause(&ctx.shutdown).await {
                return;
            }
        }
    }

    /// Imports the rows after the cursor; returns how many it read.
    ///
    /// The cursor's own row is read along (`id >= cursor`; trimming keeps
    /// it) and must be the row imported last, with the same write time. If
    /// it is gone or different, the log started again below what was
    /// imported (purged, recreated, restored from a backup): rather than
    /// skip the new rows whose ids repeat, the cursor is rewound and the
    /// whole log read again, already imported rows being recognised by
    /// their identity (id and write time).
    async fn import_batch(&self, ctx: &Importer) -> Result<usize, Error> {
        let mut cursor = ctx.store.capture_cursor(&self.source).await?;
        let mut rows = self.read_log(cursor.last_id).await?;
        if cursor.last_id > 0 {
            if let Some(reason) = self.moved_back(&cursor, &rows).await? {
                metrics::counter!("changewire_capture_resyncs_total", "source" => "sqlite")
                    .increment(1);
                tracing::error!(
                    capture = %self.url,
                    imported_up_to = cursor.last_id,
                    "the capture log starts again below what was imported ({reason}): it was purged, \
                     recreated or restored from a backup. Reading the whole log again: rows imported \
                     before are recognised and skipped, and no new row is skipped for its id"
                );
                ctx.store.rewind_cursor(&self.source).await?;
                cursor = CaptureCursor::default();
                rows = self.read_log(0).await?;
            } else if rows.first().and_then(|r| r.try_get::<i64, _>("id").ok())
                == Some(cursor.last_id)
            {
                rows.remove(0); // the cursor's own row, imported already
            }
        }
        if rows.is_empty() {
            return Ok(0);
        }
        let mut changes = Vec::with_capacity(rows.len());
        let mut last = cursor;
        for r in &rows {
            let id: i64 = r.try_get("id")?;
            let occurred_at: i64 = r.try_get("occurred_at")?;
            if id > last.last_id {
                last = CaptureCursor {
                    last_id: id,
                    last_logged_at: Some(occurred_at),
                };
            }
            let logged = LoggedRow {
                id,
                resource: r.try_get("resource")?,
                action: r.try_get("action")?,
                transaction_id: id,
                occurred_at,
                logged_at: occurred_at,
                old_row: r.try_get("old_row")?,
                new_row: r.try_get("new_row")?,
            };
            let Some(table) = self.tables.get(&logged.resource) else {
                continue;
            };
            if let Some(change) = to_change(&self.source, table, &logged)? {
                changes.push(change);
            }
        }
        let needs = super::expand::Needs::load(&ctx.store).await?;
        super::expand::related_sqlite(
            &self.pool,
            &self.tables,
            &self.columns,
            &needs,
            &mut changes,
        )
        .await?;
        needs.trim_records(&mut changes);
        let outcome =
            crate::fanout::fan_out(&ctx.store, &ctx.signals, ctx.handoff.as_ref(), &changes)
                .await?;
        ctx.store.advance_cursor(&self.source, last).await?;
        let last = last.last_id;
        metrics::counter!("changewire_changes_captured_total", "source" => "sqlite")
            .increment(outcome.changes);
        metrics::counter!("changewire_deliveries_created_total").increment(outcome.deliveries);
        let imported = i64::try_from(rows.len()).unwrap_or(0);
        let since = self
            .imported_since_trim
            .fetch_add(imported, std::sync::atomic::Ordering::SeqCst)
            + imported;
        if since >= TRIM_AFTER {
            self.imported_since_trim
                .store(0, std::sync::atomic::Ordering::SeqCst);
            // Already imported (the cursor is durable in the store): trim
            // them, all but the cursor's own row, which the next import
            // reads to check that the log did not start again.
            let trimmed = sqlx::query(AssertSqlSafe(format!(
                "DELETE FROM {LOG_TABLE} WHERE id < $1"
            )))
            .bind(last)
            .execute(&self.pool)
            .await;
            if let Err(err) = trimmed {
                tracing::debug!(error = %err, "trimming the SQLite capture log failed; will retry later");
            }
        }
        Ok(rows.len())
    }
}

impl SqliteCapture {
    /// Log rows from `from` on (inclusive), oldest first: a batch, plus the
    /// cursor's own row.
    async fn read_log(&self, from: i64) -> Result<Vec<sqlx::sqlite::SqliteRow>, Error> {
        Ok(sqlx::query(AssertSqlSafe(format!(
            "SELECT id, resource, action, occurred_at, old_row, new_row FROM {LOG_TABLE} WHERE id >= $1 ORDER BY id LIMIT $2"
        )))
        .bind(from)
        .bind(self.batch + 1)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Why the log no longer holds the row the cursor points at, if it
    /// does not: the log started again below what was imported.
    async fn moved_back(
        &self,
        cursor: &CaptureCursor,
        rows: &[sqlx::sqlite::SqliteRow],
    ) -> Result<Option<String>, Error> {
        let first = rows.first().map(|r| {
            (
                r.try_get::<i64, _>("id").unwrap_or_default(),
                r.try_get::<i64, _>("occurred_at").unwrap_or_default(),
            )
        });
        match (cursor.last_logged_at, first) {
            (Some(at), Some((id, logged))) if id == cursor.last_id && logged == at => Ok(None),
            (Some(_), Some((id, _))) if id == cursor.last_id => Ok(Some(format!(
                "row {id} was written at another time than the row imported under that id"
            ))),
            (Some(_), _) => Ok(Some(format!("row {} is gone", cursor.last_id))),
            // A cursor from before write times were kept: trimming deleted
            // its row, so compare with the largest id the log ever issued.
            (None, _) => {
                let issued: Option<i64> =
                    sqlx::query_scalar("SELECT seq FROM sqlite_sequence WHERE name = $1")
                        .bind(LOG_TABLE)
                        .fetch_optional(&self.pool)
                        .await?;
                let issued = issued.unwrap_or(0);
                Ok((issued < cursor.last_id).then(|| {
                    format!(
                        "its largest id is {issued}, below the {} imported",
                        cursor.last_id
                    )
                }))
            }
        }
    }
}

/// Drops the triggers; with `purge`, the log and the capture's identity too.
pub(crate) async fn uninstall(url: &str, config: &Config, purge: bool) -> Result<(), Error> {
    let pool = open(url).await?;
    for resource in config.resources.captured() {
        let t = bare_table(resource.table.as_deref().unwrap_or_default()).to_string();
        for op in ["insert", "update", "delete"] {
            sqlx::query(AssertSqlSafe(format!(
                "DROP TRIGGER IF EXISTS \"changewire_{t}_{op}\""
            )))
            .execute(&pool)
            .await?;
        }
    }
    if purge {
        // The identity goes with the log: a reinstall is a new source.
        for table in [LOG_TABLE, META_TABLE] {
            sqlx::query(AssertSqlSafe(format!("DROP TABLE IF EXISTS {table}")))
                .execute(&pool)
                .await?;
        }
    }
    pool.close().await;
    Ok(())
}
