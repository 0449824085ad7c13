//! SQLite capture: triggers in the captured file write `_changewire_log`;
//! the importer notices commits by polling `PRAGMA data_version` and keeps a
//! cursor in the store, so it never writes to the captured file except to
//! trim log rows it has already imported.
//!
//! SQLite has no transaction identifier visible to triggers: each change's
//! `transaction_id` is its log id.
//!
//! Here: install, introspection and uninstall; the importer is in [`import`].

mod import;

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use sqlx::{AssertSqlSafe, Row, SqlitePool};

use super::sql::json_object_expr;
use super::{Error, ForeignKey, PollPace, TableInfo};
use crate::config::Config;
use crate::envelope::Action;

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
