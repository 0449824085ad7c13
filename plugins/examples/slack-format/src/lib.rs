//! Turn the webhook into a Slack incoming-webhook message, `{"text": "..."}`.
//!
//! ```text
//! [ION] runs 7 updated
//! • status: in_progress → complete
//! ```
//!
//! Configuration (all optional):
//!
//! ```json
//! {"prefix": "[ION] ", "max_fields": 10}
//! ```

use std::fmt::Write;

use changewire_plugin_sdk::serde_json::{Map, Value};
use changewire_plugin_sdk::{Event, Outcome, Plugin, Result, export_plugin, json};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Config {
    prefix: String,
    max_fields: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            prefix: String::new(),
            max_fields: 10,
        }
    }
}

struct SlackFormat;

impl Plugin for SlackFormat {
    fn transform(event: Event) -> Result<Outcome> {
        let config: Config = event.config()?;
        let body = event.json()?;
        let data = body.get("data");
        let id = data
            .and_then(|d| d.get("id"))
            .map(plain)
            .unwrap_or_default();
        let verb = match event.action.as_str() {
            "create" => "created",
            "update" => "updated",
            "delete" => "deleted",
            "test" => "test event",
            other => other,
        };
        let mut text = format!("{}{} {id} {verb}", config.prefix, event.resource);
        let empty = Map::new();
        let section = |name| {
            data.and_then(|d| d.get(name))
                .and_then(Value::as_object)
                .unwrap_or(&empty)
        };
        let (old, new) = (section("old"), section("new"));
        // Fields in the order the body lists them: new first, then any only in old.
        let fields = new
            .keys()
            .chain(old.keys().filter(|k| !new.contains_key(*k)));
        for (shown, field) in fields.enumerate() {
            if shown == config.max_fields {
                text.push_str("\n• …");
                break;
            }
            let _ = match (old.get(field), new.get(field)) {
                (Some(o), Some(n)) => write!(text, "\n• {field}: {} → {}", plain(o), plain(n)),
                (None, Some(n)) => write!(text, "\n• {field}: {}", plain(n)),
                (Some(o), None) => write!(text, "\n• {field}: {} (removed)", plain(o)),
                (None, None) => Ok(()),
            };
        }
        Outcome::deliver_json(&json!({ "text": text }))
    }
}

/// A JSON value as a person would write it: strings without quotes.
fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

export_plugin!(SlackFormat);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_an_update() {
        let body = r#"{"event_id":1,"resource":"runs","action":"update","data":{"id":7,"etag":"e","old":{"status":"in_progress","qty":1},"new":{"status":"complete","qty":2}}}"#;
        let e = Event::new("runs", "update", body).with_config(r#"{"prefix":"[ION] "}"#);
        let out = SlackFormat::transform(e).map(|o| o.body().map(str::to_owned));
        assert_eq!(
            out,
            Ok(Some(
                r#"{"text":"[ION] runs 7 updated\n• status: in_progress → complete\n• qty: 1 → 2"}"#.to_owned()
            ))
        );
    }

    #[test]
    fn caps_the_field_list() {
        let body = r#"{"data":{"id":1,"new":{"a":1,"b":2,"c":3}}}"#;
        let e = Event::new("runs", "create", body).with_config(r#"{"max_fields":2}"#);
        let out = SlackFormat::transform(e).map(|o| o.body().map(str::to_owned));
        assert_eq!(
            out,
            Ok(Some(
                r#"{"text":"runs 1 created\n• a: 1\n• b: 2\n• …"}"#.to_owned()
            ))
        );
    }
}
