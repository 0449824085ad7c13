//! `WebhookSubscription`: one (resource, action) of one receiver.

use async_graphql::{Context, ID, InputObject, Object, SimpleObject};

use super::context::{admin, api, caller};
use super::error::{Error, FieldResult, Result};
use super::events::WebhookEvent;
use super::limits;
use super::receivers::object::WebhookReceiver;
use super::scalars::{CreatedBy, ResourceName, SubscriptionAction, id, parse_id};
use crate::model::{ReceiverId, SubscriptionId, SubscriptionSpec};
use crate::store::deliveries::EventFilter;
use crate::store::subscriptions::{SubscriptionFilter, SubscriptionRow};
use crate::timefmt::format_ms;

/// A receiver's subscription to one (resource, action).
pub(crate) struct WebhookSubscription {
    row: SubscriptionRow,
}

impl WebhookSubscription {
    /// Wraps a stored subscription.
    pub(crate) fn new(row: SubscriptionRow) -> Self {
        WebhookSubscription { row }
    }
}

#[Object]
impl WebhookSubscription {
    /// Id.
    async fn id(&self) -> ID {
        id(self.row.id)
    }

    /// Tag for optimistic concurrency.
    #[graphql(name = "_etag")]
    async fn etag(&self) -> &str {
        &self.row.etag
    }

    /// The resource.
    async fn resource(&self) -> ResourceName {
        ResourceName(self.row.resource.clone())
    }

    /// The action.
    async fn action(&self) -> Option<SubscriptionAction> {
        SubscriptionAction::of(self.row.action)
    }

    /// Whether it fires.
    async fn active(&self) -> bool {
        self.row.active
    }

    /// Adds the full current row as `data.record` beside the diff.
    async fn include_full_record(&self) -> bool {
        self.row.include_full_record
    }

    /// Foreign-key columns expanded into `data.related`.
    async fn expand(&self) -> Vec<String> {
        serde_json::from_str(&self.row.expand).unwrap_or_default()
    }

    /// The receiver's id.
    async fn receiver_id(&self) -> ID {
        id(self.row.receiver_id)
    }

    /// The receiver.
    async fn receiver(&self, ctx: &Context<'_>) -> FieldResult<WebhookReceiver> {
        caller(ctx)?;
        let row = api(ctx)
            .store
            .receiver(self.row.receiver_id)
            .await?
            .ok_or(Error::NotFound {
                entity: "receiver",
                id: self.row.receiver_id.to_string(),
            })?;
        Ok(WebhookReceiver::new(row))
    }

    /// Recent events of this subscription, newest first.
    #[graphql(complexity = "limits::list(first, child_complexity)")]
    async fn events(
        &self,
        ctx: &Context<'_>,
        status: Option<String>,
        #[graphql(default = 50)] first: i32,
    ) -> FieldResult<Vec<WebhookEvent>> {
        caller(ctx)?;
        let status = super::events::check_status("status", status)?;
        let limit = super::events::page_size(ctx, first)?;
        let filter = EventFilter {
            subscription_id: Some(self.row.id),
            status,
            ..Default::default()
        };
        let rows = api(ctx).store.events_page(&filter, 0, limit).await?;
        Ok(rows.into_iter().map(WebhookEvent::new).collect())
    }

    /// Who created it.
    async fn created_by(&self) -> Option<CreatedBy> {
        Some(CreatedBy {
            id: ID(self.row.created_by_id.clone()?),
            name: self.row.created_by_name.clone().unwrap_or_default(),
        })
    }

    /// Created.
    async fn created_at(&self) -> String {
        format_ms(self.row.created_at)
    }

    /// Last changed.
    async fn updated_at(&self) -> String {
        format_ms(self.row.updated_at)
    }
}

/// Input of `createWebhookSubscription`.
#[derive(InputObject, Debug, Clone)]
pub(crate) struct CreateWebhookSubscriptionInput {
    /// The receiver (a string or a number).
    pub(crate) receiver_id: ID,
    /// The resource.
    pub(crate) resource: ResourceName,
    /// The action.
    pub(crate) action: SubscriptionAction,
    /// Whether it fires (default true).
    pub(crate) active: Option<bool>,
    /// Add the full current row as `data.record` (default false).
    pub(crate) include_full_record: Option<bool>,
    /// Foreign-key columns to expand into `data.related` (captured tables only).
    pub(crate) expand: Option<Vec<String>>,
}

/// Input of `updateWebhookSubscription`.
#[derive(InputObject, Debug, Clone)]
pub(crate) struct UpdateWebhookSubscriptionInput {
    /// Id.
    pub(crate) id: ID,
    /// The `_etag` last read.
    pub(crate) etag: String,
    /// Whether it fires.
    pub(crate) active: Option<bool>,
    /// Full row.
    pub(crate) include_full_record: Option<bool>,
    /// Expansions.
    pub(crate) expand: Option<Vec<String>>,
}

/// Input of `deleteWebhookSubscription`.
#[derive(InputObject, Debug, Clone)]
pub(crate) struct DeleteWebhookSubscriptionInput {
    /// Id.
    pub(crate) id: ID,
    /// The `_etag` last read.
    pub(crate) etag: String,
}

/// Filters of `webhookSubscriptions`.
#[derive(InputObject, Debug, Clone, Default)]
pub(crate) struct WebhookSubscriptionFilters {
    /// Only this receiver's.
    pub(crate) receiver_id: Option<ID>,
    /// Only this resource.
    pub(crate) resource: Option<ResourceName>,
    /// Only this action.
    pub(crate) action: Option<SubscriptionAction>,
    /// Only active (or inactive) ones.
    pub(crate) active: Option<bool>,
}

