//! Foreign-key expansion: subscriptions may ask for referenced rows
//! (`expand: ["supplier_id"]`) so integrators need no follow-up fetch. The
//! referenced rows are looked up at import time, once per change, for the
//! union of columns any active subscription of that resource asked for; each
//! delivery then carries only its own subscription's columns.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::{AssertSqlSafe, PgPool, SqlitePool};

use super::{Error, Importer, TableInfo};
use crate::envelope::{Action, RawObject};
use crate::store::changes::{NeedsSeen, NewChange};
use crate::store::{Backend, Store, on_pool};

/// What the active subscriptions ask of an import.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Needs {
    /// Columns to expand, per resource, over all active subscriptions.
    pub(crate) expand: HashMap<String, Vec<String>>,
    /// Resources some active subscription wants the full row of.
    pub(crate) full_record: Vec<String>,
    /// The rows these were read from, for the fan-out to check.
    pub(crate) seen: NeedsSeen,
}

/// The needs as last read, shared by a capture's batches so that a batch
/// costs no query for them: on a PostgreSQL store the fan-out checks them
/// in the statement that stores the batch ([`NeedsSeen`]), and a batch
/// that finds them stale is prepared again with needs read afresh. They
/// are read again every [`NeedsCache::REFRESH`] too, so that what no
/// subscription asks for any more stops costing look-ups. On a SQLite
/// store (whose fan-out does not check) they are read for every batch.
#[derive(Debug, Default)]
pub(crate) struct NeedsCache {
    last: Mutex<Option<(Arc<Needs>, Instant)>>,
}

impl NeedsCache {
    /// How long needs read are used before they are read again, stale or not.
    pub(crate) const REFRESH: Duration = Duration::from_secs(10);

    /// The needs to prepare a batch with: the cached ones while fresh
    /// enough (PostgreSQL store), else read now.
    pub(crate) async fn current(&self, store: &Store) -> Result<Arc<Needs>, Error> {
        if matches!(store.backend(), Backend::Postgres(_)) {
            let last = self.last.lock().map(|l| l.clone()).unwrap_or_default();
            if let Some((needs, read_at)) = last
                && read_at.elapsed() < Self::REFRESH
            {
                return Ok(needs);
            }
        }
        self.reload(store).await
    }

    /// Reads the needs now and keeps them.
    pub(crate) async fn reload(&self, store: &Store) -> Result<Arc<Needs>, Error> {
        let needs = Arc::new(Needs::load(store).await?);
        if let Ok(mut last) = self.last.lock() {
            *last = Some((needs.clone(), Instant::now()));
        }
        Ok(needs)
    }
}

impl Needs {
    /// Reads what the active subscriptions need.
    pub(crate) async fn load(store: &Store) -> Result<Needs, Error> {
        let rows: Vec<(String, String, bool)> =
            on_pool!(store, |pool| sqlx::query_as::<_, (String, String, bool)>(
                "SELECT resource, expand, include_full_record FROM subscriptions \
                 WHERE active = TRUE AND (expand <> '[]' OR include_full_record = TRUE)"
            )
            .fetch_all(pool)
            .await)
            .map_err(crate::store::Error::from)?;
        let mut needs = Needs::default();
        for (resource, expand, full_record) in rows {
            needs.seen.push(&resource, &expand, full_record);
            if full_record && !needs.full_record.contains(&resource) {
                needs.full_record.push(resource.clone());
            }
            let columns: Vec<String> = serde_json::from_str(&expand).unwrap_or_default();
            if columns.is_empty() {
                continue;
            }
            let entry = needs.expand.entry(resource).or_default();
            for c in columns {
                if !entry.contains(&c) {
                    entry.push(c);
                }
            }
        }
        Ok(needs)
    }

