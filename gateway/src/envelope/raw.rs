//! A JSON object kept as text: its keys in their own order and each value
//! as written, so a captured row's key order and number spelling reach the
//! receiver unchanged.

use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

/// A JSON object as ordered `(key, raw value)` pairs.
#[derive(Debug, Clone)]
pub(crate) struct RawObject(pub(crate) Vec<(String, Box<RawValue>)>);

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
    pub(crate) fn parse(text: &str) -> Result<RawObject, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// The raw value of a key.
    pub(crate) fn get(&self, key: &str) -> Option<&RawValue> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_ref())
    }

    /// Writes the pairs for `keys` (in this object's order) as an object.
    pub(crate) fn subset(&self, keep: impl Fn(&str) -> bool) -> String {
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
    pub(crate) fn to_text(&self) -> String {
        self.subset(|_| true)
    }
}
