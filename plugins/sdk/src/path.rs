//! Dotted paths into JSON values: `data.new.status`, `items.0.sku`.
//!
//! A path is a list of segments separated by `.`; a segment selects an object
//! member by name, or an array element when it is a decimal index. The empty
//! path selects the value itself. (Member names containing `.` cannot be
//! addressed; use `serde_json::Value::pointer` for those.)

use serde_json::Value;

/// The value at `path`, if there is one.
pub fn get<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    segments(path).try_fold(value, |v, seg| match v {
        Value::Object(map) => map.get(seg),
        Value::Array(items) => seg.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => None,
    })
}

/// The value at `path`, mutably, if there is one.
pub fn get_mut<'a>(value: &'a mut Value, path: &str) -> Option<&'a mut Value> {
    segments(path).try_fold(value, |v, seg| match v {
        Value::Object(map) => map.get_mut(seg),
        Value::Array(items) => seg.parse::<usize>().ok().and_then(|i| items.get_mut(i)),
        _ => None,
    })
}

/// Remove the value at `path` and return it. Removing an array element
/// shifts the later ones; removing the empty path is not possible (`None`).
pub fn remove(value: &mut Value, path: &str) -> Option<Value> {
    let (parent, last) = match path.rsplit_once('.') {
        Some((parent, last)) => (get_mut(value, parent)?, last),
        None if path.is_empty() => return None,
        None => (value, path),
    };
    match parent {
        // `shift_remove` keeps the other members in order (with
        // `preserve-order`; without it, `remove` is the same thing).
        Value::Object(map) => map.shift_remove(last),
        Value::Array(items) => {
            let i = last.parse::<usize>().ok().filter(|i| *i < items.len())?;
            Some(items.remove(i))
        }
        _ => None,
    }
}

fn segments(path: &str) -> impl Iterator<Item = &str> {
    path.split('.').filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn get_and_remove() {
        let mut v = json!({"data": {"new": {"status": "complete", "tags": ["a", "b"]}}});
        assert_eq!(get(&v, "data.new.status"), Some(&json!("complete")));
        assert_eq!(get(&v, "data.new.tags.1"), Some(&json!("b")));
        assert_eq!(get(&v, "data.new.tags.x"), None);
        assert_eq!(get(&v, "data.old.status"), None);
        assert_eq!(get(&v, ""), Some(&v));
        if let Some(s) = get_mut(&mut v, "data.new.status") {
            *s = json!("archived");
        }
        assert_eq!(remove(&mut v, "data.new.status"), Some(json!("archived")));
        assert_eq!(remove(&mut v, "data.new.tags.0"), Some(json!("a")));
        assert_eq!(remove(&mut v, "data.new.tags.5"), None);
        assert_eq!(remove(&mut v, ""), None);
        assert_eq!(v, json!({"data": {"new": {"tags": ["b"]}}}));
    }
}
