//! From a logged row change to a store change: diff, row id, etag, record.

use super::diff::changed_fields;
use super::{Error, TableInfo};
use crate::envelope::{Action, ChangePayload, RawObject};
use crate::fanout::row_etag;
use crate::store::changes::NewChange;

/// A captured row change, as read from a log or a replication stream.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LoggedRow {
    /// Log id (its index in the transaction, from a stream): names the row
    /// in errors.
    pub(crate) id: i64,
    pub(crate) resource: String,
    /// `CREATE`, `UPDATE`, `DELETE`.
    pub(crate) action: String,
    pub(crate) transaction_id: i64,
    /// When (ms).
    pub(crate) occurred_at: i64,
    /// The change's identity at its source (the store's `source_key`):
    /// [`LoggedRow::log_key`] for a log, the commit position for a stream.
    pub(crate) source_key: String,
    /// The whole row before (JSON), if any.
    pub(crate) old_row: Option<String>,
    /// The whole row after (JSON), if any.
    pub(crate) new_row: Option<String>,
}

fn parse(id: i64, text: Option<&str>) -> Result<Option<RawObject>, Error> {
    text.map(|t| {
        RawObject::parse(t).map_err(|e| Error::BadLogRow {
            id,
            reason: e.to_string(),
        })
    })
    .transpose()
}

impl LoggedRow {
    /// A log row's identity: its id and when it was written, as the log
    /// stores it (never changes). A log whose ids start again (purged,
    /// recreated, restored from a backup) gives new rows new identities
    /// even where their ids repeat.
    pub(crate) fn log_key(id: i64, logged_at: i64) -> String {
        format!("{id}@{logged_at}")
    }
}

/// Builds the change, or `None` for an update that changed nothing.
pub(crate) fn to_change(
    source: &str,
    table: &TableInfo,
    row: &LoggedRow,
) -> Result<Option<NewChange>, Error> {
    let old = parse(row.id, row.old_row.as_deref())?;
    let new = parse(row.id, row.new_row.as_deref())?;
    let current = new
        .as_ref()
        .or(old.as_ref())
        .ok_or_else(|| Error::BadLogRow {
            id: row.id,
            reason: "neither an old nor a new row".into(),
        })?;
    let action: Action = row
        .action
        .parse()
        .map_err(|e: changewire_core::UnknownAction| Error::BadLogRow {
            id: row.id,
            reason: e.to_string(),
        })?;
    let (old_diff, new_diff) = match action {
        Action::Create => (None, Some(current.to_text())),
        Action::Delete => (Some(current.to_text()), None),
        _ => match (&old, &new) {
            (Some(o), Some(n)) => match changed_fields(o, n) {
                Some((o, n)) => (Some(o), Some(n)),
                None => return Ok(None),
            },
            _ => {
                return Err(Error::BadLogRow {
                    id: row.id,
                    reason: "an update without both rows".into(),
                });
            }
        },
    };
    let row_id = match table.primary_key.as_slice() {
        [single] => current
            .get(single)
            .map(|v| v.get().to_string())
            .unwrap_or_else(|| "null".into()),
        columns => {
            let subset = RawObject(
                current
                    .0
                    .iter()
                    .filter(|(k, _)| columns.contains(k))
                    .cloned()
                    .collect(),
            );
            subset.to_text()
        }
    };
    let record = current.to_text();
    let etag = if table.has_etag {
        current.get("etag").map(
            |v| match serde_json::from_str::<serde_json::Value>(v.get()) {
                Ok(serde_json::Value::String(s)) => s,
                _ => v.get().to_string(),
            },
        )
    } else {
        Some(row_etag(&record))
    };
    Ok(Some(NewChange {
        source: source.to_string(),
        source_key: Some(row.source_key.clone()),
        table_name: Some(table.table.clone()),
        payload: ChangePayload {
            resource: row.resource.clone(),
            action,
            row_id,
            transaction_id: row.transaction_id,
            occurred_at: row.occurred_at,
            etag,
            old: old_diff,
            new: new_diff,
            record: Some(record),
            related: None,
        },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(pk: &[&str], has_etag: bool) -> TableInfo {
        TableInfo {
            resource: "RUNS".into(),
            table: "runs".into(),
            primary_key: pk.iter().map(|s| s.to_string()).collect(),
            has_etag,
            foreign_keys: vec![],
        }
    }

    fn logged(action: &str, old: Option<&str>, new: Option<&str>) -> LoggedRow {
        LoggedRow {
            id: 9,
            resource: "RUNS".into(),
            action: action.into(),
            transaction_id: 77,
            occurred_at: 1,
            source_key: LoggedRow::log_key(9, 1_700_000_000_123),
            old_row: old.map(str::to_string),
            new_row: new.map(str::to_string),
        }
    }

    #[test]
    fn update_diff_row_id_and_etag() {
        let c = to_change(
            "pg:x",
            &table(&["id"], true),
            &logged(
                "UPDATE",
                Some(r#"{"id": 5, "status": "a", "etag": "e1"}"#),
                Some(r#"{"id": 5, "status": "b", "etag": "e2"}"#),
            ),
        )
        .unwrap()
        .unwrap();
        assert_eq!(c.payload.row_id, "5");
        assert_eq!(c.payload.etag.as_deref(), Some("e2"));
        assert_eq!(
            c.payload.old.as_deref(),
            Some(r#"{"status": "a", "etag": "e1"}"#)
        );
        assert_eq!(c.source_key.as_deref(), Some("9@1700000000123"));
    }

    #[test]
    fn composite_keys_no_ops_create_and_delete() {
        let t = table(&["a", "b"], false);
        let c = to_change(
            "s",
            &t,
            &logged("CREATE", None, Some(r#"{"a": 1, "b": "x", "v": null}"#)),
        )
        .unwrap()
        .unwrap();
        assert_eq!(c.payload.row_id, r#"{"a": 1, "b": "x"}"#);
        assert_eq!(c.payload.old, None);
        assert_eq!(
            c.payload.new.as_deref(),
            Some(r#"{"a": 1, "b": "x", "v": null}"#)
        );
        assert_eq!(c.payload.etag.as_deref().map(str::len), Some(16));
        let same = r#"{"a": 1, "b": "x", "v": 2}"#;
        assert_eq!(
            to_change("s", &t, &logged("UPDATE", Some(same), Some(same))).unwrap(),
            None
        );
        let d = to_change("s", &t, &logged("DELETE", Some(same), None))
            .unwrap()
            .unwrap();
        assert_eq!(d.payload.new, None);
        assert_eq!(d.payload.old.as_deref(), Some(same));
    }
}
