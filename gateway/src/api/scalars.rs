//! GraphQL types built from configuration (`ResourceEnum`) and id parsing.

use std::borrow::Cow;
use std::cell::RefCell;

use crate::envelope::Action;
use async_graphql::parser::types::Field;
use async_graphql::registry::{MetaEnumValue, MetaType, MetaTypeId, Registry};
use async_graphql::{
    ContextSelectionSet, Enum, ID, InputType, InputValueError, InputValueResult, Name, OutputType,
    Positioned, ServerResult, Value,
};

use super::error::Error;

thread_local! {
    static SCHEMA_RESOURCES: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

/// Runs `build` with `names` as the values of `ResourceEnum` (the schema
/// registry is filled synchronously while the schema is built).
pub(crate) fn with_resources<T>(names: Vec<String>, build: impl FnOnce() -> T) -> T {
    SCHEMA_RESOURCES.with(|cell| *cell.borrow_mut() = names);
    let out = build();
    SCHEMA_RESOURCES.with(|cell| cell.borrow_mut().clear());
    out
}

/// A `ResourceEnum` value: one of the configured resources.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct ResourceName(pub(crate) String);

fn resource_meta() -> MetaType {
    let values = SCHEMA_RESOURCES.with(|cell| cell.borrow().clone());
    MetaType::Enum {
        name: "ResourceEnum".to_string(),
        description: Some(
            "The webhookable resources: each is a database table (or a producer's event type)."
                .into(),
        ),
        enum_values: values
            .into_iter()
            .map(|name| {
                (
                    name.clone(),
                    MetaEnumValue {
                        name,
                        description: None,
                        deprecation: Default::default(),
                        visible: None,
                        inaccessible: false,
                        tags: Vec::new(),
                        directive_invocations: Vec::new(),
                    },
                )
            })
            .collect(),
        visible: None,
        inaccessible: false,
        tags: Vec::new(),
        rust_typename: Some(std::any::type_name::<ResourceName>()),
        directive_invocations: Vec::new(),
        requires_scopes: Vec::new(),
    }
}

impl InputType for ResourceName {
    type RawValueType = Self;

    fn type_name() -> Cow<'static, str> {
        Cow::Borrowed("ResourceEnum")
    }

    fn create_type_info(registry: &mut Registry) -> String {
        registry.create_input_type::<Self, _>(MetaTypeId::Enum, |_| resource_meta())
    }

    fn parse(value: Option<Value>) -> InputValueResult<Self> {
        match value {
            Some(Value::Enum(name)) => Ok(ResourceName(name.to_string())),
            Some(Value::String(name)) => Ok(ResourceName(name)),
            Some(other) => Err(InputValueError::expected_type(other)),
            None => Err(InputValueError::expected_type(Value::Null)),
        }
    }

    fn to_value(&self) -> Value {
        Value::Enum(Name::new(&self.0))
    }

    fn as_raw_value(&self) -> Option<&Self::RawValueType> {
        Some(self)
    }
}

impl OutputType for ResourceName {
    fn type_name() -> Cow<'static, str> {
        Cow::Borrowed("ResourceEnum")
    }

    fn create_type_info(registry: &mut Registry) -> String {
        registry.create_output_type::<Self, _>(MetaTypeId::Enum, |_| resource_meta())
    }

    async fn resolve(
        &self,
        _ctx: &ContextSelectionSet<'_>,
        _field: &Positioned<Field>,
    ) -> ServerResult<Value> {
        Ok(Value::Enum(Name::new(&self.0)))
    }
}

/// `WebhookSubscriptionActions`: the database operation that fires a webhook.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "WebhookSubscriptionActions")]
pub(crate) enum SubscriptionAction {
    /// A row was inserted.
    Create,
    /// A row was updated.
    Update,
    /// A row was deleted.
    Delete,
}

impl From<SubscriptionAction> for Action {
    fn from(a: SubscriptionAction) -> Self {
        match a {
            SubscriptionAction::Create => Action::Create,
            SubscriptionAction::Update => Action::Update,
            SubscriptionAction::Delete => Action::Delete,
        }
    }
}

impl SubscriptionAction {
    /// The API value of a stored action (None for a test ping's).
    pub(crate) fn of(action: Action) -> Option<Self> {
        match action {
            Action::Create => Some(SubscriptionAction::Create),
            Action::Update => Some(SubscriptionAction::Update),
            Action::Delete => Some(SubscriptionAction::Delete),
            _ => None,
        }
    }
}

/// Parses an id given as a string or a number (`ID` accepts both).
pub(crate) fn parse_id(field: &str, id: &ID) -> Result<i64, Error> {
    id.as_str()
        .trim()
        .parse::<i64>()
        .ok()
        .filter(|v| *v > 0)
        .ok_or_else(|| {
            Error::bad_input(
                field,
                format!("`{}` is not an id (a positive integer)", id.as_str()),
            )
        })
}

/// Formats a stored id.
pub(crate) fn id(v: impl Into<i64>) -> ID {
    ID(v.into().to_string())
}

/// Who created an object.
#[derive(async_graphql::SimpleObject, Debug, Clone)]
pub(crate) struct CreatedBy {
    /// The API key id (`admin` for the bootstrap token).
    pub(crate) id: ID,
    /// The API key name.
    pub(crate) name: String,
}
