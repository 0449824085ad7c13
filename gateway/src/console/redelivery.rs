//! Redelivery: pick a time range (and a resource), see how many failed
//! events of a receiver match, start a job, watch its progress bar (the job runs in the
//! background and resumes after a restart).

use axum::extract::{Form, Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

use super::access;
use super::error::Error;
use super::events::{field, utc_ms};
use super::layout::{self, Nav, action_form};
use super::session::Session;
use super::time::when;
use crate::api::ApiContext;
use crate::api::redelivery::start_redelivery;
use crate::model::ReceiverId;
use crate::store::now_ms;
use crate::store::redelivery::RedeliveryRange;
use crate::timefmt::format_ms;

/// The range, as the form sends it (UTC; empty `from`: a day ago, empty `to`: now).
#[derive(Debug, Default, Clone, Deserialize)]
pub(crate) struct RangeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    resource: String,
}

impl RangeForm {
    fn range(
        &self,
        api: &ApiContext,
        receiver_id: ReceiverId,
        now: i64,
    ) -> Result<RedeliveryRange, Error> {
        let from = utc_ms("from", &self.from)?.unwrap_or(now - 86_400_000);
        let to = utc_ms("to", &self.to)?.unwrap_or(now + 1);
        if from >= to {
            return Err(Error::bad_input("to", "must be after `from`"));
        }
        let resource = match self.resource.trim() {
            "" => None,
            r if api.config.resources.get(r).is_some() => Some(r.to_string()),
            r => {
                return Err(Error::bad_input(
                    "resource",
                    format!("`{r}` is not a configured resource"),
                ));
            }
        };
        Ok(RedeliveryRange {
            receiver_id,
            from_ms: from,
            to_ms: to,
            resource,
        })
    }
}

/// `GET /console/receivers/{id}/redeliver[?from=&to=]`: the range and how
/// many failed events it holds.
pub(crate) async fn form(
    State(api): State<ApiContext>,
    session: Session,
    Path(id): Path<i64>,
    Query(range): Query<RangeForm>,
) -> Result<Response, Error> {
    let name = access::receiver(&api, &session, id).await?.settings.name;
    let now = now_ms();
    let selected = range.range(&api, ReceiverId(id), now)?;
    let (from, to) = (selected.from_ms, selected.to_ms);
    let matching = api.store.failed_count(&selected).await?;
    let resources = api.config.resources.names();
    let body = html! {
        h1 { "Redeliver failed events of " (name) }
        form.filters method="get" action={ "/console/receivers/" (id) "/redeliver" } {
            (field("from", "From (UTC)", html! {
                input #from type="datetime-local" name="from" value=(range.from) aria-describedby="range-hint";
            }))
            (field("to", "To (UTC)", html! {
                input #to type="datetime-local" name="to" value=(range.to) aria-describedby="range-hint";
            }))
            (field("resource", "Resource", html! {
                select #resource name="resource" {
                    option value="" { "any" }
                    @for r in &resources { option value=(r) selected[range.resource.trim() == r] { (r) } }
                }
            }))
            button type="submit" { "Count" }
        }
        p.hint #range-hint { "Empty: from a day ago, to now." }
        p #matching role="status" { (matching) " failed events between " (format_ms(from)) " and " (format_ms(to)) "." }
        @if matching > 0 {
            (action_form(&session, &format!("/console/receivers/{id}/redeliver"), "Redeliver them", html! {
                input type="hidden" name="from" value=(format_ms(from));
                input type="hidden" name="to" value=(format_ms(to));
                input type="hidden" name="resource" value=(range.resource.trim());
            }))
        }
        p.hint { "Each event is sent again with a fresh retry budget and keeps its event id." }
    };
    Ok(layout::page("Redeliver", &session, Nav::Receivers, body).into_response())
}

/// `POST /console/receivers/{id}/redeliver`: starts the job.
pub(crate) async fn start(
    State(api): State<ApiContext>,
    session: Session,
    Path(id): Path<i64>,
    Form(range): Form<RangeForm>,
) -> Result<Response, Error> {
    session.authorize_change(&range.csrf)?;
    access::receiver(&api, &session, id).await?;
    let selected = range.range(&api, ReceiverId(id), now_ms())?;
    let job = start_redelivery(&api, &selected).await?;
    Ok(Redirect::to(&format!("/console/redeliveries/{}", job.id)).into_response())
}

fn progress(done: i32, total: i32) -> Markup {
    html! {
        label for="progress" { "Progress" }
        progress #progress max=(total.max(1)) value=(done) { (done) " of " (total) }
        span { " " (done) " of " (total) }
    }
}

/// `GET /console/redeliveries/{job}`: the job's progress (a `Refresh`
/// header reloads it every second while it runs).
pub(crate) async fn job(
    State(api): State<ApiContext>,
    session: Session,
    Path(id): Path<i64>,
) -> Result<Response, Error> {
    let not_found = || Error::NotFound {
        entity: "redelivery",
        id: id.to_string(),
    };
    let job = api.store.redelivery_job(id).await?.ok_or_else(not_found)?;
    session
        .check_receiver(job.receiver_id)
        .map_err(|_| not_found())?;
    let running = job.status == "running";
    let now = now_ms();
    let body = html! {
        h1 { "Redelivery " (job.id) }
        p #job-status role="status" { (job.status) }
        (progress(job.done, job.total))
        dl.facts {
            dt { "Receiver" } dd { a href={ "/console/receivers/" (job.receiver_id) } { (job.receiver_id) } }
            dt { "Range" } dd { (format_ms(job.from_ms)) " – " (format_ms(job.to_ms)) }
            @if let Some(r) = &job.resource { dt { "Resource" } dd { (r) } }
            dt { "Started" } dd { (when(job.created_at, now)) }
            @if let Some(done) = job.finished_at { dt { "Finished" } dd { (when(done, now)) } }
        }
        p { a href={ "/console/events?receiver=" (job.receiver_id) } { "Events of this receiver" } }
    };
    let page = layout::page("Redelivery", &session, Nav::Receivers, body);
    if running {
        // Reload every second while it runs; no script needed.
        return Ok(([(axum::http::header::REFRESH, "1")], page).into_response());
    }
    Ok(page.into_response())
}
