//! Events: the audit trail, filtered and live; one event with its row
//! change, the body and headers sent and every attempt; and Retry.

use axum::extract::{Form, Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

use super::access;
use super::diff::diff;
use super::error::Error;
use super::layout::{self, Nav};
use super::session::{CsrfForm, Session};
use super::time::when;
use crate::api::ApiContext;
use crate::api::events::sent_body;
use crate::envelope::Action;
use crate::model::{DeliveryId, DeliveryStatus, ReceiverId};
use crate::store::attempts::AttemptRow;
use crate::store::deliveries::{EventFilter, EventRow};
use crate::store::now_ms;
use crate::timefmt::{format_ms, parse_rfc3339_ms};

/// Events per page.
const PAGE: i64 = 50;

/// The events page's filters, as the form sends them (empty means "any").
#[derive(Debug, Default, Clone, Deserialize)]
pub(crate) struct EventParams {
    #[serde(default)]
    receiver: String,
    #[serde(default)]
    resource: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    status: String,
    /// An event id or a row id.
    #[serde(default)]
    find: String,
    /// Created at or after (UTC, `YYYY-MM-DDTHH:MM` or RFC 3339).
    #[serde(default)]
    from: String,
    /// Created before.
    #[serde(default)]
    to: String,
    /// Keyset: events older than this id.
    before: Option<i64>,
    /// Keyset: events newer than this id (live updates).
    after: Option<i64>,
}

pub(crate) fn utc_ms(field: &'static str, value: &str) -> Result<Option<i64>, Error> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    let full = match value.len() {
        16 => format!("{value}:00Z"),
        19 => format!("{value}Z"),
        _ => value.to_string(),
    };
    parse_rfc3339_ms(&full).map(Some).ok_or_else(|| {
        Error::bad_input(
            field,
            format!("`{value}` is not a UTC time such as 2026-12-06T17:00"),
        )
    })
}

impl EventParams {
    /// The store filter these parameters ask for, within what `session` may see.
    fn filter(&self, session: &Session) -> Result<EventFilter, Error> {
        let receiver = match self.receiver.trim() {
            "" => None,
            id => Some(id.parse::<ReceiverId>().map_err(|_| {
                Error::bad_input("receiver", format!("`{id}` is not a receiver id"))
            })?),
        };
        if let Some(id) = receiver {
            session.check_receiver(id)?;
        }
        let action = match self.action.trim() {
            "" => None,
            a => Some(Action::parse(&a.to_ascii_lowercase()).ok_or_else(|| {
                Error::bad_input(
                    "action",
                    format!("`{a}` is not create, update, delete or test"),
                )
            })?),
        };
        let status = match self.status.trim() {
            "" => None,
            s => Some(
                s.parse::<DeliveryStatus>()
                    .map_err(|e| Error::bad_input("status", e.to_string()))?,
            ),
        };
        let find = self.find.trim();
        Ok(EventFilter {
            receiver_id: session.receiver.or(receiver),
            status,
            resource: Some(self.resource.trim().to_string()).filter(|r| !r.is_empty()),
            action,
            from_ms: utc_ms("from", &self.from)?,
            to_ms: utc_ms("to", &self.to)?,
            row_id: (!find.is_empty()).then(|| find.to_string()),
            newer_than: self.after.map(DeliveryId),
            ..EventFilter::default()
        })
    }

    /// The query string of these filters (without the keyset).
    fn query(&self) -> String {
        let pairs = [
            ("receiver", &self.receiver),
            ("resource", &self.resource),
            ("action", &self.action),
            ("status", &self.status),
            ("find", &self.find),
            ("from", &self.from),
            ("to", &self.to),
        ];
        let mut out = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in pairs {
            if !v.trim().is_empty() {
                out.append_pair(k, v.trim());
            }
        }
        out.finish()
    }
}

fn status_badge(status: DeliveryStatus) -> Markup {
    let class = match status {
        DeliveryStatus::Succeeded => "good",
        DeliveryStatus::Pending => "warn",
        DeliveryStatus::Filtered => "muted",
        _ => "bad",
    };
    html! { span class={ "state " (class) } { (status.as_str()) } }
}