/// Payload carrying a subscription.
#[derive(SimpleObject)]
pub(crate) struct WebhookSubscriptionPayload {
    /// The subscription.
    pub(crate) webhook_subscription: WebhookSubscription,
}

/// Payload of `deleteWebhookSubscription`.
#[derive(SimpleObject)]
pub(crate) struct DeleteWebhookSubscriptionPayload {
    /// The deleted subscription's id.
    pub(crate) id: ID,
}

fn subscription_id(field: &str, id: &ID) -> Result<SubscriptionId> {
    parse_id(field, id).map(SubscriptionId)
}

/// Subscription queries.
#[derive(Default)]
pub(crate) struct SubscriptionQuery;

#[Object]
impl SubscriptionQuery {
    /// Subscriptions, oldest first.
    #[graphql(complexity = "limits::connection(first, child_complexity)")]
    async fn webhook_subscriptions(
        &self,
        ctx: &Context<'_>,
        filters: Option<WebhookSubscriptionFilters>,
        first: Option<i32>,
        after: Option<String>,
    ) -> FieldResult<super::pagination::Page<WebhookSubscription>> {
        caller(ctx)?;
        let f = filters.unwrap_or_default();
        let filter = SubscriptionFilter {
            receiver_id: f
                .receiver_id
                .as_ref()
                .map(|r| parse_id("filters.receiverId", r).map(ReceiverId))
                .transpose()?,
            resource: f.resource.map(|r| r.0),
            action: f.action.map(Into::into),
            active: f.active,
        };
        let store = &api(ctx).store;
        let limit = super::events::page_size(ctx, first.unwrap_or(limits::DEFAULT_PAGE_SIZE))?;
        let after_id = super::pagination::decode_cursor("after", after.as_deref())?;
        let mut rows = store
            .subscriptions_page(&filter, after_id, limit + 1)
            .await?;
        let has_next = rows.len() as i64 > limit;
        rows.truncate(limit as usize);
        let total = store.subscription_count(&filter).await?;
        Ok(super::pagination::page(
            rows.into_iter()
                .map(|r| (r.id.get(), WebhookSubscription::new(r)))
                .collect(),
            has_next,
            after_id > 0,
            total,
        ))
    }

    /// One subscription.
    async fn webhook_subscription(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> FieldResult<WebhookSubscription> {
        caller(ctx)?;
        let sid = subscription_id("id", &id)?;
        let row = api(ctx)
            .store
            .subscription(sid)
            .await?
            .ok_or(Error::NotFound {
                entity: "subscription",
                id: sid.to_string(),
            })?;
        Ok(WebhookSubscription::new(row))
    }
}

/// Subscription mutations.
#[derive(Default)]
pub(crate) struct SubscriptionMutation;

#[Object]
impl SubscriptionMutation {
    /// Subscribes a receiver to a (resource, action).
    async fn create_webhook_subscription(
        &self,
        ctx: &Context<'_>,
        input: CreateWebhookSubscriptionInput,
    ) -> FieldResult<WebhookSubscriptionPayload> {
        let caller = admin(ctx)?;
        let state = api(ctx);
        let receiver_id = ReceiverId(parse_id("input.receiverId", &input.receiver_id)?);
        let spec = SubscriptionSpec {
            active: input.active,
            include_full_record: input.include_full_record,
            expand: input.expand,
        };
        let new = spec
            .create(
                receiver_id,
                &input.resource.0,
                input.action.into(),
                &state.config.resources,
            )
            .map_err(|e| e.under("input"))?;
        if state.store.receiver(receiver_id).await?.is_none() {
            return Err(Error::bad_input(
                "input.receiverId",
                format!("receiver {receiver_id} does not exist"),
            )
            .into());
        }
        let row = state.store.insert_subscription(&new, &caller.actor).await?;
        state.signals.receivers_changed();
        Ok(WebhookSubscriptionPayload {
            webhook_subscription: WebhookSubscription::new(row),
        })
    }

    /// Changes a subscription; `etag` must be its current `_etag`.
    async fn update_webhook_subscription(
        &self,
        ctx: &Context<'_>,
        input: UpdateWebhookSubscriptionInput,
    ) -> FieldResult<WebhookSubscriptionPayload> {
        admin(ctx)?;
        let state = api(ctx);
        let sid = subscription_id("input.id", &input.id)?;
        let current = state
            .store
            .subscription(sid)
            .await?
            .ok_or(Error::NotFound {
                entity: "subscription",
                id: sid.to_string(),
            })?;
        let spec = SubscriptionSpec {
            active: input.active,
            include_full_record: input.include_full_record,
            expand: input.expand.clone(),
        };
        let settings = spec
            .update(
                &current.resource,
                &current.settings(),
                &state.config.resources,
            )
            .map_err(|e| e.under("input"))?;
        let row = state
            .store
            .update_subscription(sid, &input.etag, &settings)
            .await?;
        state.signals.receivers_changed();
        Ok(WebhookSubscriptionPayload {
            webhook_subscription: WebhookSubscription::new(row),
        })
    }

    /// Deletes a subscription (its past events stay).
    async fn delete_webhook_subscription(
        &self,
        ctx: &Context<'_>,
        input: DeleteWebhookSubscriptionInput,
    ) -> FieldResult<DeleteWebhookSubscriptionPayload> {
        admin(ctx)?;
        let state = api(ctx);
        let sid = subscription_id("input.id", &input.id)?;
        state.store.delete_subscription(sid, &input.etag).await?;
        state.signals.receivers_changed();
        Ok(DeleteWebhookSubscriptionPayload { id: id(sid) })
    }
}
