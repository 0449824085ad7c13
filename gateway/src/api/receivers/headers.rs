//! `addHeaderToWebhookReceiver`, `removeHeaderFromWebhookReceiver`.

use async_graphql::{Context, Object};

use super::inputs::{
    AddHeaderPayload, AddHeaderToWebhookReceiverInput, RemoveHeaderFromWebhookReceiverInput,
    WebhookReceiverPayload,
};
use super::object::{WebhookHeader, WebhookReceiver};
use super::{existing, receiver_id};
use crate::api::context::{admin, api};
use crate::api::error::FieldResult;
use crate::api::scalars::parse_id;
use crate::model::validate;

/// A receiver's custom headers.
#[derive(Default)]
pub(crate) struct ReceiverHeaderMutation;

#[Object]
impl ReceiverHeaderMutation {
    /// Adds (or, with `replace`, replaces) a header sent with every delivery
    /// to this receiver. Its value is shown in full in this response only.
    async fn add_header_to_webhook_receiver(
        &self,
        ctx: &Context<'_>,
        input: AddHeaderToWebhookReceiverInput,
    ) -> FieldResult<AddHeaderPayload> {
        admin(ctx)?;
        let state = api(ctx);
        let rid = receiver_id("input.receiverId", &input.receiver_id)?;
        let (key, value) = validate::header("input", &input.key, &input.value)?;
        existing(state, rid).await?;
        let header = state
            .store
            .add_receiver_header(
                rid,
                &key,
                &state.secrets.seal(&value),
                input.replace.unwrap_or(false),
            )
            .await?;
        let row = existing(state, rid).await?;
        state.signals.receivers_changed();
        Ok(AddHeaderPayload {
            webhook_header: WebhookHeader::revealed(header, value),
            webhook_receiver: WebhookReceiver::new(row),
        })
    }

    /// Removes a custom header.
    async fn remove_header_from_webhook_receiver(
        &self,
        ctx: &Context<'_>,
        input: RemoveHeaderFromWebhookReceiverInput,
    ) -> FieldResult<WebhookReceiverPayload> {
        admin(ctx)?;
        let state = api(ctx);
        let hid = parse_id("input.id", &input.id)?;
        let rid = state.store.remove_receiver_header(hid).await?;
        let row = existing(state, rid).await?;
        state.signals.receivers_changed();
        Ok(WebhookReceiverPayload {
            webhook_receiver: WebhookReceiver::new(row),
        })
    }
}
