//! The webhook body: ION's envelope, with serde.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The database operation behind an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Action {
    /// A row was inserted (`old` is null).
    Create,
    /// A row was updated (`old`/`new` hold the changed fields).
    Update,
    /// A row was deleted (`new` is null).
    Delete,
    /// A test ping sent by `sendTestWebhook`; no row changed.
    Test,
}

impl Action {
    /// Lowercase name as in the body: `create`, `update`, `delete`, `test`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Delete => "delete",
            Action::Test => "test",
        }
    }

    /// The name as ION's API spells it (`WebhookSubscriptionActions`) and
    /// the gateway stores it: `CREATE`, `UPDATE`, `DELETE`, `TEST`.
    pub fn api_name(self) -> &'static str {
        match self {
            Action::Create => "CREATE",
            Action::Update => "UPDATE",
            Action::Delete => "DELETE",
            Action::Test => "TEST",
        }
    }

    /// Parses a name in any case (`UPDATE`, `update`).
    pub fn parse(name: &str) -> Option<Action> {
        match name.to_ascii_lowercase().as_str() {
            "create" => Some(Action::Create),
            "update" => Some(Action::Update),
            "delete" => Some(Action::Delete),
            "test" => Some(Action::Test),
            _ => None,
        }
    }
}

/// A name that is not an [`Action`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownAction(pub String);

impl std::fmt::Display for UnknownAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`{}` is not an action (CREATE, UPDATE, DELETE or TEST)",
            self.0
        )
    }
}

impl std::error::Error for UnknownAction {}

impl std::str::FromStr for Action {
    type Err = UnknownAction;

    /// Any case: `update`, `UPDATE`.
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Action::parse(name).ok_or_else(|| UnknownAction(name.to_string()))
    }
}

impl TryFrom<String> for Action {
    type Error = UnknownAction;

    fn try_from(name: String) -> Result<Self, Self::Error> {
        name.parse()
    }
}

impl std::fmt::Display for Action {
    /// The body's lowercase name.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One delivery's body, as ION sends it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Unique per delivery and stable across retries: the idempotency key.
    pub event_id: i64,
    /// The subscription that matched.
    pub subscription_id: i64,
    /// The resource, lowercase (`run_steps`).
    pub resource: String,
    /// The operation.
    pub action: Action,
    /// The database transaction; events of one transaction share it.
    pub transaction_id: i64,
    /// When the change committed (UTC, ISO 8601).
    pub occurred_at: String,
    /// The change.
    pub data: EventData,
}

/// The `data` member: the row and what changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventData {
    /// The row's primary key (a number or a string).
    pub id: Value,
    /// The row's new etag.
    #[serde(default)]
    pub etag: Option<String>,
    /// The changed fields before the change; null on CREATE.
    #[serde(default)]
    pub old: Option<Map<String, Value>>,
    /// The changed fields after the change; null on DELETE.
    #[serde(default)]
    pub new: Option<Map<String, Value>>,
    /// Anything else in `data`: `record` (the full current row, when the
    /// subscription asks for it), `related` (expanded foreign keys), or
    /// fields a plugin added.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_reference_example() {
        let body = r#"{"event_id": 123456, "subscription_id": 42, "resource": "run_step", "action": "update",
            "transaction_id": 9876543, "occurred_at": "2026-04-26T19:33:42.108Z",
            "data": {"id": 1234, "etag": "abc123", "old": {"status": "in_progress"},
                     "new": {"status": "complete"}, "record": {"x": 1}}}"#;
        let event: Event = serde_json::from_str(body).unwrap();
        assert_eq!(event.action, Action::Update);
        assert_eq!(event.data.id, serde_json::json!(1234));
        assert!(event.data.extra.contains_key("record"));
        let create = r#"{"event_id":1,"subscription_id":1,"resource":"runs","action":"create","transaction_id":1,"occurred_at":"t","data":{"id":"a","old":null,"new":{"x":1}}}"#;
        let event: Event = serde_json::from_str(create).unwrap();
        assert_eq!(event.data.old, None);
        assert_eq!(Action::parse("DELETE"), Some(Action::Delete));
    }

    #[test]
    fn every_action_round_trips_through_both_of_its_names() {
        for action in [Action::Create, Action::Update, Action::Delete, Action::Test] {
            assert_eq!(action.as_str().parse::<Action>(), Ok(action));
            assert_eq!(Action::try_from(action.api_name().to_string()), Ok(action));
            assert_eq!(action.api_name().to_ascii_lowercase(), action.as_str());
        }
        let err = "upsert".parse::<Action>().unwrap_err();
        assert!(
            err.to_string().contains("`upsert` is not an action"),
            "{err}"
        );
    }
}
