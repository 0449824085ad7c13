//! A subscription: one (resource, action) of one receiver, and what its
//! deliveries carry beyond the diff. [`SubscriptionSpec`] owns the
//! defaults and the rules.

use super::{Invalid, ReceiverId};
use crate::config::Resources;
use crate::envelope::Action;

/// What a subscription's deliveries carry beyond the diff, and whether it
/// fires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionSettings {
    /// Whether it fires.
    pub active: bool,
    /// Whether deliveries carry the whole row (`data.record`).
    pub include_full_record: bool,
    /// Foreign-key columns expanded into `data.related`.
    pub expand: Vec<String>,
}

impl SubscriptionSettings {
    /// The stored form of `expand`: a JSON array.
    pub(crate) fn expand_json(&self) -> String {
        serde_json::to_string(&self.expand).unwrap_or_else(|_| "[]".into())
    }
}

/// A new subscription, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSubscription {
    /// Whose.
    pub receiver_id: ReceiverId,
    /// A configured `ResourceEnum` value.
    pub resource: String,
    /// CREATE, UPDATE or DELETE.
    pub action: Action,
    /// The rest.
    pub settings: SubscriptionSettings,
}

/// Settings a client asks for; `None` leaves a setting as it is (or, for a
/// new subscription, at its default).
#[derive(Debug, Clone, Default)]
pub(crate) struct SubscriptionSpec {
    /// Fires (default true).
    pub(crate) active: Option<bool>,
    /// Whole row (default false).
    pub(crate) include_full_record: Option<bool>,
    /// Columns to expand (default none).
    pub(crate) expand: Option<Vec<String>>,
}

impl SubscriptionSpec {
    /// A new subscription of `receiver_id` to (`resource`, `action`).
    pub(crate) fn create(
        self,
        receiver_id: ReceiverId,
        resource: &str,
        action: Action,
        resources: &Resources,
    ) -> Result<NewSubscription, Invalid> {
        if resources.get(resource).is_none() {
            return Err(Invalid::new(
                "resource",
                format!(
                    "`{resource}` is not a configured resource (ResourceEnum: {})",
                    resources.names().join(", ")
                ),
            ));
        }
        if !matches!(action, Action::Create | Action::Update | Action::Delete) {
            return Err(Invalid::new("action", "must be CREATE, UPDATE or DELETE"));
        }
        let defaults = SubscriptionSettings {
            active: true,
            include_full_record: false,
            expand: Vec::new(),
        };
        let settings = self.update(resource, &defaults, resources)?;
        Ok(NewSubscription {
            receiver_id,
            resource: resource.to_string(),
            action,
            settings,
        })
    }

    /// `current` (a subscription to `resource`) with this spec's changes.
    pub(crate) fn update(
        self,
        resource: &str,
        current: &SubscriptionSettings,
        resources: &Resources,
    ) -> Result<SubscriptionSettings, Invalid> {
        let mut s = current.clone();
        if let Some(active) = self.active {
            s.active = active;
        }
        if let Some(full) = self.include_full_record {
            s.include_full_record = full;
        }
        if let Some(columns) = self.expand {
            s.expand = checked_expand(resource, columns, resources)?;
        }
        Ok(s)
    }
}

/// Expansions are foreign-key column names of a captured table.
fn checked_expand(
    resource: &str,
    columns: Vec<String>,
    resources: &Resources,
) -> Result<Vec<String>, Invalid> {
    if columns.is_empty() {
        return Ok(columns);
    }
    let captured = resources.get(resource).and_then(|r| r.table.as_ref());
    if captured.is_none() {
        return Err(Invalid::new(
            "expand",
            format!("`{resource}` is not a captured table, so it has no foreign keys to expand"),
        ));
    }
    for (i, c) in columns.iter().enumerate() {
        crate::config::resources::check_table(c)
            .ok()
            .filter(|_| !c.contains('.'))
            .ok_or_else(|| {
                Invalid::new(
                    format!("expand[{i}]"),
                    format!("`{c}` is not a column name"),
                )
            })?;
    }
    Ok(columns)
}
