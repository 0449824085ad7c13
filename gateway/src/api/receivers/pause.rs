//! `pauseWebhookReceiver`, `resumeWebhookReceiver`: deliveries wait, and
//! nothing is dropped.

use async_graphql::{Context, Object};

use super::inputs::{
    PauseWebhookReceiverInput, ResumeWebhookReceiverInput, WebhookReceiverPayload,
};
use super::object::WebhookReceiver;
use super::receiver_id;
use crate::api::context::{admin, api};
use crate::api::error::FieldResult;
use crate::model::validate;

/// Holding and resuming a receiver's deliveries.
#[derive(Default)]
pub(crate) struct ReceiverPauseMutation;

#[Object]
impl ReceiverPauseMutation {
    /// Holds deliveries to a receiver; events keep queueing and nothing is dropped.
    async fn pause_webhook_receiver(
        &self,
        ctx: &Context<'_>,
        input: PauseWebhookReceiverInput,
    ) -> FieldResult<WebhookReceiverPayload> {
        let caller = admin(ctx)?;
        let state = api(ctx);
        let rid = receiver_id("input.id", &input.id)?;
        let reason = match &input.reason {
            Some(r) => validate::name("input.reason", r, 500)?,
            None => format!("paused by {}", caller.actor.name),
        };
        let row = state
            .store
            .set_receiver_paused(rid, Some(&input.etag), true, Some(&reason))
            .await?;
        state.signals.receivers_changed();
        Ok(WebhookReceiverPayload {
            webhook_receiver: WebhookReceiver::new(row),
        })
    }

    /// Resumes a receiver paused by hand or by the circuit breaker.
    async fn resume_webhook_receiver(
        &self,
        ctx: &Context<'_>,
        input: ResumeWebhookReceiverInput,
    ) -> FieldResult<WebhookReceiverPayload> {
        admin(ctx)?;
        let state = api(ctx);
        let rid = receiver_id("input.id", &input.id)?;
        let row = state
            .store
            .set_receiver_paused(rid, Some(&input.etag), false, None)
            .await?;
        state.signals.receivers_changed();
        Ok(WebhookReceiverPayload {
            webhook_receiver: WebhookReceiver::new(row),
        })
    }
}