    /// Keeps `record` only where it adds something: on UPDATE, for
    /// resources a subscription wants the full row of. On CREATE and DELETE
    /// the full row is `new` or `old`, which the renderer uses instead.
    /// Returns what it took, change by change, for [`restore_records`].
    pub(crate) fn trim_records(&self, changes: &mut [NewChange]) -> Vec<Option<String>> {
        changes
            .iter_mut()
            .map(|change| {
                let wanted = change.payload.action == Action::Update
                    && self.full_record.contains(&change.payload.resource);
                if wanted {
                    None
                } else {
                    change.payload.record.take()
                }
            })
            .collect()
    }
}

/// Undoes [`Needs::trim_records`] (given what it returned) and the related
/// rows looked up: the changes as captured, to be prepared again.
fn restore_records(changes: &mut [NewChange], taken: Vec<Option<String>>) {
    for (change, record) in changes.iter_mut().zip(taken) {
        if record.is_some() {
            change.payload.record = record;
        }
        change.payload.related = None;
    }
}

/// Prepares captured `changes` (PostgreSQL: `pool` and `tables` are the
/// captured database's) and fans them out under `source`: related rows
/// looked up and full rows kept where a subscription wants them, by the
/// needs the capture has cached. When the fan-out finds a subscription
/// asking for more than those, it stored nothing: the needs are read
/// again, and the batch is prepared and fanned out once more, unchecked (as
/// every batch was before the cache: a subscription changed between that
/// read and the fan-out is seen from the next batch on).
pub(crate) async fn fan_out_pg(
    ctx: &Importer,
    pool: &PgPool,
    tables: &HashMap<String, TableInfo>,
    mut changes: Vec<NewChange>,
    source: &'static str,
) -> Result<(), Error> {
    let needs = ctx.needs.current(&ctx.store).await?;
    related_pg(pool, tables, &needs, &mut changes).await?;
    let taken = needs.trim_records(&mut changes);
    match ctx.fan_out(&changes, source, Some(&needs.seen)).await {
        Err(crate::store::Error::NeedsChanged) => {
            tracing::debug!(
                source,
                "subscriptions' needs changed; preparing the batch again"
            );
        }
        outcome => {
            outcome?;
            return Ok(());
        }
    }
    restore_records(&mut changes, taken);
    let needs = ctx.needs.reload(&ctx.store).await?;
    related_pg(pool, tables, &needs, &mut changes).await?;
    needs.trim_records(&mut changes);
    ctx.fan_out(&changes, source, None).await?;
    Ok(())
}

/// The referencing value of `column` in a change's row, as text, or None if null/absent.
fn key_text(change: &NewChange, column: &str) -> Option<String> {
    let record = RawObject::parse(change.payload.record.as_deref()?).ok()?;
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
    change.payload.related = Some(format!("{{{body}}}"));
}

/// Fills `related` for PostgreSQL changes.
pub(crate) async fn related_pg(
    pool: &PgPool,
    tables: &HashMap<String, TableInfo>,
    needs: &Needs,
    changes: &mut [NewChange],
) -> Result<(), Error> {
    let wanted = &needs.expand;
    if wanted.is_empty() {
        return Ok(());
    }
    for change in changes.iter_mut() {
        let (Some(columns), Some(table)) = (
            wanted.get(&change.payload.resource),
            tables.get(&change.payload.resource),
        ) else {
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
                super::sql::quote(&fk.target),
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
pub(crate) async fn related_sqlite(
    pool: &SqlitePool,
    tables: &HashMap<String, TableInfo>,
    columns_of: &HashMap<String, Vec<String>>,
    needs: &Needs,
    changes: &mut [NewChange],
) -> Result<(), Error> {
    let wanted = &needs.expand;
    if wanted.is_empty() {
        return Ok(());
    }
    for change in changes.iter_mut() {
        let (Some(columns), Some(table)) = (
            wanted.get(&change.payload.resource),
            tables.get(&change.payload.resource),
        ) else {
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
                super::sql::json_object_expr(target_columns, ""),
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
