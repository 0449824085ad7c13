//! A row change, field by field: what was there before, what is there
//! after, and which fields changed — the view only a change-data-capture
//! gateway can give of an event.

use serde_json::{Map, Value};

/// How one field changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FieldChange {
    /// Not in the old row (a create, or a new column).
    Added,
    /// Not in the new row (a delete).
    Removed,
    /// Different values.
    Changed,
    /// The same before and after.
    Unchanged,
}

impl FieldChange {
    /// The CSS class and the word screen readers hear.
    pub(crate) fn label(self) -> &'static str {
        match self {
            FieldChange::Added => "added",
            FieldChange::Removed => "removed",
            FieldChange::Changed => "changed",
            FieldChange::Unchanged => "unchanged",
        }
    }
}

/// One field of a row change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FieldDiff {
    /// Column name.
    pub(crate) name: String,
    /// Its value before (compact JSON); `None` when the field was absent.
    pub(crate) before: Option<String>,
    /// Its value after (compact JSON); `None` when the field is absent.
    pub(crate) after: Option<String>,
    /// How it changed.
    pub(crate) change: FieldChange,
    /// Whether it went from null to a value or from a value to null.
    pub(crate) null_transition: bool,
}

fn object(text: Option<&str>) -> Option<Map<String, Value>> {
    match serde_json::from_str(text?) {
        Ok(Value::Object(map)) => Some(map),
        _ => None,
    }
}

/// The fields of `old` and `new` (JSON objects as text), changed ones first,
/// each group in column-name order.
pub(crate) fn diff(old: Option<&str>, new: Option<&str>) -> Vec<FieldDiff> {
    let old = object(old).unwrap_or_default();
    let new = object(new).unwrap_or_default();
    let mut names: Vec<&String> = old.keys().chain(new.keys()).collect();
    names.sort();
    names.dedup();
    let mut fields: Vec<FieldDiff> = names
        .into_iter()
        .map(|name| {
            let before = old.get(name);
            let after = new.get(name);
            let change = match (before, after) {
                (None, _) => FieldChange::Added,
                (_, None) => FieldChange::Removed,
                (Some(b), Some(a)) if a == b => FieldChange::Unchanged,
                _ => FieldChange::Changed,
            };
            let null_transition = matches!(
                (before, after),
                (Some(Value::Null), Some(v)) | (Some(v), Some(Value::Null)) if !v.is_null()
            );
            FieldDiff {
                name: name.clone(),
                before: before.map(Value::to_string),
                after: after.map(Value::to_string),
                change,
                null_transition,
            }
        })
        .collect();
    fields.sort_by_key(|f| f.change == FieldChange::Unchanged);
    fields
}

#[cfg(test)]
mod tests {
    use super::{FieldChange, diff};

    #[test]
    fn an_update_shows_changed_fields_first_and_null_transitions() {
        let fields = diff(
            Some(r#"{"id": 1, "status": "open", "closed_at": null, "note": "x"}"#),
            Some(r#"{"id": 1, "status": "closed", "closed_at": "2026-12-06", "note": "x"}"#),
        );
        let names: Vec<_> = fields.iter().map(|f| (f.name.as_str(), f.change)).collect();
        assert_eq!(
            names,
            [
                ("closed_at", FieldChange::Changed),
                ("status", FieldChange::Changed),
                ("id", FieldChange::Unchanged),
                ("note", FieldChange::Unchanged),
            ]
        );
        assert!(fields[0].null_transition);
        assert!(!fields[1].null_transition);
        assert_eq!(fields[1].before.as_deref(), Some("\"open\""));
    }

    #[test]
    fn creates_and_deletes_show_one_side() {
        let created = diff(None, Some(r#"{"a": null}"#));
        assert_eq!(created[0].change, FieldChange::Added);
        assert_eq!(created[0].before, None);
        assert_eq!(created[0].after.as_deref(), Some("null"));
        assert!(!created[0].null_transition);
        let deleted = diff(Some(r#"{"a": 1}"#), None);
        assert_eq!(deleted[0].change, FieldChange::Removed);
        assert!(diff(Some("not json"), Some("[1]")).is_empty());
    }
}
