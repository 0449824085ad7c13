//! Deliver only events where a field of the body has one of the configured
//! values; drop the rest.
//!
//! Configuration (`path` defaults to `data.new.status`):
//!
//! ```json
//! {"path": "data.new.status", "equals": "complete"}
//! {"path": "data.new.priority", "one_of": [1, 2]}
//! ```
//!
//! Because `data.new` holds only the fields an update changed, the first
//! example delivers exactly the runs whose status *became* `complete`.

use changewire_plugin_sdk::serde_json::Value;
use changewire_plugin_sdk::{Event, Outcome, Plugin, Result, export_plugin, path};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default = "default_path")]
    path: String,
    equals: Option<Value>,
    #[serde(default)]
    one_of: Vec<Value>,
}

fn default_path() -> String {
    "data.new.status".to_owned()
}

struct FilterByField;

impl Plugin for FilterByField {
    fn transform(event: Event) -> Result<Outcome> {
        let config: Config = event.config()?;
        let wanted: Vec<&Value> = config.equals.iter().chain(&config.one_of).collect();
        if wanted.is_empty() {
            return Err("configuration needs `equals` or `one_of`".into());
        }
        let body = event.json()?;
        Ok(match path::get(&body, &config.path) {
            Some(v) if wanted.contains(&v) => Outcome::unchanged(),
            Some(v) => Outcome::drop(format!("{} is {v}", config.path)),
            None => Outcome::drop(format!("{} is absent", config.path)),
        })
    }
}

export_plugin!(FilterByField);

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &str = r#"{"event_id":1,"resource":"runs","action":"update","data":{"id":7,"old":{"status":"in_progress"},"new":{"status":"complete"}}}"#;

    #[test]
    fn delivers_matching_and_drops_the_rest() {
        let event = |config: &str| Event::new("runs", "update", BODY).with_config(config);
        assert_eq!(
            FilterByField::transform(event(r#"{"equals":"complete"}"#)),
            Ok(Outcome::unchanged())
        );
        assert_eq!(
            FilterByField::transform(event(r#"{"equals":"failed"}"#)),
            Ok(Outcome::drop(r#"data.new.status is "complete""#))
        );
        assert_eq!(
            FilterByField::transform(event(r#"{"path":"data.new.owner","one_of":["a"]}"#)),
            Ok(Outcome::drop("data.new.owner is absent"))
        );
        assert!(FilterByField::transform(event("{}")).is_err());
    }
}
