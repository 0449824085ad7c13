//! Mask or remove fields of the changed row before it leaves the building.
//!
//! Configuration:
//!
//! ```json
//! {"fields": ["email", "customer.phone"], "mode": "mask", "mask": "[redacted]"}
//! ```
//!
//! Each path in `fields` is looked up under `data.old`, `data.new` and
//! `data.record` (whichever the body has). `mode` is `mask` (default: replace
//! the value with `mask`, default `"[redacted]"`) or `remove`. Everything
//! else in the body, including key order, is kept.

use changewire_plugin_sdk::serde_json::Value;
use changewire_plugin_sdk::{Event, Outcome, Plugin, Result, export_plugin, path};
use serde::Deserialize;

#[derive(Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Mode {
    #[default]
    Mask,
    Remove,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    fields: Vec<String>,
    #[serde(default)]
    mode: Mode,
    #[serde(default = "default_mask")]
    mask: Value,
}

fn default_mask() -> Value {
    Value::from("[redacted]")
}

const SECTIONS: [&str; 3] = ["old", "new", "record"];

struct RedactFields;

impl Plugin for RedactFields {
    fn transform(event: Event) -> Result<Outcome> {
        let config: Config = event.config()?;
        let mut body = event.json()?;
        let mut changed = false;
        for section in SECTIONS {
            let Some(row) = body.get_mut("data").and_then(|d| d.get_mut(section)) else {
                continue;
            };
            for field in &config.fields {
                changed |= match config.mode {
                    Mode::Remove => path::remove(row, field).is_some(),
                    Mode::Mask => match path::get_mut(row, field) {
                        Some(v) => {
                            *v = config.mask.clone();
                            true
                        }
                        None => false,
                    },
                };
            }
        }
        if changed {
            Outcome::deliver_json(&body)
        } else {
            Ok(Outcome::unchanged())
        }
    }
}

export_plugin!(RedactFields);

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &str = r#"{"event_id":1,"data":{"id":7,"old":{"email":"a@x.io","status":"new"},"new":{"email":"b@x.io","customer":{"phone":"555","name":"Ada"}}}}"#;

    #[test]
    fn masks_and_removes_in_every_section() {
        let e = Event::new("runs", "update", BODY)
            .with_config(r#"{"fields":["email","customer.phone"]}"#);
        assert_eq!(
            RedactFields::transform(e).map(|o| o.body().map(str::to_owned)),
            Ok(Some(
                r#"{"event_id":1,"data":{"id":7,"old":{"email":"[redacted]","status":"new"},"new":{"email":"[redacted]","customer":{"phone":"[redacted]","name":"Ada"}}}}"#
                    .to_owned()
            ))
        );
        let e = Event::new("runs", "update", BODY)
            .with_config(r#"{"fields":["email"],"mode":"remove"}"#);
        assert_eq!(
            RedactFields::transform(e).map(|o| o.body().map(str::to_owned)),
            Ok(Some(
                r#"{"event_id":1,"data":{"id":7,"old":{"status":"new"},"new":{"customer":{"phone":"555","name":"Ada"}}}}"#
                    .to_owned()
            ))
        );
    }

    #[test]
    fn nothing_to_redact_is_unchanged() {
        let e = Event::new("runs", "update", BODY).with_config(r#"{"fields":["ssn"]}"#);
        assert_eq!(RedactFields::transform(e), Ok(Outcome::unchanged()));
    }
}
