//! `WebhookEvent`: the audit trail (one event per delivery) and its
//! queries. Sending events again is in [`super::redelivery`].

use async_graphql::{Context, ID, InputObject, Object, SimpleObject};

use super::context::{api, caller};
use super::error::{Error, FieldResult, Result};
use super::limits;
use super::scalars::{ResourceName, SubscriptionAction, id, parse_id};
use crate::envelope::{EventIds, render};
use crate::model::{DeliveryId, DeliveryStatus, ReceiverId, SubscriptionId};
use crate::store::attempts::AttemptRow;
use crate::store::deliveries::{EventFilter, EventRow};
use crate::timefmt::{format_ms, parse_rfc3339_ms};

/// The body an event's attempt sent: as recorded, or rendered again from
/// the change when the audit trail left it out because it is reproducible.
pub(crate) fn sent_body(row: &EventRow, recorded: Option<&str>) -> String {
    match recorded {
        Some(body) => body.to_string(),
        None => render(
            EventIds {
                event_id: row.id.get(),
                subscription_id: row.subscription_id.map(SubscriptionId::get),
            },
            &row.payload,
            &row.view,
        ),
    }
}

/// Checks an event status filter.
pub(crate) fn check_status(field: &str, value: Option<String>) -> Result<Option<DeliveryStatus>> {
    match value {
        None => Ok(None),
        Some(s) => s
            .trim()
            .to_ascii_lowercase()
            .parse()
            .map(Some)
            .map_err(|_| {
                let names: Vec<&str> = DeliveryStatus::ALL.iter().map(|s| s.as_str()).collect();
                Error::bad_input(
                    field,
                    format!("`{s}` is not a status (one of {})", names.join(", ")),
                )
            }),
    }
}

/// Checks a page size against the configured maximum.
pub(crate) fn page_size(ctx: &Context<'_>, first: i32) -> Result<i64> {
    let max = api(ctx).config.api.max_page_size as i64;
    let first = i64::from(first);
    if first < 1 || first > max {
        return Err(Error::bad_input(
            "first",
            format!("{first} is outside 1–{max}"),
        ));
    }
    Ok(first)
}

/// One delivery of one change to one receiver, and what happened to it.
pub(crate) struct WebhookEvent {
    row: EventRow,
}

impl WebhookEvent {
    /// Wraps a stored event.
    pub(crate) fn new(row: EventRow) -> Self {
        WebhookEvent { row }
    }
}

#[Object]
impl WebhookEvent {
    /// Id: the body's `event_id`, stable across retries.
    async fn id(&self) -> ID {
        id(self.row.id)
    }

    /// `pending`, `succeeded`, `failed`, `filtered` (a plugin dropped it) or `plugin_error`.
    async fn status(&self) -> &str {
        self.row.status.as_str()
    }

    /// When the change committed.
    async fn occurred_at(&self) -> String {
        format_ms(self.row.payload.occurred_at)
    }

    /// The body of the last attempt.
    async fn request_data(&self) -> Option<String> {
        (self.row.attempts > 0 || self.row.request_data.is_some())
            .then(|| sent_body(&self.row, self.row.request_data.as_deref()))
    }

    /// The status the receiver answered with on the last attempt.
    async fn response_status(&self) -> Option<i32> {
        self.row.response_status
    }

    /// The first bytes of the receiver's answer on the last attempt.
    async fn response_data(&self) -> Option<&str> {
        self.row.response_data.as_deref()
    }

    /// The subscription that matched (null for test pings).
    async fn subscription_id(&self) -> Option<ID> {
        self.row.subscription_id.map(id)
    }

    /// The receiver.
    async fn receiver_id(&self) -> ID {
        id(self.row.receiver_id)
    }

    /// The resource.
    async fn resource(&self) -> &str {
        &self.row.payload.resource
    }

    /// The action.
    async fn action(&self) -> &str {
        self.row.payload.action.api_name()
    }

    /// The changed row's primary key (JSON).
    async fn row_id(&self) -> &str {
        &self.row.payload.row_id
    }

    /// The database transaction.
    async fn transaction_id(&self) -> String {
        self.row.payload.transaction_id.to_string()
    }

    /// Attempts made.
    async fn attempt_count(&self) -> i32 {
        self.row.attempts
    }

    /// When the next attempt is due (pending events).
    async fn next_attempt_at(&self) -> Option<String> {
        (self.row.status == DeliveryStatus::Pending).then(|| format_ms(self.row.next_attempt_at))
    }

    /// The last error, in words.
    async fn last_error(&self) -> Option<&str> {
        self.row.last_error.as_deref()
    }

    /// Created by fan-out.
    async fn created_at(&self) -> String {
        format_ms(self.row.created_at)
    }

    /// Finished.
    async fn completed_at(&self) -> Option<String> {
        self.row.completed_at.map(format_ms)
    }

    /// Every attempt, oldest first: request, response, latency, error.
    #[graphql(complexity = "limits::bounded(limits::ATTEMPTS_PER_EVENT, child_complexity)")]
    async fn attempts(&self, ctx: &Context<'_>) -> FieldResult<Vec<WebhookEventAttempt>> {
        caller(ctx)?;
        let rows = api(ctx).store.attempts(self.row.id).await?;
        Ok(rows
            .into_iter()
            .map(|mut a| {
                // A plugin-dropped or failed attempt sent nothing; others sent this body.
                let r = &mut a.record;
                if r.request_body.is_none() && r.error_class.as_deref() != Some("plugin") {
                    r.request_body = Some(sent_body(&self.row, None));
                }
                WebhookEventAttempt::from(a)
            })
            .collect())
    }
}

