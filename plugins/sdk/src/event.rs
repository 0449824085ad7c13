//! The event a plugin receives.

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::bindings::changewire::plugin::types as wit;
use crate::{Error, Result};

/// The webhook the gateway is about to send, and who it is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The resource that changed, lowercase as in the body, e.g. `runs`.
    pub resource: String,
    /// `create`, `update`, `delete`, or `test` for a test delivery.
    pub action: String,
    /// The JSON body the gateway would send without the plugin:
    /// `{"event_id", "subscription_id", "resource", "action",
    /// "transaction_id", "occurred_at", "data": {"id", "etag", "old", "new"}}`.
    pub body: String,
    /// The id of the receiver this delivery goes to.
    pub receiver_id: i64,
    /// The name of the receiver this delivery goes to.
    pub receiver_name: String,
    /// The JSON configuration given when the plugin was attached (`{}` if
    /// none). Read it with [`Event::config`].
    pub config: String,
}

impl Event {
    /// An event with this resource, action and body, receiver 0 named
    /// `test`, and configuration `{}`. For tests.
    pub fn new(
        resource: impl Into<String>,
        action: impl Into<String>,
        body: impl Into<String>,
    ) -> Self {
        Event {
            resource: resource.into(),
            action: action.into(),
            body: body.into(),
            receiver_id: 0,
            receiver_name: "test".to_owned(),
            config: "{}".to_owned(),
        }
    }

    /// The same event with this configuration JSON. For tests.
    pub fn with_config(mut self, config: impl Into<String>) -> Self {
        self.config = config.into();
        self
    }

    /// The same event addressed to this receiver. For tests.
    pub fn with_receiver(mut self, id: i64, name: impl Into<String>) -> Self {
        self.receiver_id = id;
        self.receiver_name = name.into();
        self
    }

    /// The body parsed as JSON.
    pub fn json(&self) -> Result<Value> {
        serde_json::from_str(&self.body)
            .map_err(|e| Error::msg(format_args!("body is not JSON: {e}")))
    }

    /// The body deserialized into your own type.
    pub fn body_as<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_str(&self.body)
            .map_err(|e| Error::msg(format_args!("unexpected body: {e}")))
    }

    /// The attach-time configuration deserialized into your own type. An
    /// empty configuration reads as `{}`, so a type whose fields all have
    /// `#[serde(default)]` always succeeds when none was given.
    pub fn config<T: DeserializeOwned>(&self) -> Result<T> {
        let config = if self.config.trim().is_empty() {
            "{}"
        } else {
            &self.config
        };
        serde_json::from_str(config)
            .map_err(|e| Error::msg(format_args!("invalid plugin configuration: {e}")))
    }
}

impl From<wit::Event> for Event {
    fn from(e: wit::Event) -> Self {
        Event {
            resource: e.resource,
            action: e.action,
            body: e.body,
            receiver_id: e.receiver_id,
            receiver_name: e.receiver_name,
            config: e.config,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_defaults_to_empty_object() {
        #[derive(serde::Deserialize, Default)]
        #[serde(default)]
        struct Cfg {
            field: Option<String>,
        }
        let e = Event::new("runs", "update", "{}").with_config("");
        assert_eq!(e.config::<Cfg>().map(|c| c.field), Ok(None));
    }

    #[test]
    fn bad_json_names_the_problem() {
        let e = Event::new("runs", "update", "{nope");
        let err = e.json().map(|_| ()).unwrap_err();
        assert!(err.message().starts_with("body is not JSON: "), "{err}");
        let err = e
            .with_config("[")
            .config::<Value>()
            .map(|_| ())
            .unwrap_err();
        assert!(
            err.message().starts_with("invalid plugin configuration: "),
            "{err}"
        );
    }
}
