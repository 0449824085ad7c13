//! A receiver's plugin in the console: attach (upload a `.wasm`), detach,
//! and a dry run on a recorded event: the body, headers, drop reason or
//! error the plugin gives and the time it took, with nothing sent.

use axum::extract::{Form, Multipart, Path, State};
use axum::response::{IntoResponse, Response};
use maud::html;

use super::access;
use super::error::Error;
use super::layout::{self, Nav};
use super::session::{CsrfForm, Session};
use crate::api::ApiContext;
use crate::api::events::sent_body;
use crate::api::plugins::MAX_PLUGIN_BYTES;
use crate::model::{ReceiverId, validate};
use crate::plugins::{self, PluginEvent, Transform};

/// `POST /console/events/{id}/dry-run`: runs the receiver's plugin on the
/// event's body as rendered from its change; sends nothing, stores nothing.
pub(crate) async fn dry_run(
    State(api): State<ApiContext>,
    session: Session,
    Path(id): Path<i64>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, Error> {
    session.check_csrf(&form.csrf)?;
    let event = access::event(&api, &session, id).await?;
    let receiver = access::receiver(&api, &session, event.receiver_id.get()).await?;
    let body = sent_body(&event, None);
    let resource = event.payload.resource.to_ascii_lowercase();
    let plugin_event = PluginEvent {
        resource: &resource,
        action: event.payload.action.as_str(),
        receiver_id: receiver.id.get(),
        receiver_name: &receiver.settings.name,
    };
    let result = api.plugins.dry_run(receiver.id, &plugin_event, &body).await;
    let page = html! {
        h1 { "Plugin dry run on event " (event.id) }
        p.hint { "Nothing was sent and nothing was recorded." }
        @match &result {
            Err(why) => { p.state.bad #dry-run-outcome role="status" { "Not run: " (why) } }
            Ok((outcome, took)) => {
                p #dry-run-time { "Took " (took.as_micros()) " µs." }
                @match outcome {
                    Transform::Unchanged => { p.state.good #dry-run-outcome role="status" { "Sent unchanged" } pre #dry-run-body { (body) } }
                    Transform::Replaced { body: new, headers } => {
                        p.state.good #dry-run-outcome role="status" { "Sent transformed" }
                        h2 { "Body" } pre #dry-run-body { (new.as_deref().unwrap_or(&body)) }
                        h2 { "Headers the plugin adds" }
                        @if headers.is_empty() { p { "None." } } @else {
                            table.kv { @for (k, v) in headers { tr { th scope="row" { (k) } td { code { (v) } } } } }
                        }
                    }
                    Transform::Dropped { reason } => { p.state.muted #dry-run-outcome role="status" { "Dropped: " (reason) } }
                    Transform::Failed { error } => { p.state.bad #dry-run-outcome role="status" { "Failed: " (error) } }
                    Transform::Busy { reason } => { p.state.warn #dry-run-outcome role="status" { "The plugin host was busy: " (reason) } }
                    Transform::NotLoaded { reason, .. } => { p.state.bad #dry-run-outcome role="status" { (reason) } }
                }
            }
        }
        h2 { "Input body" }
        pre { (body) }
        p { a href={ "/console/events/" (event.id) } { "Back to the event" } }
    };
    Ok(layout::page("Plugin dry run", &session, Nav::Events, page).into_response())
}

/// `POST /console/receivers/{id}/plugin` (multipart: `csrf`, `name`,
/// `config`, `wasm`): attaches or replaces the receiver's plugin.
pub(crate) async fn attach(
    State(api): State<ApiContext>,
    session: Session,
    Path(id): Path<i64>,
    mut form: Multipart,
) -> Result<Response, Error> {
    let (mut csrf, mut name, mut config, mut wasm) =
        (String::new(), String::new(), String::new(), Vec::new());
    while let Some(field) = form
        .next_field()
        .await
        .map_err(|e| Error::bad_input("wasm", format!("the upload could not be read: {e}")))?
    {
        let field_name = field.name().unwrap_or_default().to_string();
        let bytes = field
            .bytes()
            .await
            .map_err(|e| Error::bad_input("wasm", format!("the upload could not be read: {e}")))?;
        match field_name.as_str() {
            "csrf" => csrf = String::from_utf8_lossy(&bytes).into_owned(),
            "name" => name = String::from_utf8_lossy(&bytes).into_owned(),
            "config" => config = String::from_utf8_lossy(&bytes).into_owned(),
            "wasm" => wasm = bytes.to_vec(),
            _ => {}
        }
    }
    session.authorize_change(&csrf)?;
    let rid = ReceiverId(id);
    session.check_receiver(rid)?;
    if wasm.is_empty() {
        return Err(Error::bad_input("wasm", "choose a .wasm file"));
    }
    if wasm.len() > MAX_PLUGIN_BYTES {
        return Err(Error::bad_input(
            "wasm",
            format!("is {} bytes; the limit is {MAX_PLUGIN_BYTES}", wasm.len()),
        ));
    }
    let config = match config.trim() {
        "" => "{}".to_string(),
        text => match serde_json::from_str::<serde_json::Value>(text) {
            Ok(v @ serde_json::Value::Object(_)) => v.to_string(),
            _ => return Err(Error::bad_input("config", "must be a JSON object")),
        },
    };
    let name = match name.trim() {
        "" => "plugin".to_string(),
        n => validate::name("name", n, 200).map_err(|e| Error::bad_input("name", e.reason))?,
    };
    plugins::attach(&api.store, &api.plugins, rid, &name, wasm, &config)
        .await
        .map_err(|e| match e {
            plugins::Error::NotFound { .. } => Error::NotFound {
                entity: "receiver",
                id: id.to_string(),
            },
            other => Error::bad_input("wasm", crate::report::Report(&other).to_string()),
        })?;
    api.signals.receivers_changed();
    Ok(layout::back_to_receiver(id))
}

/// `POST /console/receivers/{id}/plugin/detach`.
pub(crate) async fn detach(
    State(api): State<ApiContext>,
    session: Session,
    Path(id): Path<i64>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, Error> {
    session.authorize_change(&form.csrf)?;
    let rid = ReceiverId(id);
    session.check_receiver(rid)?;
    api.store.detach_plugin(rid).await?;
    api.plugins.remove(rid);
    api.signals.receivers_changed();
    Ok(layout::back_to_receiver(id))
}
