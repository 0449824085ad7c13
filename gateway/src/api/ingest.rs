//! `publishEvent` and `POST /v1/events`: events from producers that are not a database.

use async_graphql::{Context, InputObject, Json, Object, SimpleObject};
use serde_json::value::RawValue;

use super::context::{admin, api};
use super::error::{Error, FieldResult, Result};
use super::scalars::{ResourceName, SubscriptionAction};
use crate::fanout::{self, PublishedEvent};

/// Input of `publishEvent`.
#[derive(InputObject, Debug, Clone)]
pub(crate) struct PublishEventInput {
    /// The resource.
    pub(crate) resource: ResourceName,
    /// The action.
    pub(crate) action: SubscriptionAction,
    /// The object's id (a number or a string).
    pub(crate) id: Json<serde_json::Value>,
    /// Its etag (default: a hash of `new`).
    pub(crate) etag: Option<String>,
    /// Changed fields before (an object; null on CREATE).
    pub(crate) old: Option<Json<serde_json::Value>>,
    /// Changed fields after (an object; null on DELETE).
    pub(crate) new: Option<Json<serde_json::Value>>,
    /// The full object, for subscriptions with `includeFullRecord`.
    pub(crate) record: Option<Json<serde_json::Value>>,
    /// Groups events of one business transaction (a decimal integer).
    pub(crate) transaction_id: Option<String>,
    /// A second event with the same key is ignored.
    pub(crate) idempotency_key: Option<String>,
}

/// Result of publishing.
#[derive(SimpleObject, Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PublishEventPayload {
    /// The stored change's id (null when the idempotency key was seen before).
    pub(crate) change_id: Option<String>,
    /// Deliveries created (one per matching subscription).
    pub(crate) deliveries: i32,
    /// Whether the idempotency key was seen before (nothing was stored).
    pub(crate) duplicate: bool,
}

fn raw(field: &'static str, v: &serde_json::Value) -> Result<Box<RawValue>> {
    RawValue::from_string(v.to_string()).map_err(|e| Error::bad_input(field, e.to_string()))
}

/// Parses a transaction id.
pub(crate) fn parse_transaction_id(field: &str, text: Option<&str>) -> Result<Option<i64>> {
    text.map(|t| {
        t.trim()
            .parse::<i64>()
            .map_err(|_| Error::bad_input(field, format!("`{t}` is not a 64-bit integer")))
    })
    .transpose()
}

/// Publishing errors map onto API errors.
pub(crate) fn map_fanout_error(err: fanout::Error, prefix: &str) -> Error {
    match err {
        fanout::Error::BadInput { field, reason } => {
            Error::bad_input(format!("{prefix}{field}"), reason)
        }
        fanout::Error::Store(e) => e.into(),
        fanout::Error::Failed(message) => Error::Internal(message),
        fanout::Error::Unavailable => Error::Internal("the gateway is shutting down".into()),
    }
}

/// Publishes one event; its deliveries go straight to delivery.
pub(crate) async fn publish(
    state: &super::context::ApiContext,
    event: &PublishedEvent<'_>,
    prefix: &str,
) -> Result<PublishEventPayload> {
    let published = fanout::publish(&state.publisher, &state.config.resources, event)
        .await
        .map_err(|e| map_fanout_error(e, prefix))?;
    let stored = u64::from(published.change_id.is_some());
    metrics::counter!("changewire_changes_captured_total", "source" => "api").increment(stored);
    metrics::counter!("changewire_deliveries_created_total").increment(published.deliveries);
    Ok(PublishEventPayload {
        change_id: published.change_id.map(|id| id.to_string()),
        deliveries: i32::try_from(published.deliveries).unwrap_or(i32::MAX),
        duplicate: published.change_id.is_none(),
    })
}

/// Most events one `POST /v1/events` request may carry.
pub(crate) const MAX_EVENTS_PER_REQUEST: usize = 1000;

/// Publishes a list of events in one transaction: all are checked first
/// (a bad one refuses the request, naming `[index].field`, and stores
/// nothing), then stored and fanned out together. Answers per event, in order.
pub(crate) async fn publish_many(
    state: &super::context::ApiContext,
    events: &[PublishedEvent<'_>],
) -> Result<Vec<PublishEventPayload>> {
    if events.len() > MAX_EVENTS_PER_REQUEST {
        return Err(Error::bad_input(
            "body",
            format!(
                "{} events in one request; at most {MAX_EVENTS_PER_REQUEST}",
                events.len()
            ),
        ));
    }
    let changes = events
        .iter()
        .enumerate()
        .map(|(i, e)| {
            fanout::to_change(&state.config.resources, e)
                .map_err(|err| map_fanout_error(err, &format!("[{i}].")))
        })
        .collect::<Result<Vec<_>>>()?;
    let outcome = fanout::fan_out(
        &state.store,
        &state.signals,
        state.handoff.as_ref(),
        &state.traces,
        &changes,
        None,
    )
    .await?;
    metrics::counter!("changewire_changes_captured_total", "source" => "api")
        .increment(outcome.changes);
    metrics::counter!("changewire_deliveries_created_total").increment(outcome.deliveries);
    Ok(outcome
        .per_change
        .iter()
        .map(|stored| PublishEventPayload {
            change_id: stored.map(|(id, _)| id.to_string()),
            deliveries: stored.map_or(0, |(_, n)| i32::try_from(n).unwrap_or(i32::MAX)),
            duplicate: stored.is_none(),
        })
        .collect())
}

/// Ingest mutations.
#[derive(Default)]
pub(crate) struct IngestMutation;

#[Object]
impl IngestMutation {
    /// Publishes an event as if a row had changed: it fans out to every
    /// matching active subscription.
    async fn publish_event(
        &self,
        ctx: &Context<'_>,
        input: PublishEventInput,
    ) -> FieldResult<PublishEventPayload> {
        admin(ctx)?;
        let state = api(ctx);
        let id = raw("input.id", &input.id.0)?;
        let old = input
            .old
            .as_ref()
            .map(|v| raw("input.old", &v.0))
            .transpose()?;
        let new = input
            .new
            .as_ref()
            .map(|v| raw("input.new", &v.0))
            .transpose()?;
        let record = input
            .record
            .as_ref()
            .map(|v| raw("input.record", &v.0))
            .transpose()?;
        let event = PublishedEvent {
            resource: &input.resource.0,
            action: crate::envelope::Action::from(input.action).api_name(),
            id: &id,
            etag: input.etag.as_deref(),
            old: old.as_deref(),
            new: new.as_deref(),
            record: record.as_deref(),
            transaction_id: parse_transaction_id(
                "input.transactionId",
                input.transaction_id.as_deref(),
            )?,
            idempotency_key: input.idempotency_key.as_deref(),
            occurred_at: None,
        };
        Ok(publish(state, &event, "input.").await?)
    }
}