/// One row of the events table.
fn event_row(e: &EventRow, now: i64) -> Markup {
    html! {
        tr data-event-id=(e.id) {
            td { a href={ "/console/events/" (e.id) } { (e.id) } }
            td { (when(e.created_at, now)) }
            td { a href={ "/console/receivers/" (e.receiver_id) } { (e.receiver_id) } }
            td { (e.payload.resource) }
            td { (e.payload.action.api_name()) }
            td { (e.payload.row_id) }
            td { (status_badge(e.status)) }
            td { (e.attempts) }
            td class=[last_result_failed(e).then_some("error-text")] {
                @if let Some(s) = e.last_status { "HTTP " (s) " " } (e.last_error.as_deref().unwrap_or(""))
            }
        }
    }
}

/// Whether an event's last result reads as a failure (shown in red): it
/// failed for good, or its last attempt left an error. A 2xx with no error
/// is a success, whatever the status.
fn last_result_failed(e: &EventRow) -> bool {
    matches!(
        e.status,
        DeliveryStatus::Failed | DeliveryStatus::PluginError
    ) || e.last_error.is_some()
}

/// A filter: its label above its control, kept together in the grid.
pub(crate) fn field(id: &str, label: &str, control: Markup) -> Markup {
    html! {
        div.field {
            label for=(id) { (label) }
            (control)
        }
    }
}

fn select(name: &str, label: &str, current: &str, options: &[&str]) -> Markup {
    field(
        name,
        label,
        html! {
            select id=(name) name=(name) {
                option value="" { "any" }
                @for o in options {
                    option value=(o) selected[current.eq_ignore_ascii_case(o)] { (o) }
                }
            }
        },
    )
}

