//! Row diffs: which fields changed, keeping the row's own key order.
//!
//! Values are compared as JSON text, which both PostgreSQL (`jsonb`) and
//! SQLite (`json_object`) print canonically; a field going from null to a
//! value, or back, is a change like any other.

use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

/// A JSON object as ordered `(key, raw value)` pairs.
#[derive(Debug, Clone)]
pub struct RawObject(pub Vec<(String, Box<RawValue>)>);

impl PartialEq for RawObject {
    fn eq(&self, other: &Self) -> bool {
        self.0.len() == other.0.len()
            && self
                .0
                .iter()
                .zip(&other.0)
                .all(|((ka, va), (kb, vb))| ka == kb && va.get() == vb.get())
    }
}

impl<'de> serde::Deserialize<'de> for RawObject {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawObject;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawObject, A::Error> {
                let mut pairs = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, Box<RawValue>>()? {
                    pairs.push((k, v));
                }
                Ok(RawObject(pairs))
            }
        }
        d.deserialize_map(V)
    }
}

impl RawObject {
    /// Parses an object.
    pub fn parse(text: &str) -> Result<RawObject, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// The raw value of a key.
    pub fn get(&self, key: &str) -> Option<&RawValue> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_ref())
    }

    /// Writes the pairs for `keys` (in this object's order) as an object.
    fn subset(&self, keep: impl Fn(&str) -> bool) -> String {
        let mut out = String::from("{");
        for (k, v) in &self.0 {
            if !keep(k) {
                continue;
            }
            if out.len() > 1 {
                out.push_str(", ");
            }
            out.push_str(&serde_json::to_string(k).unwrap_or_default());
            out.push_str(": ");
            out.push_str(v.get());
        }
        out.push('}');
        out
    }

    /// The object as text (normalized spacing).
    pub fn to_text(&self) -> String {
        self.subset(|_| true)
    }
}

/// The changed fields of an update: `(old, new)` objects holding only the
/// keys whose values differ. `None` when nothing changed.
pub fn changed_fields(old: &RawObject, new: &RawObject) -> Option<(String, String)> {
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
