//! `rotateWebhookReceiverSecret`: a new secret, shown once, with the old one
//! signing alongside it for an overlap.

use async_graphql::{Context, Object};

use super::inputs::{RotateSecretPayload, RotateWebhookReceiverSecretInput};
use super::object::WebhookReceiver;
use super::{existing, receiver_id};
use crate::api::ApiContext;
use crate::api::context::{admin, api};
use crate::api::error::{FieldResult, Result};
use crate::model::ReceiverId;
use crate::model::validate;
use crate::store::receivers::ReceiverRow;
use crate::timefmt::format_ms;
use changewire_core::Secret;

/// The longest overlap of a rotation: 30 days.
pub(crate) const MAX_OVERLAP_SECS: i64 = 30 * 86_400;
/// The overlap when none is given: a day.
pub(crate) const DEFAULT_OVERLAP_SECS: i32 = 86_400;

/// A rotation done: the receiver, its new secret (to show once), and when
/// the old secret stops signing (`None`: at once).
pub(crate) struct Rotated {
    /// The receiver after the rotation.
    pub(crate) row: ReceiverRow,
    /// The new secret, in full.
    pub(crate) secret: Secret,
    /// When the previous secret stops signing (ms).
    pub(crate) previous_expires_at: Option<i64>,
}

/// Issues a new secret for a receiver, the old one signing alongside it for
/// `overlap_secs` (0: replaced at once), and tells the engine.
pub(crate) async fn rotate(
    state: &ApiContext,
    rid: ReceiverId,
    etag: &str,
    overlap_secs: i64,
) -> Result<Rotated> {
    let current = existing(state, rid).await?;
    let secret = crate::secrets::generate_receiver_secret();
    let expires = crate::store::now_ms() + overlap_secs * 1000;
    let previous = (overlap_secs > 0).then_some((current.shared_secret.as_str(), expires));
    let row = state
        .store
        .rotate_receiver_secret(
            rid,
            etag,
            &state.secrets.seal(secret.expose()),
            &state.secrets.new_signing_key(),
            previous,
        )
        .await?;
    state.signals.receivers_changed();
    Ok(Rotated {
        row,
        secret,
        previous_expires_at: previous.map(|(_, at)| at),
    })
}

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
        let Rotated {
            row,
            secret,
            previous_expires_at,
        } = rotate(state, rid, &input.etag, overlap).await?;
        Ok(RotateSecretPayload {
            previous_secret_expires_at: previous_expires_at.map(format_ms),
            webhook_receiver: WebhookReceiver {
                row,
                revealed_secret: Some(secret.expose().to_string()),
                revealed_headers: Vec::new(),
            },
        })
    }
}
