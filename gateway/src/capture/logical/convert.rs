//! From the stream's text values to the row JSON the trigger mode sends.
//!
//! The trigger mode writes `to_json(NEW)`; here each column's text output
//! goes back through its type's input function and the same `to_json`, in
//! the captured database, one statement per relation and batch:
//!
//! ```sql
//! SELECT to_json(r)::text
//! FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS u(c1, c2, n),
//!      LATERAL (SELECT u.c1::integer AS "id", u.c2::text AS "title") r
//! ORDER BY u.n
//! ```
//!
//! so every type renders exactly as the trigger mode renders it (numbers,
//! timestamps in the session's time zone, arrays, json, domains, enums),
//! without a Rust copy of PostgreSQL's output functions.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::{AssertSqlSafe, PgPool};

use super::pgoutput::{Relation, Tuple, Value};
use crate::capture::Error;

/// A relation with the statement that renders its rows.
#[derive(Debug)]
pub(crate) struct RelationShape {
    /// Tells shapes apart (a relation's definition can change mid-batch).
    serial: u64,
    /// The relation as the stream described it.
    pub(crate) relation: Relation,
    /// `SELECT to_json(r)::text …` over one text array per column.
    render_sql: String,
}

impl RelationShape {
    /// Looks up the columns' SQL types (one query, at each relation
    /// message: once per relation and session, and after a DDL change).
    ///
    /// Enums (and arrays of them) are read as `text`, domains as their base
    /// type: `to_json` renders them the same, and a label renamed or a
    /// constraint added after the change was committed cannot make an old
    /// value unreadable (which would stop capture at it).
    pub(crate) async fn describe(pool: &PgPool, relation: Relation) -> Result<Self, Error> {
        let oids: Vec<i64> = relation
            .columns
            .iter()
            .map(|c| i64::from(c.type_oid))
            .collect();
        let modifiers: Vec<i32> = relation.columns.iter().map(|c| c.type_modifier).collect();
        let types: Vec<Option<String>> = sqlx::query_scalar(
            "SELECT CASE WHEN t.oid IS NULL THEN NULL \
                         WHEN t.typtype = 'e' THEN 'text' \
                         WHEN e.typtype = 'e' THEN 'text[]' \
                         WHEN t.typtype = 'd' THEN format_type(t.typbasetype, NULLIF(t.typtypmod, -1)) \
                         ELSE format_type(t.oid, NULLIF(u.m, -1)) END \
             FROM unnest($1::int8[], $2::int4[]) WITH ORDINALITY AS u(o, m, n) \
             LEFT JOIN pg_type t ON t.oid = u.o::oid \
             LEFT JOIN pg_type e ON e.oid = t.typelem AND t.typcategory = 'A' \
             ORDER BY u.n",
        )
        .bind(&oids)
        .bind(&modifiers)
        .fetch_all(pool)
        .await?;
        let mut inputs = Vec::new();
        let mut casts = Vec::new();
        for (i, (column, ty)) in relation.columns.iter().zip(&types).enumerate() {
            let ty = ty.as_deref().filter(|t| *t != "???").ok_or_else(|| {
                Error::Protocol(format!(
                    "{}.{}: type {} does not exist",
                    relation.qualified_name, column.name, column.type_oid
                ))
            })?;
            inputs.push(format!("${}::text[]", i + 1));
            casts.push(format!("u.c{i}::{ty} AS {}", ident(&column.name)));
        }
        let names: Vec<String> = (0..relation.columns.len())
            .map(|i| format!("c{i}"))
            .collect();
        let render_sql = if relation.columns.is_empty() {
            // A table without columns: `{}` per row.
            "SELECT '{}'::text FROM generate_series(1, $1) ORDER BY 1".to_string()
        } else {
            format!(
                "SELECT to_json(r)::text FROM unnest({}) WITH ORDINALITY AS u({}, n), \
                 LATERAL (SELECT {}) r ORDER BY u.n",
                inputs.join(", "),
                names.join(", "),
                casts.join(", ")
            )
        };
        Ok(RelationShape {
            serial: NEXT_SERIAL.fetch_add(1, Ordering::Relaxed),
            relation,
            render_sql,
        })
    }
}

static NEXT_SERIAL: AtomicU64 = AtomicU64::new(1);

/// Quotes a column name.
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Tuples to render, grouped by relation shape; each gets back its JSON.
#[derive(Default)]
pub(crate) struct Renderer {
    groups: HashMap<u64, (Arc<RelationShape>, Vec<Tuple>)>,
}

/// Where a tuple's JSON will be: its group and index.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Slot {
    group: u64,
    index: usize,
}

impl Renderer {
    /// Queues a tuple (its unchanged values already resolved).
    pub(crate) fn push(&mut self, shape: &Arc<RelationShape>, tuple: Tuple) -> Slot {
        let key = shape.serial;
        let (_, tuples) = self
            .groups
            .entry(key)
            .or_insert_with(|| (shape.clone(), Vec::new()));
        tuples.push(tuple);
        Slot {
            group: key,
            index: tuples.len() - 1,
        }
    }

    /// Renders every queued tuple: one statement per relation shape.
    pub(crate) async fn render(self, pool: &PgPool) -> Result<Rendered, Error> {
        let mut out = HashMap::with_capacity(self.groups.len());
        for (key, (shape, tuples)) in self.groups {
            let width = shape.relation.columns.len();
            let rows = tuples.len();
            let json: Vec<String> = if width == 0 {
                sqlx::query_scalar(AssertSqlSafe(shape.render_sql.as_str()))
                    .bind(i32::try_from(rows).unwrap_or(i32::MAX))
                    .fetch_all(pool)
                    .await?
            } else {
                let mut columns: Vec<Vec<Option<String>>> = vec![Vec::with_capacity(rows); width];
                for tuple in tuples {
                    if tuple.0.len() != width {
                        return Err(Error::Protocol(format!(
                            "{}: a row of {} values for {width} columns",
                            shape.relation.qualified_name,
                            tuple.0.len()
                        )));
                    }
                    for (column, value) in columns.iter_mut().zip(tuple.0) {
                        column.push(match value {
                            Value::Text(text) => Some(text),
                            Value::Null => None,
                            Value::Unchanged => {
                                return Err(Error::Protocol(format!(
                                    "{}: an unchanged TOASTed value without the old row \
                                     (is REPLICA IDENTITY still FULL?)",
                                    shape.relation.qualified_name
                                )));
                            }
                        });
                    }
                }
                let mut query = sqlx::query_scalar(AssertSqlSafe(shape.render_sql.as_str()));
                for column in &columns {
                    query = query.bind(column);
                }
                query.fetch_all(pool).await?
            };
            if json.len() != rows {
                return Err(Error::Protocol(format!(
                    "{}: {} rows rendered for {rows}",
                    shape.relation.qualified_name,
                    json.len()
                )));
            }
            out.insert(key, json);
        }
        Ok(Rendered { groups: out })
    }
}

/// Rendered rows.
pub(crate) struct Rendered {
    groups: HashMap<u64, Vec<String>>,
}

impl Rendered {
    /// A tuple's JSON.
    pub(crate) fn take(&mut self, slot: Slot) -> Option<String> {
        self.groups
            .get_mut(&slot.group)
            .and_then(|rows| rows.get_mut(slot.index))
            .map(std::mem::take)
    }
}
