//! What capture reads of a captured PostgreSQL database, whatever the
//! mode: connections, and each mapped table's key, etag column and
//! foreign keys.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Row};

use super::{Error, TableInfo};

/// What capture needs to know of a mapped table; fails when it does not
/// exist or has no primary key.
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
