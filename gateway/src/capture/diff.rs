//! Row diffs: which fields changed, keeping the row's own key order.
//!
//! Values are compared as JSON text, which both PostgreSQL (`jsonb`) and
//! SQLite (`json_object`) print canonically; a field going from null to a
//! value, or back, is a change like any other.

use serde_json::value::RawValue;

use crate::envelope::RawObject;

/// The changed fields of an update: `(old, new)` objects holding only the
/// keys whose values differ. `None` when nothing changed.
pub(crate) fn changed_fields(old: &RawObject, new: &RawObject) -> Option<(String, String)> {
    let differs = |key: &str| -> bool {
        let a = old.get(key).map(RawValue::get);
        let b = new.get(key).map(RawValue::get);
        a != b
    };
    let changed: Vec<&str> = new
        .0
        .iter()
        .map(|(k, _)| k.as_str())
        .chain(
            old.0
                .iter()
                .map(|(k, _)| k.as_str())
                .filter(|k| new.get(k).is_none()),
        )
        .filter(|k| differs(k))
        .collect();
    if changed.is_empty() {
        return None;
    }
    let is_changed = |k: &str| changed.contains(&k);
    Some((old.subset(is_changed), new.subset(is_changed)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_and_counts_null_transitions() {
        let old =
            RawObject::parse(r#"{"id": 1, "status": "open", "note": null, "qty": 2, "tag": "x"}"#)
                .unwrap();
        let new =
            RawObject::parse(r#"{"id": 1, "status": "done", "note": "hi", "qty": 2, "tag": null}"#)
                .unwrap();
        let (o, n) = changed_fields(&old, &new).unwrap();
        assert_eq!(o, r#"{"status": "open", "note": null, "tag": "x"}"#);
        assert_eq!(n, r#"{"status": "done", "note": "hi", "tag": null}"#);
    }

    #[test]
    fn no_change_is_none() {
        let a = RawObject::parse(r#"{"id": 1, "v": [1, 2]}"#).unwrap();
        assert_eq!(changed_fields(&a, &a.clone()), None);
    }
}
