//! Sending events again: one (`retryWebhookEvent`), every failed one of a
//! receiver in a time range (`redeliverFailedWebhookEvents`, a job with
//! progress), and a test ping (`sendTestWebhook`).

use async_graphql::{Context, ID, InputObject, Object, SimpleObject};

use super::ApiContext;
use super::context::{admin, api, caller};
use super::error::{Error, FieldResult, Result};
use super::events::WebhookEvent;
use super::limits;
use super::scalars::{ResourceName, id, parse_id};
use crate::envelope::{Action, ChangePayload};
use crate::model::{DeliveryId, ReceiverId};
use crate::store::changes::NewChange;
use crate::store::redelivery::{RedeliveryJobRow, RedeliveryRange};
use crate::timefmt::{format_ms, parse_rfc3339_ms};

/// A bulk redelivery and its progress.
#[derive(SimpleObject, Debug, Clone)]
pub(crate) struct WebhookRedeliveryJob {
    /// Id.
    pub(crate) id: ID,
    /// Receiver.
    pub(crate) receiver_id: ID,
    /// Only events of this resource, if one was given.
    pub(crate) resource: Option<String>,
    /// Failed events found in the range.
    pub(crate) total: i32,
    /// Events made pending again so far.
    pub(crate) done: i32,
    /// `running` or `finished`.
    pub(crate) status: String,
    /// Started.
    pub(crate) created_at: String,
    /// Finished.
    pub(crate) finished_at: Option<String>,
}

impl From<RedeliveryJobRow> for WebhookRedeliveryJob {
    fn from(j: RedeliveryJobRow) -> Self {
        WebhookRedeliveryJob {
            id: id(j.id),
            receiver_id: id(j.receiver_id),
            resource: j.resource,
            total: j.total,
            done: j.done,
            status: j.status,
            created_at: format_ms(j.created_at),
            finished_at: j.finished_at.map(format_ms),
        }
    }
}

/// Input of `redeliverFailedWebhookEvents`.
#[derive(InputObject, Debug, Clone)]
pub(crate) struct RedeliverFailedWebhookEventsInput {
    /// Receiver.
    pub(crate) receiver_id: ID,
    /// Events created at or after (RFC 3339; default: the beginning).
    pub(crate) from: Option<String>,
    /// Events created before (RFC 3339; default: now).
    pub(crate) to: Option<String>,
    /// Only events of this resource (default: every resource).
    pub(crate) resource: Option<ResourceName>,
}

/// Payload carrying an event.
#[derive(SimpleObject)]
pub(crate) struct WebhookEventPayload {
    /// The event.
    pub(crate) webhook_event: WebhookEvent,
}

/// Payload carrying a redelivery job.
#[derive(SimpleObject)]
pub(crate) struct RedeliveryPayload {
    /// The job.
    pub(crate) job: WebhookRedeliveryJob,
}

/// Redelivery queries.
#[derive(Default)]
pub(crate) struct RedeliveryQuery;