/// One request sent to a receiver.
#[derive(SimpleObject, Debug, Clone)]
pub(crate) struct WebhookEventAttempt {
    /// 1-based attempt number.
    pub(crate) attempt: i32,
    /// When it started.
    pub(crate) started_at: String,
    /// How long it took, in milliseconds.
    pub(crate) duration_ms: i32,
    /// The URL posted to.
    pub(crate) request_url: String,
    /// Request headers (JSON object; credentials masked).
    pub(crate) request_headers: String,
    /// Request body.
    pub(crate) request_body: Option<String>,
    /// Response status.
    pub(crate) response_status: Option<i32>,
    /// First bytes of the response body.
    pub(crate) response_body: Option<String>,
    /// `succeeded`, `failed`, `filtered`, `plugin_error`.
    pub(crate) outcome: String,
    /// `timeout`, `connect`, `tls`, `status`, `ssrf`, `plugin`, `io`…
    pub(crate) error_class: Option<String>,
    /// The error, in words.
    pub(crate) error: Option<String>,
}

impl From<AttemptRow> for WebhookEventAttempt {
    fn from(row: AttemptRow) -> Self {
        let a = row.record;
        WebhookEventAttempt {
            attempt: a.attempt,
            started_at: format_ms(a.started_at),
            duration_ms: a.duration_ms,
            request_url: a.request_url,
            request_headers: a.request_headers,
            request_body: a.request_body,
            response_status: a.response_status,
            response_body: a.response_body,
            outcome: a.outcome,
            error_class: a.error_class,
            error: a.error,
        }
    }
}

/// Filters of `webhookEvents` (ION's `filters: { subscriptionId, status }` and more).
#[derive(InputObject, Debug, Clone, Default)]
pub(crate) struct WebhookEventFilters {
    /// Only this subscription's events.
    pub(crate) subscription_id: Option<i64>,
    /// Only this receiver's events.
    pub(crate) receiver_id: Option<i64>,
    /// `pending`, `succeeded`, `failed`, `filtered` or `plugin_error`.
    pub(crate) status: Option<String>,
    /// Only this resource.
    pub(crate) resource: Option<ResourceName>,
    /// Only this action.
    pub(crate) action: Option<SubscriptionAction>,
    /// Created at or after (RFC 3339).
    pub(crate) created_after: Option<String>,
    /// Created before (RFC 3339).
    pub(crate) created_before: Option<String>,
}

fn to_filter(f: Option<WebhookEventFilters>) -> Result<EventFilter> {
    let f = f.unwrap_or_default();
    let time = |field: &str, v: &Option<String>| -> Result<Option<i64>> {
        v.as_deref()
            .map(|s| {
                parse_rfc3339_ms(s).ok_or_else(|| {
                    Error::bad_input(field, format!("`{s}` is not an RFC 3339 time"))
                })
            })
            .transpose()
    };
    Ok(EventFilter {
        receiver_id: f.receiver_id.map(ReceiverId),
        subscription_id: f.subscription_id.map(SubscriptionId),
        status: check_status("filters.status", f.status)?,
        resource: f.resource.map(|r| r.0),
        action: f.action.map(Into::into),
        from_ms: time("filters.createdAfter", &f.created_after)?,
        to_ms: time("filters.createdBefore", &f.created_before)?,
        ..EventFilter::default()
    })
}

/// Event queries.
#[derive(Default)]
pub(crate) struct EventQuery;

#[Object]
impl EventQuery {
    /// Events, newest first, as a list (ION's shape). Page with `first` and
    /// `before` (an event id).
    #[graphql(complexity = "limits::list(first, child_complexity)")]
    async fn webhook_events(
        &self,
        ctx: &Context<'_>,
        filters: Option<WebhookEventFilters>,
        #[graphql(default = 100)] first: i32,
        before: Option<ID>,
    ) -> FieldResult<Vec<WebhookEvent>> {
        caller(ctx)?;
        let filter = to_filter(filters)?;
        let limit = page_size(ctx, first)?;
        let before = before
            .as_ref()
            .map(|b| parse_id("before", b))
            .transpose()?
            .unwrap_or(0);
        let rows = api(ctx).store.events_page(&filter, before, limit).await?;
        Ok(rows.into_iter().map(WebhookEvent::new).collect())
    }

    /// Events, newest first, as a connection with cursors and a total count.
    #[graphql(complexity = "limits::connection(first, child_complexity)")]
    async fn webhook_event_connection(
        &self,
        ctx: &Context<'_>,
        filters: Option<WebhookEventFilters>,
        first: Option<i32>,
        after: Option<String>,
    ) -> FieldResult<super::pagination::Page<WebhookEvent>> {
        caller(ctx)?;
        let filter = to_filter(filters)?;
        let limit = page_size(ctx, first.unwrap_or(limits::DEFAULT_PAGE_SIZE))?;
        let before = super::pagination::decode_cursor("after", after.as_deref())?;
        let store = &api(ctx).store;
        let mut rows = store.events_page(&filter, before, limit + 1).await?;
        let has_next = rows.len() as i64 > limit;
        rows.truncate(limit as usize);
        let total = store.event_count(&filter).await?;
        Ok(super::pagination::page(
            rows.into_iter()
                .map(|r| (r.id.get(), WebhookEvent::new(r)))
                .collect(),
            has_next,
            before > 0,
            total,
        ))
    }

    /// One event.
    async fn webhook_event(&self, ctx: &Context<'_>, id: ID) -> FieldResult<WebhookEvent> {
        caller(ctx)?;
        let eid = DeliveryId(parse_id("id", &id)?);
        let row = api(ctx).store.event(eid).await?.ok_or(Error::NotFound {
            entity: "event",
            id: eid.to_string(),
        })?;
        Ok(WebhookEvent::new(row))
    }
}
