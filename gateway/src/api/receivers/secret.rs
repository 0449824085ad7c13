//! `rotateWebhookReceiverSecret`: a new secret, shown once, with the old one
//! signing alongside it for an overlap.

use async_graphql::{Context, Object};

use super::inputs::{RotateSecretPayload, RotateWebhookReceiverSecretInput};
use super::object::WebhookReceiver;
use super::{existing, receiver_id};
use crate::api::context::{admin, api};
use crate::api::error::FieldResult;
use crate::model::validate;
use crate::timefmt::format_ms;

/// The longest overlap of a rotation: 30 days.
const MAX_OVERLAP_SECS: i64 = 30 * 86_400;
/// The overlap when none is given: a day.
const DEFAULT_OVERLAP_SECS: i32 = 86_400;

/// A receiver's shared secret.
#[derive(Default)]
pub(crate) struct ReceiverSecretMutation;

#[Object]
impl ReceiverSecretMutation {
    /// Issues a new secret (returned in full, once). The old secret keeps
    /// signing alongside it (`x-ion-signature`, with the new one in
    /// `x-ion-signature-next`; both in `webhook-signature`) for the overlap.
    async fn rotate_webhook_receiver_secret(
        &self,
        ctx: &Context<'_>,
        input: RotateWebhookReceiverSecretInput,
    ) -> FieldResult<RotateSecretPayload> {
        admin(ctx)?;
        let state = api(ctx);
        let rid = receiver_id("input.id", &input.id)?;
        let overlap = validate::range(
            "input.overlapSeconds",
            i64::from(input.overlap_seconds.unwrap_or(DEFAULT_OVERLAP_SECS)),
            0,
            MAX_OVERLAP_SECS,
        )?;
        let current = existing(state, rid).await?;
        let secret = crate::secrets::generate_receiver_secret();
        let expires = crate::store::now_ms() + overlap * 1000;
        let previous = (overlap > 0).then_some((current.shared_secret.as_str(), expires));
        let row = state
            .store
            .rotate_receiver_secret(
                rid,
                &input.etag,
                &state.secrets.seal(secret.expose()),
                previous,
            )
            .await?;
        state.signals.receivers_changed();
        Ok(RotateSecretPayload {
            previous_secret_expires_at: previous.map(|(_, at)| format_ms(at)),
            webhook_receiver: WebhookReceiver {
                row,
                revealed_secret: Some(secret.expose().to_string()),
                revealed_headers: Vec::new(),
            },
        })
    }
}