#[Object]
impl RedeliveryQuery {
    /// A bulk redelivery's progress.
    async fn webhook_redelivery_job(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> FieldResult<WebhookRedeliveryJob> {
        caller(ctx)?;
        let jid = parse_id("id", &id)?;
        let row = api(ctx)
            .store
            .redelivery_job(jid)
            .await?
            .ok_or(Error::NotFound {
                entity: "redelivery job",
                id: jid.to_string(),
            })?;
        Ok(row.into())
    }
}

/// Starts a job sending every failed event in `range` again; it runs in the background and survives restarts.
pub(crate) async fn start_redelivery(
    state: &ApiContext,
    range: &RedeliveryRange,
) -> Result<RedeliveryJobRow> {
    let total = state.store.failed_count(range).await?;
    let job = state
        .store
        .insert_redelivery_job(range, i32::try_from(total).unwrap_or(i32::MAX))
        .await?;
    crate::redelivery::spawn(state.store.clone(), state.signals.clone(), job.clone());
    Ok(job)
}

/// Queues a test ping (action `test`) to a receiver, whatever its
/// subscriptions, and wakes the engine.
pub(crate) async fn send_test(
    state: &ApiContext,
    rid: ReceiverId,
    requested_by: &str,
) -> Result<DeliveryId> {
    if state.store.receiver(rid).await?.is_none() {
        return Err(Error::NotFound {
            entity: "receiver",
            id: rid.to_string(),
        });
    }
    let now = crate::store::now_ms();
    let mut payload = ChangePayload::new("TEST", Action::Test, "0", now, now);
    payload.new = Some(
        serde_json::json!({"message": "changewire test ping", "requested_by": requested_by})
            .to_string(),
    );
    let change = NewChange {
        source: "test".into(),
        source_key: None,
        table_name: None,
        payload,
    };
    let eid = state.store.insert_test_delivery(rid, &change).await?;
    state.signals.wake_delivery();
    Ok(eid)
}

/// Event mutations.
#[derive(Default)]
pub(crate) struct EventMutation;

#[Object]
impl EventMutation {
    /// Sends a finished event again, now, with a fresh retry budget (same `event_id`).
    async fn retry_webhook_event(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> FieldResult<WebhookEventPayload> {
        admin(ctx)?;
        let state = api(ctx);
        let eid = DeliveryId(parse_id("id", &id)?);
        let row = state.store.retry_delivery(eid).await?;
        state.signals.wake_delivery();
        Ok(WebhookEventPayload {
            webhook_event: WebhookEvent::new(row),
        })
    }

    /// Sends every failed event of a receiver in a time range again; follow
    /// progress with `webhookRedeliveryJob`.
    #[graphql(complexity = "limits::counted(child_complexity)")]
    async fn redeliver_failed_webhook_events(
        &self,
        ctx: &Context<'_>,
        input: RedeliverFailedWebhookEventsInput,
    ) -> FieldResult<RedeliveryPayload> {
        admin(ctx)?;
        let state = api(ctx);
        let rid = ReceiverId(parse_id("input.receiverId", &input.receiver_id)?);
        if state.store.receiver(rid).await?.is_none() {
            return Err(Error::NotFound {
                entity: "receiver",
                id: rid.to_string(),
            }
            .into());
        }
        let parse = |field: &str, v: &Option<String>, default: i64| -> Result<i64> {
            match v {
                None => Ok(default),
                Some(s) => parse_rfc3339_ms(s).ok_or_else(|| {
                    Error::bad_input(field, format!("`{s}` is not an RFC 3339 time"))
                }),
            }
        };
        let from = parse("input.from", &input.from, 0)?;
        let to = parse("input.to", &input.to, crate::store::now_ms() + 1)?;
        if from >= to {
            return Err(Error::bad_input("input.to", "must be after `from`").into());
        }
        let resource = match input.resource {
            Some(r) if state.config.resources.get(&r.0).is_none() => {
                return Err(Error::bad_input(
                    "input.resource",
                    format!("`{}` is not a configured resource", r.0),
                )
                .into());
            }
            other => other.map(|r| r.0),
        };
        let range = RedeliveryRange {
            receiver_id: rid,
            from_ms: from,
            to_ms: to,
            resource,
        };
        let job = start_redelivery(state, &range).await?;
        Ok(RedeliveryPayload { job: job.into() })
    }

    /// Sends a test ping (action `test`) to a receiver, whatever its subscriptions.
    async fn send_test_webhook(
        &self,
        ctx: &Context<'_>,
        receiver_id: ID,
    ) -> FieldResult<WebhookEventPayload> {
        let caller = admin(ctx)?;
        let state = api(ctx);
        let rid = ReceiverId(parse_id("receiverId", &receiver_id)?);
        let eid = send_test(state, rid, &caller.actor.name).await?;
        let row = state.store.event(eid).await?.ok_or(Error::NotFound {
            entity: "event",
            id: eid.to_string(),
        })?;
        Ok(WebhookEventPayload {
            webhook_event: WebhookEvent::new(row),
        })
    }
}
