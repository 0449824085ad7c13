//! Receivers in the API: GraphQL in, the model's [`ReceiverSpec`] (which
//! owns defaults and rules) and the store, GraphQL out. One file per
//! concern: the object ([`object`]), inputs and their translation
//! ([`inputs`]), create/update/delete, headers, the secret, pause.
//!
//! [`ReceiverSpec`]: crate::model::ReceiverSpec

mod create_update;
mod egress;
mod headers;
mod inputs;
pub(crate) mod object;
mod pause;
pub(crate) mod secret;

use async_graphql::{Context, ID, Object};

pub(crate) use create_update::ReceiverMutation;
pub(crate) use headers::ReceiverHeaderMutation;
pub(crate) use object::WebhookReceiver;
pub(crate) use pause::ReceiverPauseMutation;
pub(crate) use secret::ReceiverSecretMutation;

use super::context::{ApiContext, api, caller};
use super::error::{Error, FieldResult, Result};
use super::limits;
use super::scalars::parse_id;
use crate::model::{ReceiverId, ReceiverRules};
use crate::store::receivers::ReceiverRow;

/// The receiver an input names, or NOT_FOUND.
async fn existing(state: &ApiContext, id: ReceiverId) -> Result<ReceiverRow> {
    state.store.receiver(id).await?.ok_or(Error::NotFound {
        entity: "receiver",
        id: id.to_string(),
    })
}

/// A receiver id given in `field`.
fn receiver_id(field: &str, id: &ID) -> Result<ReceiverId> {
    parse_id(field, id).map(ReceiverId)
}

/// The rules of this gateway's configuration.
pub(crate) fn rules(state: &ApiContext) -> ReceiverRules<'_> {
    ReceiverRules {
        policy: &state.policy,
        default_timeout: state.config.delivery.default_timeout,
        max_timeout: state.config.delivery.max_timeout,
        secrets: &state.secrets,
    }
}

/// Receiver queries.
#[derive(Default)]
pub(crate) struct ReceiverQuery;

#[Object]
impl ReceiverQuery {
    /// Receivers, oldest first.
    #[graphql(complexity = "limits::connection(first, child_complexity)")]
    async fn webhook_receivers(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> FieldResult<super::pagination::Page<WebhookReceiver>> {
        caller(ctx)?;
        let store = &api(ctx).store;
        let limit = super::events::page_size(ctx, first.unwrap_or(limits::DEFAULT_PAGE_SIZE))?;
        let after_id = super::pagination::decode_cursor("after", after.as_deref())?;
        let mut rows = store.receivers_page(after_id, limit + 1).await?;
        let has_next = rows.len() as i64 > limit;
        rows.truncate(limit as usize);
        let total = store.receiver_count().await?;
        Ok(super::pagination::page(
            rows.into_iter()
                .map(|r| (r.id.get(), WebhookReceiver::new(r)))
                .collect(),
            has_next,
            after_id > 0,
            total,
        ))
    }

    /// One receiver.
    async fn webhook_receiver(&self, ctx: &Context<'_>, id: ID) -> FieldResult<WebhookReceiver> {
        caller(ctx)?;
        let row = existing(api(ctx), receiver_id("id", &id)?).await?;
        Ok(WebhookReceiver::new(row))
    }
}
