//! `createWebhookReceiver`, `updateWebhookReceiver`, `deleteWebhookReceiver`.

use async_graphql::{Context, Object};

use super::inputs::{
    CreateWebhookReceiverInput, DeleteWebhookReceiverInput, DeleteWebhookReceiverPayload,
    UpdateWebhookReceiverInput, WebhookReceiverPayload,
};
use super::object::WebhookReceiver;
use super::{existing, receiver_id, rules};
use crate::api::context::{admin, api};
use crate::api::error::FieldResult;
use crate::api::scalars::id;

/// Creating, changing and deleting receivers.
#[derive(Default)]
pub(crate) struct ReceiverMutation;

#[Object]
impl ReceiverMutation {
    /// Registers a receiver. The response carries `sharedSecret` in full, once.
    async fn create_webhook_receiver(
        &self,
        ctx: &Context<'_>,
        input: CreateWebhookReceiverInput,
    ) -> FieldResult<WebhookReceiverPayload> {
        let caller = admin(ctx)?;
        let state = api(ctx);
        let given_headers: Vec<(String, String)> = input
            .headers
            .iter()
            .flatten()
            .map(|h| (h.key.trim().to_string(), h.value.clone()))
            .collect();
        let new = input
            .spec()
            .create(&rules(state))
            .map_err(|e| e.under("input"))?;
        let secret = crate::secrets::generate_receiver_secret();
        let row = state
            .store
            .create_receiver(&new, &state.secrets.seal(secret.expose()), &caller.actor)
            .await?;
        state.signals.receivers_changed();
        Ok(WebhookReceiverPayload {
            webhook_receiver: WebhookReceiver {
                row,
                revealed_secret: Some(secret.expose().to_string()),
                revealed_headers: given_headers,
            },
        })
    }

    /// Changes a receiver; `etag` must be its current `_etag`.
    async fn update_webhook_receiver(
        &self,
        ctx: &Context<'_>,
        input: UpdateWebhookReceiverInput,
    ) -> FieldResult<WebhookReceiverPayload> {
        admin(ctx)?;
        let state = api(ctx);
        let rid = receiver_id("input.id", &input.id)?;
        let current = existing(state, rid).await?;
        let settings = input
            .spec()
            .update(&current.settings, &rules(state))
            .map_err(|e| e.under("input"))?;
        let row = state
            .store
            .update_receiver(rid, &input.etag, &settings)
            .await?;
        state.signals.receivers_changed();
        Ok(WebhookReceiverPayload {
            webhook_receiver: WebhookReceiver::new(row),
        })
    }

    /// Deletes a receiver with its subscriptions, headers, plugin and events.
    async fn delete_webhook_receiver(
        &self,
        ctx: &Context<'_>,
        input: DeleteWebhookReceiverInput,
    ) -> FieldResult<DeleteWebhookReceiverPayload> {
        admin(ctx)?;
        let state = api(ctx);
        let rid = receiver_id("input.id", &input.id)?;
        state.store.delete_receiver(rid, &input.etag).await?;
        state.signals.receivers_changed();
        Ok(DeleteWebhookReceiverPayload { id: id(rid) })
    }
}
