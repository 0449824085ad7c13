//! The trigger mode's objects in the captured database: the log, the
//! trigger function and the triggers; what capture reads of each mapped
//! table; removal.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{AssertSqlSafe, PgPool, Row};

use super::CHANNEL;
use crate::capture::sql::quote;
use crate::capture::{Error, TableInfo};
use crate::config::Config;

/// The install script (idempotent).
pub(super) fn install_sql(schema: &str, notify: bool) -> String {
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
        .map(|r| crate::capture::ForeignKey {
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
