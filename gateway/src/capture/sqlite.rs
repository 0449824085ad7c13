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

/// The log table in the captured file.
pub const LOG_TABLE: &str = "_changewire_log";

/// Log rows kept after import before they are trimmed.
const TRIM_AFTER: i64 = 1000;

/// A prepared SQLite capture.
pub struct SqliteCapture {
    pool: SqlitePool,
    tables: Arc<HashMap<String, TableInfo>>,
    columns: Arc<HashMap<String, Vec<String>>>,
    source: String,
    batch: i64,
    sweep: Duration,
    pace: PollPace,
    imported_since_trim: std::sync::atomic::AtomicI64,
}

/// `json_object('c', <prefix>"c", …)` for a column list; BLOBs become hex.
pub fn json_object_expr(columns: &[String], prefix: &str) -> String {
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
            insert("CREATE", "NULL", &new)
        ),
        format!(
            "CREATE TRIGGER \"changewire_{t}_update\" AFTER UPDATE ON \"{t}\" WHEN {changed} BEGIN {} END",
            insert("UPDATE", &old, &new)
        ),
        format!(
            "CREATE TRIGGER \"changewire_{t}_delete\" AFTER DELETE ON \"{t}\" BEGIN {} END",
            insert("DELETE", &old, "NULL")
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
    pub async fn setup(url: &str, config: &Config) -> Result<SqliteCapture, Error> {
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
        tx.commit().await?;
        tracing::info!(
            capture = url,
            tables = tables.len(),
            "SQLite capture installed"
        );
        Ok(SqliteCapture {
            pool,
            tables: Arc::new(tables),
            columns: Arc::new(columns),
            source: format!("sqlite:{url}"),
            batch: i64::try_from(config.capture_options.batch_size).unwrap_or(1000),
            sweep: config.capture_options.sweep_interval,
            pace: PollPace::new(&config.capture_options),
            imported_since_trim: std::sync::atomic::AtomicI64::new(0),
        })
    }

    /// Spawns the poller.
    pub fn spawn(mut self, ctx: Importer, tasks: &mut JoinSet<()>) -> Result<(), Error> {
        super::spawn_on_own_thread(ctx, tasks, move |ctx| async move {
            self.pool = SqlitePoolOptions::new()
                .max_connections(2)
                .connect_lazy_with((*self.pool.connect_options()).clone());
            self.poll_loop(ctx).await;
        })
    }

    async fn poll_loop(self, ctx: Importer) {
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
                            ctx.health.failing("capture", err.to_string());
                            tracing::warn!(error = %err, retry_in = ?backoff, "capture import failed; retrying");
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

    async fn import_batch(&self, ctx: &Importer) -> Result<usize, Error> {
        let cursor = ctx.store.capture_cursor(&self.source).await?;
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT id, resource, action, occurred_at, old_row, new_row FROM {LOG_TABLE} WHERE id > $1 ORDER BY id LIMIT $2"
        )))
        .bind(cursor)
        .bind(self.batch)
        .fetch_all(&self.pool)
        .await?;
        if rows.is_empty() {
            return Ok(0);
        }
        let mut changes = Vec::with_capacity(rows.len());
        let mut last = cursor;
        for r in &rows {
            let id: i64 = r.try_get("id")?;
            last = last.max(id);
            let logged = LoggedRow {
                id,
                resource: r.try_get("resource")?,
                action: r.try_get("action")?,
                transaction_id: id,
                occurred_at: r.try_get("occurred_at")?,
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
        let outcome = crate::fanout::fan_out(&ctx.store, &ctx.signals, &changes).await?;
        ctx.store.advance_cursor(&self.source, last).await?;
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
            // Already imported (the cursor is durable in the store): trim them.
            let trimmed = sqlx::query(AssertSqlSafe(format!(
                "DELETE FROM {LOG_TABLE} WHERE id <= $1"
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

/// Drops the triggers; with `purge`, the log table too.
pub async fn uninstall(url: &str, config: &Config, purge: bool) -> Result<(), Error> {
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
        sqlx::query(AssertSqlSafe(format!("DROP TABLE IF EXISTS {LOG_TABLE}")))
            .execute(&pool)
            .await?;
    }
    pool.close().await;
    Ok(())
}
