//! Receivers: the list, one receiver's settings, headers (masked),
//! subscriptions and recent events, and its actions: pause and resume,
//! rotate the secret (the new one shown once), send a test.

use std::collections::HashMap;

use axum::extract::{Form, Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

use super::access;
use super::error::Error;
use super::layout::{self, Nav, action_form};
use super::overview::{MAX_RECEIVERS, state};
use super::receiver_forms::{add_forms, secret_once};
use super::session::Session;
use super::time::{age, when};
use crate::api::ApiContext;
use crate::api::receivers::object::WebhookHeader;
use crate::api::receivers::secret::{DEFAULT_OVERLAP_SECS, MAX_OVERLAP_SECS, Rotated, rotate};
use crate::api::redelivery::send_test as queue_test;
use crate::model::{ReceiverId, validate};
use crate::store::deliveries::EventFilter;
use crate::store::now_ms;
use crate::store::receivers::ReceiverRow;
use crate::store::subscriptions::SubscriptionFilter;

/// `GET /console/receivers`.
pub(crate) async fn list(
    State(api): State<ApiContext>,
    session: Session,
) -> Result<Response, Error> {
    if let Some(id) = session.receiver {
        return Ok(layout::back_to_receiver(id));
    }
    let now = now_ms();
    let rows = api.store.receivers_page(0, MAX_RECEIVERS).await?;
    let queues: HashMap<ReceiverId, i64> = api
        .store
        .queue_stats()
        .await?
        .into_iter()
        .map(|q| (q.receiver_id, q.pending))
        .collect();
    let body = html! {
        h1 { "Receivers" }
        @if session.can_change() { p { a.button href="/console/receivers/new" { "New receiver" } } }
        div.scroll { table {
            thead { tr {
                th scope="col" { "Id" } th scope="col" { "Name" } th scope="col" { "URL" }
                th scope="col" { "State" } th scope="col" { "Queued" }
            } }
            tbody { @for r in &rows {
                @let (text, class) = state(r, now);
                tr {
                    td { (r.id) }
                    td { a href={ "/console/receivers/" (r.id) } { (r.settings.name) } }
                    td { code { (r.settings.webhook_uri) } }
                    td { span class={ "state " (class) } { (text) } }
                    td { (queues.get(&r.id).copied().unwrap_or(0)) }
                }
            } }
        } }
    };
    Ok(layout::page("Receivers", &session, Nav::Receivers, body).into_response())
}

fn settings_list(r: &ReceiverRow, now: i64) -> Markup {
    let s = &r.settings;
    let schemes: Vec<String> = s.signature_schemes.iter().map(|x| x.to_string()).collect();
    html! {
        dl.facts {
            dt { "URL" } dd { code #receiver-url { (s.webhook_uri) } }
            @if let Some(d) = &s.description { dt { "Description" } dd { (d) } }
            dt { "Signatures" } dd { (schemes.join(", ")) }
            dt { "Content type" } dd { (s.content_type) }
            dt { "Expected response" } dd { (s.expected_response_code) }
            dt { "Timeout" } dd { (s.timeout_ms) " ms" }
            dt { "Retries" } dd { (s.retry_policy.as_str()) ", at most " (s.max_attempts) " attempts" }
            dt { "Order" } dd { @if s.ordered { "one at a time, in order" } @else { "concurrent" } }
            @if let Some(c) = s.max_concurrency { dt { "Concurrency" } dd { (c) } }
            @if let Some(rate) = s.rate_limit_per_second { dt { "Rate limit" } dd { (rate) " requests/s" } }
            @if let Some(key) = &r.public_key { dt { "Ed25519 public key" } dd { code #receiver-public-key { (key) } } }
            @if s.egress.tls_client_certificate.is_some() { dt { "Mutual TLS" } dd { "client certificate set (never shown)" } }
            @if s.egress.tls_ca_bundle.is_some() { dt { "Trusted CAs" } dd { "its own CA bundle, instead of the public roots" } }
            @if let (Some(url), Some(id)) = (&s.egress.oauth2_token_url, &s.egress.oauth2_client_id) {
                dt { "OAuth2" } dd { "client " code { (id) } " at " code { (url) } @if let Some(scope) = &s.egress.oauth2_scope { ", scope " code { (scope) } } }
            }
            dt { "Plugin failures" } dd { (s.plugin_failure_mode.as_str()) }
            @if let Some(until) = r.previous_secret_expires_at.filter(|t| *t > now) {
                dt { "Secret rotation" } dd { "the previous secret signs too until " (when(until, now)) }
            }
        }
    }
}

/// `GET /console/receivers/{id}`.
pub(crate) async fn detail(
    State(api): State<ApiContext>,
    session: Session,
    Path(id): Path<i64>,
) -> Result<Response, Error> {
    let r = access::receiver(&api, &session, id).await?;
    let now = now_ms();
    let (state_text, state_class) = state(&r, now);
    let stored = api.store.receiver_headers(r.id).await?;
    let header_ids: Vec<i64> = stored.iter().map(|h| h.id).collect();
    let headers: Vec<WebhookHeader> = stored
        .into_iter()
        .map(|h| WebhookHeader::masked(h, &api.secrets))
        .collect();
    let subscriptions = api
        .store
        .subscriptions_page(
            &SubscriptionFilter {
                receiver_id: Some(r.id),
                ..SubscriptionFilter::default()
            },
            0,
            100,
        )
        .await?;
    let filter = EventFilter {
        receiver_id: Some(r.id),
        ..EventFilter::default()
    };
    let recent = api.store.events_page(&filter, 0, 10).await?;
    let plugin = api.store.plugin_summary(r.id).await?;
    let pause_or_resume = if r.paused || r.circuit_open_until.is_some_and(|u| u > now) {
        action_form(
            &session,
            &format!("/console/receivers/{}/resume", r.id),
            "Resume",
            html! {
                input type="hidden" name="etag" value=(r.etag);
            },
        )
    } else {
        action_form(
            &session,
            &format!("/console/receivers/{}/pause", r.id),
            "Pause",
            html! {
                input type="hidden" name="etag" value=(r.etag);
                label for="reason" { "Reason (optional)" }
                input #reason name="reason" maxlength="500";
            },
        )
    };
    let body = html! {
        h1 { (r.settings.name) " " span class={ "state " (state_class) } { (state_text) } }
        (settings_list(&r, now))
        p { a href={ "/console/receivers/" (r.id) "/edit" } { "Edit settings" } }
        div.actions {
            (pause_or_resume)
            (action_form(&session, &format!("/console/receivers/{}/test", r.id), "Send test", html! {}))
            (action_form(&session, &format!("/console/receivers/{}/rotate", r.id), "Rotate secret", html! {
                input type="hidden" name="etag" value=(r.etag);
                label for="overlap" { "Old secret keeps signing for (seconds)" }
                input #overlap name="overlap" type="number" min="0" max=(MAX_OVERLAP_SECS) value=(DEFAULT_OVERLAP_SECS);
            }))
        }
        section aria-labelledby="recent-h" {
            h2 #recent-h { "Recent events" }
            @if recent.is_empty() { p { "None yet." } } @else {
                ul.recent { @for e in &recent {
                    li { a href={ "/console/events/" (e.id) } { "Event " (e.id) } " · " (e.payload.resource) " "
                         (e.payload.action.api_name()) " · " (e.status.as_str()) " · " (age(e.created_at, now)) " ago" }
                } }
            }
            p {
                a href={ "/console/events?receiver=" (r.id) } { "All events of this receiver" }
                " · "
                a href={ "/console/receivers/" (r.id) "/redeliver" } { "Redeliver failed events" }
            }
        }
        section aria-labelledby="subs-h" {
            h2 #subs-h { "Subscriptions" }
            @if subscriptions.is_empty() { p { "None: only test pings reach it." } } @else {
                div.scroll { table {
                    thead { tr { th scope="col" { "Resource" } th scope="col" { "Action" } th scope="col" { "Active" } th scope="col" { "Full record" } th scope="col" { span.sr-only { "Remove" } } } }
                    tbody { @for s in &subscriptions {
                        tr { td { (s.resource) } td { (s.action.api_name()) } td { @if s.active { "yes" } @else { "no" } }
                             td { @if s.include_full_record { "yes" } @else { "no" } }
                             td { (action_form(&session, &format!("/console/receivers/{}/subscriptions/{}/remove", r.id, s.id), "Remove", html! {
                                 input type="hidden" name="etag" value=(s.etag);
                             })) } }
                    } }
                } }
            }
        }
        section aria-labelledby="headers-h" {
            h2 #headers-h { "Custom headers" }
            @if headers.is_empty() { p { "None." } } @else {
                table.kv { @for (h, hid) in headers.iter().zip(&header_ids) { tr {
                    th scope="row" { (h.key) } td { code { (h.value) } }
                    td { (action_form(&session, &format!("/console/receivers/{}/headers/{hid}/remove", r.id), "Remove", html! {})) }
                } } }
            }
        }
        (add_forms(&session, r.id, &api.config.resources.names()))
        section aria-labelledby="plugin-h" {
            h2 #plugin-h { "Plugin" }
            @if let Some(p) = &plugin {
                p #plugin-name { (p.name) " · sha256 " code { (p.sha256.get(..12).unwrap_or(&p.sha256)) } " · attached " (age(p.created_at, now)) " ago" }
                (action_form(&session, &format!("/console/receivers/{}/plugin/detach", r.id), "Detach plugin", html! {}))
                p.hint { "Dry-run it on any event of this receiver from the event's page." }
            } @else { p { "None." } }
            form.action method="post" action={ "/console/receivers/" (r.id) "/plugin" } enctype="multipart/form-data" {
                input type="hidden" name="csrf" value=(session.csrf);
                label for="plugin-wasm" { "WebAssembly component (.wasm)" }
                input #plugin-wasm type="file" name="wasm" accept=".wasm,application/wasm" required;
                label for="plugin-name-input" { "Name" }
                input #plugin-name-input name="name" placeholder="plugin";
                label for="plugin-config" { "Configuration (JSON object)" }
                input #plugin-config name="config" placeholder="{}";
                button type="submit" disabled[!session.can_change()] { @if plugin.is_some() { "Replace plugin" } @else { "Attach plugin" } }
            }
        }
    };
    Ok(layout::page(&r.settings.name, &session, Nav::Receivers, body).into_response())
}

/// A form changing a receiver: CSRF token and the etag it was read with.
#[derive(Deserialize)]
pub(crate) struct ReceiverForm {
    csrf: String,
    #[serde(default)]
    etag: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    overlap: String,
}

/// `POST /console/receivers/{id}/pause`.
pub(crate) async fn pause(
    State(api): State<ApiContext>,
    session: Session,
    Path(id): Path<i64>,
    Form(form): Form<ReceiverForm>,
) -> Result<Response, Error> {
    session.authorize_change(&form.csrf)?;
    let r = access::receiver(&api, &session, id).await?;
    let reason = match form.reason.trim() {
        "" => format!("paused by {} in the console", session.who),
        given => validate::name("reason", given, 500)
            .map_err(|e| Error::bad_input("reason", e.reason))?,
    };
    api.store
        .set_receiver_paused(r.id, Some(&form.etag), true, Some(&reason))
        .await?;
    api.signals.receivers_changed();
    Ok(layout::back_to_receiver(id))
}

/// `POST /console/receivers/{id}/resume`.
pub(crate) async fn resume(
    State(api): State<ApiContext>,
    session: Session,
    Path(id): Path<i64>,
    Form(form): Form<ReceiverForm>,
) -> Result<Response, Error> {
    session.authorize_change(&form.csrf)?;
    let r = access::receiver(&api, &session, id).await?;
    api.store
        .set_receiver_paused(r.id, Some(&form.etag), false, None)
        .await?;
    api.signals.receivers_changed();
    Ok(layout::back_to_receiver(id))
}

/// `POST /console/receivers/{id}/test`: queues a test ping and shows it.
pub(crate) async fn send_test(
    State(api): State<ApiContext>,
    session: Session,
    Path(id): Path<i64>,
    Form(form): Form<ReceiverForm>,
) -> Result<Response, Error> {
    session.authorize_change(&form.csrf)?;
    let r = access::receiver(&api, &session, id).await?;
    let event = queue_test(&api, r.id, &session.actor().name).await?;
    Ok(Redirect::to(&format!("/console/events/{event}")).into_response())
}

/// `POST /console/receivers/{id}/rotate`: the new secret, shown this once.
pub(crate) async fn rotate_secret(
    State(api): State<ApiContext>,
    session: Session,
    Path(id): Path<i64>,
    Form(form): Form<ReceiverForm>,
) -> Result<Response, Error> {
    session.authorize_change(&form.csrf)?;
    let r = access::receiver(&api, &session, id).await?;
    let overlap = match form.overlap.trim() {
        "" => i64::from(DEFAULT_OVERLAP_SECS),
        text => {
            let n = text.parse::<i64>().map_err(|_| {
                Error::bad_input("overlap", format!("`{text}` is not a number of seconds"))
            })?;
            validate::range("overlap", n, 0, MAX_OVERLAP_SECS)
                .map_err(|e| Error::bad_input("overlap", e.reason))?
        }
    };
    let Rotated {
        row,
        secret,
        previous_expires_at,
    } = rotate(&api, r.id, &form.etag, overlap).await?;
    let now = now_ms();
    let note = html! {
        @if let Some(at) = previous_expires_at {
            p #overlap-note { "Deliveries are signed with both the old and the new secret until " (when(at, now)) "." }
        } @else {
            p #overlap-note { "The old secret stopped signing at once." }
        }
    };
    Ok(secret_once(&session, &row, secret.expose(), note).into_response())
}
