//! The domain model: typed ids, the settings that are one of a few names,
//! and the specs that own a receiver's and a subscription's defaults and
//! validation. The store encodes these types once (`sqlx::Type`); the API
//! translates GraphQL to and from them and holds no rules of its own.
//!
//! | type | what it replaces |
//! | --- | --- |
//! | [`ReceiverId`], [`SubscriptionId`], [`DeliveryId`], [`ChangeId`] | bare `i64` ids |
//! | [`RetryPolicy`], [`PluginFailureMode`], [`DeliveryStatus`] | `"exponential"`, `"deliver_original"`, `"pending"` strings |
//! | [`SignatureSchemes`] | the stored `"ion,standard"` list, split wherever it was read |
//! | [`ReceiverSpec`] → [`ReceiverSettings`] | defaults and checks spread over GraphQL resolvers |
//! | [`SubscriptionSpec`] | the same for subscriptions |

mod ids;
mod kinds;
mod operational;
mod receiver;
mod receiver_egress;
mod schemes;
mod subscription;
mod text;
pub(crate) mod validate;

pub use ids::{ChangeId, DeliveryId, ReceiverId, SubscriptionId};
pub use kinds::{DeliveryStatus, PluginFailureMode, RetryPolicy};
pub(crate) use operational::OperationalEventType;
pub(crate) use receiver::{BasicAuthSpec, ReceiverRules, ReceiverSpec};
pub use receiver::{NewReceiver, ReceiverSettings};
pub use receiver_egress::ReceiverEgressSettings;
pub(crate) use receiver_egress::{ClientCertificateSpec, EgressSpec, OAuth2Spec};
pub use schemes::SignatureSchemes;
pub(crate) use subscription::SubscriptionSpec;
pub use subscription::{NewSubscription, SubscriptionSettings};

/// A value that breaks a rule: which field, and why. The API reports it as
/// `BAD_USER_INPUT` with `extensions.field`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{field}` {reason}")]
pub(crate) struct Invalid {
    /// The field, as the API names it (`webhookUri`, `headers[1].key`).
    pub(crate) field: String,
    /// Why, in words that read after the field's name.
    pub(crate) reason: String,
}

impl Invalid {
    /// `field` breaks a rule, because `reason`.
    pub(crate) fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// The same error with the field named under `prefix` (`input`).
    pub(crate) fn under(self, prefix: &str) -> Self {
        Invalid {
            field: format!("{prefix}.{}", self.field),
            ..self
        }
    }
}

/// A stored name that is not one of a setting's names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{given}` is not a {kind} (one of {})", expected.join(", "))]
pub struct UnknownName {
    /// The setting.
    pub kind: &'static str,
    /// What was found.
    pub given: String,
    /// Its names.
    pub expected: &'static [&'static str],
}