/// `GET /console/events`.
pub(crate) async fn list(
    State(api): State<ApiContext>,
    session: Session,
    Query(params): Query<EventParams>,
) -> Result<Response, Error> {
    let mut filter = params.filter(&session)?;
    // An event id goes straight to that event.
    if let Ok(id) = params.find.trim().parse::<i64>() {
        match access::event(&api, &session, id).await {
            Ok(_) => return Ok(Redirect::to(&format!("/console/events/{id}")).into_response()),
            // Not an event this session sees: look for a row id.
            Err(Error::NotFound { .. }) => {}
            Err(other) => return Err(other),
        }
    }
    filter.newer_than = None;
    let rows = api
        .store
        .events_page(&filter, params.before.unwrap_or(0), PAGE)
        .await?;
    let now = now_ms();
    let query = params.query();
    let live = params
        .before
        .is_none()
        .then(|| format!("/console/events/live?{query}"));
    let statuses: Vec<&str> = DeliveryStatus::ALL.iter().map(|s| s.as_str()).collect();
    let body = html! {
        h1 { "Events" }
        form.filters method="get" action="/console/events" role="search" {
            @if session.receiver.is_none() {
                (field("receiver", "Receiver id", html! {
                    input #receiver name="receiver" inputmode="numeric" value=(params.receiver);
                }))
            }
            (field("resource", "Resource", html! { input #resource name="resource" value=(params.resource); }))
            (select("action", "Action", &params.action, &["CREATE", "UPDATE", "DELETE", "TEST"]))
            (select("status", "Status", &params.status, &statuses))
            (field("from", "From (UTC)", html! {
                input #from type="datetime-local" name="from" value=(params.from);
            }))
            (field("to", "To (UTC)", html! { input #to type="datetime-local" name="to" value=(params.to); }))
            (field("find", "Event id or row id", html! { input #find name="find" value=(params.find); }))
            button type="submit" { "Filter" }
        }
        div.scroll {
            table.events {
                caption {
                    "Newest first"
                    @if live.is_some() { span.live #live-status aria-live="polite" { " · live" } }
                }
                thead { tr {
                    th scope="col" { "Event" } th scope="col" { "Created" } th scope="col" { "Receiver" }
                    th scope="col" { "Resource" } th scope="col" { "Action" } th scope="col" { "Row" }
                    th scope="col" { "Status" } th scope="col" { "Attempts" } th scope="col" { "Last result" }
                } }
                tbody #event-rows data-live=[live] data-newest=[rows.first().map(|e| e.id)] {
                    @for e in &rows { (event_row(e, now)) }
                }
            }
        }
        @if rows.is_empty() { p #no-events { "No events match." } }
        @if let Some(last) = rows.last().filter(|_| rows.len() as i64 == PAGE) {
            p { a rel="next" href={ "/console/events?" (query) "&before=" (last.id) } { "Older events" } }
        }
    };
    Ok(layout::page("Events", &session, Nav::Events, body).into_response())
}

/// `GET /console/events/live?after=ID&…`: rows of events newer than `after`,
/// newest first, as HTML the page's script puts on top of its table.
pub(crate) async fn live_rows(
    State(api): State<ApiContext>,
    session: Session,
    Query(params): Query<EventParams>,
) -> Result<Markup, Error> {
    let mut filter = params.filter(&session)?;
    if filter.newer_than.is_none() {
        filter.newer_than = Some(DeliveryId(0));
    }
    let rows = api.store.events_page(&filter, 0, PAGE).await?;
    let now = now_ms();
    Ok(html! { @for e in &rows { (event_row(e, now)) } })
}

fn headers_table(json: &str) -> Markup {
    let pairs: Vec<(String, String)> =
        serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(json)
            .map(|m| {
                m.into_iter()
                    .map(|(k, v)| (k, v.as_str().map_or_else(|| v.to_string(), str::to_string)))
                    .collect()
            })
            .unwrap_or_default();
    html! {
        table.kv {
            @for (k, v) in &pairs { tr { th scope="row" { (k) } td { code { (v) } } } }
        }
    }
}

fn attempt_row(a: &AttemptRow, now: i64) -> Markup {
    let r = &a.record;
    html! {
        tr data-attempt=(r.attempt) {
            td { (r.attempt) }
            td { (when(r.started_at, now)) }
            td { (r.duration_ms) " ms" }
            td { @if let Some(s) = r.response_status { (s) } @else { "—" } }
            td { (r.outcome) }
            td { (r.error_class.as_deref().unwrap_or("")) }
            td.error-text { (r.error.as_deref().unwrap_or("")) }
        }
    }
}

/// `GET /console/events/{id}`.
pub(crate) async fn detail(
    State(api): State<ApiContext>,
    session: Session,
    Path(id): Path<i64>,
) -> Result<Response, Error> {
    let event = access::event(&api, &session, id).await?;
    let attempts = api.store.attempts(event.id).await?;
    let has_plugin = api.store.plugin_summary(event.receiver_id).await?.is_some();
    let now = now_ms();
    let p = &event.payload;
    let fields = diff(p.old.as_deref(), p.new.as_deref());
    let last = attempts.last();
    let body_sent = sent_body(&event, last.and_then(|a| a.record.request_body.as_deref()));
    let body = html! {
        h1 { "Event " (event.id) " " (status_badge(event.status)) }
        dl.facts {
            dt { "Receiver" } dd { a href={ "/console/receivers/" (event.receiver_id) } { (event.receiver_id) } }
            dt { "Change" } dd { (p.resource) " " (p.action.api_name()) " row " code { (p.row_id) } }
            dt { "Transaction" } dd { code #transaction { (p.transaction_id) } }
            dt { "Occurred" } dd { (when(p.occurred_at, now)) }
            dt { "Created" } dd { (when(event.created_at, now)) }
            @if event.status == DeliveryStatus::Pending {
                dt { "Next attempt" } dd #next-attempt { (when(event.next_attempt_at, now)) }
            }
            @if let Some(done) = event.completed_at { dt { "Finished" } dd { (format_ms(done)) } }
            @if let Some(err) = &event.last_error { dt { "Last error" } dd.error-text { (err) } }
        }
        div.actions {
            (layout::action_form(&session, &format!("/console/events/{}/retry", event.id), "Retry", html! {}))
            @if has_plugin {
                form.action method="post" action={ "/console/events/" (event.id) "/dry-run" } {
                    input type="hidden" name="csrf" value=(session.csrf);
                    button type="submit" { "Dry-run the plugin" }
                }
            }
        }
        section aria-labelledby="diff-h" {
            h2 #diff-h { "Row change" }
            @if fields.is_empty() {
                p { "This change carries no row values." }
            } @else {
                div.scroll { table.diff {
                    thead { tr { th scope="col" { "Field" } th scope="col" { "Before" } th scope="col" { "After" } } }
                    tbody {
                        @for f in &fields {
                            tr class={ (f.change.label()) @if f.null_transition { " null-transition" } } {
                                th scope="row" { (f.name) span.sr-only { " (" (f.change.label()) ")" } }
                                td { @if let Some(b) = &f.before { code { (b) } } @else { span.absent { "absent" } } }
                                td { @if let Some(a) = &f.after { code { (a) } } @else { span.absent { "absent" } } }
                            }
                        }
                    }
                } }
            }
        }
        section aria-labelledby="attempts-h" {
            h2 #attempts-h { "Attempts (" (attempts.len()) ")" }
            @if attempts.is_empty() { p { "No attempt yet." } } @else {
                div.scroll { table #attempts {
                    thead { tr {
                        th scope="col" { "#" } th scope="col" { "Started" } th scope="col" { "Took" }
                        th scope="col" { "Response" } th scope="col" { "Outcome" } th scope="col" { "Class" } th scope="col" { "Error" }
                    } }
                    tbody { @for a in &attempts { (attempt_row(a, now)) } }
                } }
                @for a in attempts.iter().rev() {
                    details {
                        summary { "Attempt " (a.record.attempt) ": request and response" }
                        p { "POST " code { (a.record.request_url) } }
                        h3 { "Request headers" }
                        (headers_table(&a.record.request_headers))
                        h3 { "Response body" }
                        pre { (a.record.response_body.as_deref().unwrap_or("(none)")) }
                    }
                }
            }
        }
        section aria-labelledby="body-h" {
            h2 #body-h { "Body sent" }
            pre #body-sent { (body_sent) }
            p { a href={ "/console/debugger?event=" (event.id) } { "Check a signature of this delivery" } }
        }
    };
    Ok(layout::page(&format!("Event {}", event.id), &session, Nav::Events, body).into_response())
}

/// `POST /console/events/{id}/retry`: due now, with a fresh retry budget.
pub(crate) async fn retry(
    State(api): State<ApiContext>,
    session: Session,
    Path(id): Path<i64>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, Error> {
    session.authorize_change(&form.csrf)?;
    let event = access::event(&api, &session, id).await?;
    api.store.retry_delivery(event.id).await?;
    api.signals.wake_delivery();
    Ok(Redirect::to(&format!("/console/events/{id}")).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::{Action, ChangePayload, SubscriptionView};
    use crate::model::ChangeId;

    fn row(status: DeliveryStatus, last_status: Option<i32>, last_error: Option<&str>) -> EventRow {
        EventRow {
            id: DeliveryId(7),
            change_id: ChangeId(3),
            subscription_id: None,
            receiver_id: ReceiverId(1),
            status,
            attempts: 1,
            next_attempt_at: 0,
            last_status,
            last_error: last_error.map(str::to_string),
            created_at: 0,
            updated_at: 0,
            completed_at: None,
            payload: ChangePayload::new("parts", Action::Update, "9", 1, 0),
            view: SubscriptionView::default(),
            request_data: None,
            response_status: last_status,
            response_data: None,
        }
    }

    fn last_cell(markup: Markup) -> String {
        let html = markup.into_string();
        let start = html.rfind("<td").unwrap_or(0);
        html[start..].to_string()
    }

    #[test]
    fn only_a_failed_last_result_is_shown_as_an_error() {
        let ok = last_cell(event_row(
            &row(DeliveryStatus::Succeeded, Some(200), None),
            0,
        ));
        assert!(ok.contains("HTTP 200"), "{ok}");
        assert!(!ok.contains("error-text"), "a 200 is not an error: {ok}");
        let retrying = last_cell(event_row(
            &row(
                DeliveryStatus::Pending,
                Some(503),
                Some("expected 200, got 503"),
            ),
            0,
        ));
        assert!(retrying.contains("class=\"error-text\""), "{retrying}");
        let failed = last_cell(event_row(&row(DeliveryStatus::Failed, Some(500), None), 0));
        assert!(failed.contains("class=\"error-text\""), "{failed}");
    }
}
