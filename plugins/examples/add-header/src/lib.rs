//! Add fixed headers, from the configuration, to every request.
//!
//! Configuration:
//!
//! ```json
//! {"headers": {"x-team": "payments", "x-env": "prod"}}
//! ```

use std::collections::BTreeMap;

use changewire_plugin_sdk::{Event, Outcome, Plugin, Result, export_plugin};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    headers: BTreeMap<String, String>,
}

struct AddHeader;

impl Plugin for AddHeader {
    fn transform(event: Event) -> Result<Outcome> {
        let config: Config = event.config()?;
        Ok(config
            .headers
            .into_iter()
            .fold(Outcome::unchanged(), |o, (name, value)| {
                o.with_header(name, value)
            }))
    }
}

export_plugin!(AddHeader);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_configured_headers() {
        let e =
            Event::new("runs", "update", "{}").with_config(r#"{"headers":{"x-team":"payments"}}"#);
        assert_eq!(
            AddHeader::transform(e),
            Ok(Outcome::unchanged().with_header("x-team", "payments"))
        );
        assert!(AddHeader::transform(Event::new("runs", "update", "{}")).is_err());
    }
}
