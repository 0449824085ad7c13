//! Operational subscriptions: a receiver subscribed to events about the
//! gateway itself (`receiver.disabled`, `delivery.exhausted`, …).

use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};

use super::context::{admin, api, caller};
use super::error::{Error, FieldResult};
use super::scalars::{id, parse_id};
use crate::model::{OperationalEventType, ReceiverId};
use crate::store::operational::OperationalSubscriptionRow;
use crate::timefmt::format_ms;

/// An event about the gateway itself.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(name = "OperationalEventType")]
pub(crate) enum GqlOperationalEventType {
    /// A receiver stopped getting deliveries: its circuit opened, it
    /// answered 410 Gone, or it failed longer than `auto_disable_after_secs`
    /// (`receiver.disabled`).
    ReceiverDisabled,
    /// A receiver whose circuit was open answers again (`receiver.recovered`).
    ReceiverRecovered,
    /// A delivery's Nth consecutive failed attempt (`delivery.failing`;
    /// N is `operational.failing_after_attempts`, default 3).
    DeliveryFailing,
    /// A delivery used up its retries and is `failed` (`delivery.exhausted`).
    DeliveryExhausted,
    /// Capture has not caught up with its log for longer than
    /// `operational.capture_lag_secs` (`capture.lagging`).
    CaptureLagging,
    /// A plugin cannot load, or failed on a delivery (`plugin.failed`).
    PluginFailed,
}

impl From<GqlOperationalEventType> for OperationalEventType {
    fn from(k: GqlOperationalEventType) -> Self {
        match k {
            GqlOperationalEventType::ReceiverDisabled => OperationalEventType::ReceiverDisabled,
            GqlOperationalEventType::ReceiverRecovered => OperationalEventType::ReceiverRecovered,
            GqlOperationalEventType::DeliveryFailing => OperationalEventType::DeliveryFailing,
            GqlOperationalEventType::DeliveryExhausted => OperationalEventType::DeliveryExhausted,
            GqlOperationalEventType::CaptureLagging => OperationalEventType::CaptureLagging,
            GqlOperationalEventType::PluginFailed => OperationalEventType::PluginFailed,
        }
    }
}

impl From<OperationalEventType> for GqlOperationalEventType {
    fn from(k: OperationalEventType) -> Self {
        match k {
            OperationalEventType::ReceiverDisabled => GqlOperationalEventType::ReceiverDisabled,
            OperationalEventType::ReceiverRecovered => GqlOperationalEventType::ReceiverRecovered,
            OperationalEventType::DeliveryFailing => GqlOperationalEventType::DeliveryFailing,
            OperationalEventType::DeliveryExhausted => GqlOperationalEventType::DeliveryExhausted,
            OperationalEventType::CaptureLagging => GqlOperationalEventType::CaptureLagging,
            OperationalEventType::PluginFailed => GqlOperationalEventType::PluginFailed,
        }
    }
}

/// A receiver's subscription to operational events.
pub(crate) struct OperationalSubscription {
    row: OperationalSubscriptionRow,
}

#[Object]
impl OperationalSubscription {
    /// Id.
    async fn id(&self) -> ID {
        id(self.row.id)
    }

    /// The receiver that gets the events.
    async fn receiver_id(&self) -> ID {
        id(self.row.receiver_id)
    }

    /// The events it gets.
    async fn event_types(&self) -> Vec<GqlOperationalEventType> {
        self.row.kinds().into_iter().map(Into::into).collect()
    }

    /// Who created it.
    async fn created_by(&self) -> &str {
        &self.row.created_by
    }

    /// When.
    async fn created_at(&self) -> String {
        format_ms(self.row.created_at)
    }
}

/// Input of `createOperationalSubscription`.
#[derive(InputObject, Debug, Clone)]
pub(crate) struct CreateOperationalSubscriptionInput {
    /// The receiver that gets the events (an ordinary receiver).
    pub(crate) receiver_id: ID,
    /// The events it gets (at least one).
    pub(crate) event_types: Vec<GqlOperationalEventType>,
}

/// Result of `createOperationalSubscription`.
#[derive(SimpleObject)]
pub(crate) struct OperationalSubscriptionPayload {
    /// The new subscription.
    pub(crate) operational_subscription: OperationalSubscription,
}

/// Result of `deleteOperationalSubscription`.
#[derive(SimpleObject)]
pub(crate) struct DeleteOperationalSubscriptionPayload {
    /// The deleted subscription's id.
    pub(crate) id: ID,
}

/// Listing operational subscriptions.
#[derive(Default)]
pub(crate) struct OperationalQuery;

#[Object]
impl OperationalQuery {
    /// Every operational subscription, or one receiver's.
    #[graphql(
        complexity = "crate::api::limits::bounded(crate::api::limits::OPERATIONAL_SUBSCRIPTIONS, child_complexity)"
    )]
    async fn operational_subscriptions(
        &self,
        ctx: &Context<'_>,
        receiver_id: Option<ID>,
    ) -> FieldResult<Vec<OperationalSubscription>> {
        caller(ctx)?;
        let receiver = receiver_id
            .map(|r| parse_id("receiverId", &r).map(ReceiverId))
            .transpose()?;
        let rows = api(ctx).store.operational_subscriptions(receiver).await?;
        Ok(rows
            .into_iter()
            .map(|row| OperationalSubscription { row })
            .collect())
    }
}

/// Creating and deleting operational subscriptions.
#[derive(Default)]
pub(crate) struct OperationalMutation;

#[Object]
impl OperationalMutation {
    /// Subscribes a receiver to events about the gateway itself. The
    /// receiver gets `{"type", "timestamp", "data"}` bodies, signed and
    /// retried like any delivery; events about a receiver are never sent
    /// to that receiver.
    async fn create_operational_subscription(
        &self,
        ctx: &Context<'_>,
        input: CreateOperationalSubscriptionInput,
    ) -> FieldResult<OperationalSubscriptionPayload> {
        let caller = admin(ctx)?;
        let state = api(ctx);
        let receiver = ReceiverId(parse_id("input.receiverId", &input.receiver_id)?);
        if input.event_types.is_empty() {
            return Err(
                Error::bad_input("input.eventTypes", "needs at least one event type").into(),
            );
        }
        if state.store.receiver(receiver).await?.is_none() {
            return Err(Error::NotFound {
                entity: "receiver",
                id: receiver.to_string(),
            }
            .into());
        }
        let kinds: Vec<OperationalEventType> =
            input.event_types.into_iter().map(Into::into).collect();
        let row = state
            .store
            .create_operational_subscription(receiver, &kinds, &caller.actor.name)
            .await?;
        Ok(OperationalSubscriptionPayload {
            operational_subscription: OperationalSubscription { row },
        })
    }

    /// Deletes an operational subscription.
    async fn delete_operational_subscription(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> FieldResult<DeleteOperationalSubscriptionPayload> {
        admin(ctx)?;
        let sid = parse_id("id", &id)?;
        if !api(ctx).store.delete_operational_subscription(sid).await? {
            return Err(Error::NotFound {
                entity: "operational subscription",
                id: sid.to_string(),
            }
            .into());
        }
        Ok(DeleteOperationalSubscriptionPayload { id })
    }
}
