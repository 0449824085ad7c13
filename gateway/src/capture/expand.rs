//! Foreign-key expansion: subscriptions may ask for referenced rows
//! (`expand: ["supplier_id"]`) so integrators need no follow-up fetch. The
//! referenced rows are looked up at import time, once per change, for the
//! union of columns any active subscription of that resource asked for; each
//! delivery then carries only its own subscription's columns.

use std::collections::HashMap;

use sqlx::{AssertSqlSafe, PgPool, SqlitePool};

use super::diff::RawObject;
use super::{Error, TableInfo};
use crate::store::changes::NewChange;
use crate::store::{Store, on_pool};

/// Columns to expand, per resource, over all active subscriptions.
pub async fn wanted(store: &Store) -> Result<HashMap<String, Vec<String>>, Error> {
    let rows: Vec<(String, String)> =
        on_pool!(store, |pool| sqlx::query_as::<_, (String, String)>(
            "SELECT resource, expand FROM subscriptions WHERE active = TRUE AND expand <> '[]'"
        )
        .fetch_all(pool)
        .await)
        .map_err(crate::store::Error::from)?;
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    for (resource, expand) in rows {
        let columns: Vec<String> = serde_json::from_str(&expand).unwrap_or_default();
        let entry = out.entry(resource).or_default();
        for c in columns {
            if !entry.contains(&c) {
                entry.push(c);
            }
        }
    }
    Ok(out)
}

/// Resources some active subscription wants the full row of.
pub async fn full_record_resources(store: &Store) -> Result<Vec<String>, Error> {
    Ok(on_pool!(store, |pool| sqlx::query_scalar::<_, String>(
        "SELECT DISTINCT resource FROM subscriptions WHERE active = TRUE AND include_full_record = TRUE"
    )
    .fetch_all(pool)
    .await)
    .map_err(crate::store::Error::from)?)
}

/// Keeps `record` only where it adds something: on UPDATE, for resources a
/// subscription wants the full row of. On CREATE and DELETE the full row is
/// `new` or `old`, which the renderer uses instead.
pub async fn trim_records(store: &Store, changes: &mut [NewChange]) -> Result<(), Error> {
    let wanted = full_record_resources(store).await?;
    for change in changes.iter_mut() {
        if change.action != "UPDATE" || !wanted.contains(&change.resource) {
            change.record = None;
        }
    }
    Ok(())
}

/// The referencing value of `column` in a change's row, as text, or None if null/absent.
fn key_text(change: &NewChange, column: &str) -> Option<String> {
    let record = RawObject::parse(change.record.as_deref()?).ok()?;
    let raw = record.get(column)?.get().to_string();
    match serde_json::from_str::<serde_json::Value>(&raw).ok()? {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s),
        other => Some(other.to_string()),
    }
}

fn set_related(change: &mut NewChange, related: Vec<(String, String)>) {
    if related.is_empty() {
        return;
    }
    let body = related
        .iter()
        .map(|(k, v)| format!("{}: {v}", serde_json::to_string(k).unwrap_or_default()))
        .collect::<Vec<_>>()
        .join(", ");
    change.related = Some(format!("{{{body}}}"));
}

/// Fills `related` for PostgreSQL changes.
pub async fn related_pg(
    pool: &PgPool,
    tables: &HashMap<String, TableInfo>,
    store: &Store,
    changes: &mut [NewChange],
) -> Result<(), Error> {
    let wanted = wanted(store).await?;
    if wanted.is_empty() {
        return Ok(());
    }
    for change in changes.iter_mut() {
        let (Some(columns), Some(table)) =
            (wanted.get(&change.resource), tables.get(&change.resource))
        else {
            continue;
        };
        let mut related = Vec::new();
        for column in columns {
            let Some(fk) = table.foreign_keys.iter().find(|fk| &fk.column == column) else {
                continue;
            };
            let Some(key) = key_text(change, column) else {
                continue;
            };
            let sql = format!(
                "SELECT to_jsonb(t)::text FROM {} t WHERE t.\"{}\" = $1::{} LIMIT 1",
                super::postgres::quote(&fk.target),
                fk.target_column,
                fk.target_type
            );
            let row: Option<String> = sqlx::query_scalar(AssertSqlSafe(sql))
                .bind(&key)
                .fetch_optional(pool)
                .await?;
            if let Some(row) = row {
                related.push((column.clone(), row));
            }
        }
        set_related(change, related);
    }
    Ok(())
}

/// Fills `related` for SQLite changes (`columns_of` gives a table's columns).
pub async fn related_sqlite(
    pool: &SqlitePool,
    tables: &HashMap<String, TableInfo>,
    columns_of: &HashMap<String, Vec<String>>,
    store: &Store,
    changes: &mut [NewChange],
) -> Result<(), Error> {
    let wanted = wanted(store).await?;
    if wanted.is_empty() {
        return Ok(());
    }
    for change in changes.iter_mut() {
        let (Some(columns), Some(table)) =
            (wanted.get(&change.resource), tables.get(&change.resource))
        else {
            continue;
        };
        let mut related = Vec::new();
        for column in columns {
            let Some(fk) = table.foreign_keys.iter().find(|fk| &fk.column == column) else {
                continue;
            };
            let Some(target_columns) = columns_of.get(&fk.target) else {
                continue;
            };
            let Some(key) = key_text(change, column) else {
                continue;
            };
            let sql = format!(
                "SELECT {} FROM \"{}\" WHERE \"{}\" = $1 LIMIT 1",
                super::sqlite::json_object_expr(target_columns, ""),
                fk.target,
                fk.target_column
            );
            let row: Option<String> = sqlx::query_scalar(AssertSqlSafe(sql))
                .bind(&key)
                .fetch_optional(pool)
                .await?;
            if let Some(row) = row {
                related.push((column.clone(), row));
            }
        }
        set_related(change, related);
    }
    Ok(())
}
