//! Changing receivers from the console: create and edit (the model's
//! `ReceiverSpec` checks every field, as for the API), custom headers and
//! subscriptions. A rule a form breaks shows the form again, with what was
//! typed and the field and reason named; nothing is stored.

use axum::extract::{Form, Path, State};
use axum::response::{IntoResponse, Response};
use changewire_core::Scheme;
use maud::{Markup, html};
use serde::Deserialize;

use super::access;
use super::error::Error;
use super::layout::{self, Nav, action_form};
use super::session::Session;
use crate::api::ApiContext;
use crate::api::receivers::rules;
use crate::envelope::Action;
use crate::model::{
    Invalid, ReceiverId, ReceiverSettings, ReceiverSpec, RetryPolicy, SubscriptionId,
    SubscriptionSpec, validate,
};
use crate::store::receivers::ReceiverRow;

/// The receiver form's fields (named as the API names them, so an error
/// names the field the user sees).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ReceiverForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    etag: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    webhook_uri: String,
    #[serde(default)]
    scheme_ion: Option<String>,
    #[serde(default)]
    scheme_standard: Option<String>,
    #[serde(default)]
    scheme_ed25519: Option<String>,
    #[serde(default)]
    retry_policy: String,
    #[serde(default)]
    max_attempts: String,
    #[serde(default)]
    timeout_ms: String,
    #[serde(default)]
    active: Option<String>,
    #[serde(default)]
    ordered: Option<String>,
}

fn number(field: &'static str, text: &str) -> Result<Option<i32>, Invalid> {
    match text.trim() {
        "" => Ok(None),
        t => t
            .parse::<i32>()
            .map(Some)
            .map_err(|_| Invalid::new(field, format!("`{t}` is not a whole number"))),
    }
}

impl ReceiverForm {
    fn from_settings(s: &ReceiverSettings, etag: &str) -> Self {
        let on = |b: bool| b.then(|| "on".to_string());
        ReceiverForm {
            csrf: String::new(),
            etag: etag.to_string(),
            name: s.name.clone(),
            description: s.description.clone().unwrap_or_default(),
            webhook_uri: s.webhook_uri.clone(),
            scheme_ion: on(s.signature_schemes.contains(Scheme::Ion)),
            scheme_standard: on(s.signature_schemes.contains(Scheme::Standard)),
            scheme_ed25519: on(s.signature_schemes.contains(Scheme::Ed25519)),
            retry_policy: s.retry_policy.as_str().to_string(),
            max_attempts: s.max_attempts.to_string(),
            timeout_ms: s.timeout_ms.to_string(),
            active: on(s.active),
            ordered: on(s.ordered),
        }
    }

    /// What the form asks for, in the model's terms.
    fn spec(&self) -> Result<ReceiverSpec, Invalid> {
        let mut schemes = Vec::new();
        if self.scheme_ion.is_some() {
            schemes.push(Scheme::Ion);
        }
        if self.scheme_standard.is_some() {
            schemes.push(Scheme::Standard);
        }
        if self.scheme_ed25519.is_some() {
            schemes.push(Scheme::Ed25519);
        }
        let retry_policy = match self.retry_policy.trim() {
            "" => None,
            p => Some(
                p.parse::<RetryPolicy>()
                    .map_err(|e| Invalid::new("retryPolicy", e.to_string()))?,
            ),
        };
        Ok(ReceiverSpec {
            name: Some(self.name.clone()),
            description: Some(Some(self.description.trim().to_string()).filter(|d| !d.is_empty())),
            webhook_uri: Some(self.webhook_uri.clone()),
            signature_schemes: Some(schemes),
            retry_policy,
            max_attempts: number("maxAttempts", &self.max_attempts)?,
            timeout_ms: number("timeoutMs", &self.timeout_ms)?,
            active: Some(self.active.is_some()),
            ordered: Some(self.ordered.is_some()),
            ..ReceiverSpec::default()
        })
    }
}

fn receiver_form(
    session: &Session,
    action: &str,
    f: &ReceiverForm,
    problem: Option<&Invalid>,
) -> Markup {
    html! {
        @if let Some(p) = problem {
            p.error role="alert" { "`" (p.field) "` " (p.reason) }
        }
        form.edit method="post" action=(action) {
            input type="hidden" name="csrf" value=(session.csrf);
            input type="hidden" name="etag" value=(f.etag);
            label for="name" { "Name" }
            input #name name="name" value=(f.name) required maxlength="200";
            label for="description" { "Description" }
            input #description name="description" value=(f.description);
            label for="webhookUri" { "URL" }
            input #webhookUri name="webhookUri" type="url" value=(f.webhook_uri) required;
            fieldset {
                legend { "Signatures" }
                label.check { input type="checkbox" name="schemeIon" checked[f.scheme_ion.is_some()]; " ION (x-ion-signature)" }
                label.check { input type="checkbox" name="schemeStandard" checked[f.scheme_standard.is_some()]; " Standard Webhooks (webhook-signature)" }
                label.check { input type="checkbox" name="schemeEd25519" checked[f.scheme_ed25519.is_some()]; " Ed25519 (webhook-signature v1a, verified with the public key)" }
            }
            label for="retryPolicy" { "Retry policy" }
            select #retryPolicy name="retryPolicy" {
                @for p in RetryPolicy::ALL {
                    option value=(p.as_str()) selected[f.retry_policy == p.as_str()] { (p.as_str()) }
                }
            }
            label for="maxAttempts" { "Attempts at most (empty: the policy's default)" }
            input #maxAttempts name="maxAttempts" type="number" min="1" value=(f.max_attempts);
            label for="timeoutMs" { "Timeout, ms (empty: the gateway's default)" }
            input #timeoutMs name="timeoutMs" type="number" min="1" value=(f.timeout_ms);
            label.check { input type="checkbox" name="active" checked[f.active.is_some()]; " Active (new events are sent)" }
            label.check { input type="checkbox" name="ordered" checked[f.ordered.is_some()]; " One at a time, in order, per row" }
            button type="submit" disabled[!session.can_change()] { "Save" }
        }
    }
}

/// `GET /console/receivers/new` (operators only).
pub(crate) async fn new_form(session: Session) -> Result<Response, Error> {
    if session.receiver.is_some() {
        return Err(Error::Forbidden(
            "a receiver's portal cannot create receivers".into(),
        ));
    }
    let f = ReceiverForm {
        scheme_ion: Some("on".into()),
        active: Some("on".into()),
        retry_policy: "exponential".into(),
        ..ReceiverForm::default()
    };
    let body =
        html! { h1 { "New receiver" } (receiver_form(&session, "/console/receivers", &f, None)) };
    Ok(layout::page("New receiver", &session, Nav::Receivers, body).into_response())
}

/// The new secret, shown once.
pub(crate) fn secret_once(
    session: &Session,
    row: &ReceiverRow,
    secret: &str,
    note: Markup,
) -> Markup {
    layout::page(
        "New secret",
        session,
        Nav::Receivers,
        html! {
            h1 { "Secret of " (row.settings.name) }
            p role="status" { "Copy it now: it is shown only this once." }
            p { code #new-secret { (secret) } }
            (note)
            p { a href={ "/console/receivers/" (row.id) } { "Go to the receiver" } }
        },
    )
}

/// `POST /console/receivers`: creates a receiver and shows its secret once.
pub(crate) async fn create(
    State(api): State<ApiContext>,
    session: Session,
    Form(f): Form<ReceiverForm>,
) -> Result<Response, Error> {
    session.authorize_change(&f.csrf)?;
    if session.receiver.is_some() {
        return Err(Error::Forbidden(
            "a receiver's portal cannot create receivers".into(),
        ));
    }
    let new = match f.spec().and_then(|spec| spec.create(&rules(&api))) {
        Ok(new) => new,
        Err(problem) => {
            let body = html! { h1 { "New receiver" } (receiver_form(&session, "/console/receivers", &f, Some(&problem))) };
            return Ok((
                axum::http::StatusCode::BAD_REQUEST,
                layout::page("New receiver", &session, Nav::Receivers, body),
            )
                .into_response());
        }
    };
    let secret = crate::secrets::generate_receiver_secret();
    let row = api
        .store
        .create_receiver(&new, &api.secrets.seal(secret.expose()), &session.actor())
        .await?;
    api.signals.receivers_changed();
    Ok(secret_once(&session, &row, secret.expose(), html! {}).into_response())
}

/// `GET /console/receivers/{id}/edit`.
pub(crate) async fn edit_form(
    State(api): State<ApiContext>,
    session: Session,
    Path(id): Path<i64>,
) -> Result<Response, Error> {
    let r = access::receiver(&api, &session, id).await?;
    let f = ReceiverForm::from_settings(&r.settings, &r.etag);
    let action = format!("/console/receivers/{id}/edit");
    let body =
        html! { h1 { "Edit " (r.settings.name) } (receiver_form(&session, &action, &f, None)) };
    Ok(layout::page("Edit receiver", &session, Nav::Receivers, body).into_response())
}

/// `POST /console/receivers/{id}/edit`.
pub(crate) async fn update(
    State(api): State<ApiContext>,
    session: Session,
    Path(id): Path<i64>,
    Form(f): Form<ReceiverForm>,
) -> Result<Response, Error> {
    session.authorize_change(&f.csrf)?;
    let r = access::receiver(&api, &session, id).await?;
    let settings = match f
        .spec()
        .and_then(|spec| spec.update(&r.settings, &rules(&api)))
    {
        Ok(settings) => settings,
        Err(problem) => {
            let action = format!("/console/receivers/{id}/edit");
            let body = html! { h1 { "Edit " (r.settings.name) } (receiver_form(&session, &action, &f, Some(&problem))) };
            return Ok((
                axum::http::StatusCode::BAD_REQUEST,
                layout::page("Edit receiver", &session, Nav::Receivers, body),
            )
                .into_response());
        }
    };
    api.store.update_receiver(r.id, &f.etag, &settings).await?;
    api.signals.receivers_changed();
    Ok(layout::back_to_receiver(id))
}

/// The header form.
#[derive(Debug, Deserialize)]
pub(crate) struct HeaderForm {
    csrf: String,
    #[serde(default)]
    key: String,
    #[serde(default)]
    value: String,
    #[serde(default)]
    replace: Option<String>,
}

/// `POST /console/receivers/{id}/headers`: adds (or replaces) a custom header.
pub(crate) async fn add_header(
    State(api): State<ApiContext>,
    session: Session,
    Path(id): Path<i64>,
    Form(f): Form<HeaderForm>,
) -> Result<Response, Error> {
    session.authorize_change(&f.csrf)?;
    let r = access::receiver(&api, &session, id).await?;
    let (key, value) = validate::header("header", &f.key, &f.value)
        .map_err(|e| Error::bad_input("header", format!("`{}` {}", e.field, e.reason)))?;
    api.store
        .add_receiver_header(r.id, &key, &api.secrets.seal(&value), f.replace.is_some())
        .await?;
    api.signals.receivers_changed();
    Ok(layout::back_to_receiver(id))
}

/// A form that removes one thing.
#[derive(Debug, Deserialize)]
pub(crate) struct RemoveForm {
    csrf: String,
    #[serde(default)]
    etag: String,
}

/// `POST /console/receivers/{id}/headers/{header}/remove`.
pub(crate) async fn remove_header(
    State(api): State<ApiContext>,
    session: Session,
    Path((id, header)): Path<(i64, i64)>,
    Form(f): Form<RemoveForm>,
) -> Result<Response, Error> {
    session.authorize_change(&f.csrf)?;
    let r = access::receiver(&api, &session, id).await?;
    let owned = api
        .store
        .receiver_headers(r.id)
        .await?
        .iter()
        .any(|h| h.id == header);
    if !owned {
        return Err(Error::NotFound {
            entity: "header",
            id: header.to_string(),
        });
    }
    api.store.remove_receiver_header(header).await?;
    api.signals.receivers_changed();
    Ok(layout::back_to_receiver(id))
}

/// The subscription form.
#[derive(Debug, Deserialize)]
pub(crate) struct SubscriptionForm {
    csrf: String,
    #[serde(default)]
    resource: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    include_full_record: Option<String>,
}

/// `POST /console/receivers/{id}/subscriptions`.
pub(crate) async fn add_subscription(
    State(api): State<ApiContext>,
    session: Session,
    Path(id): Path<i64>,
    Form(f): Form<SubscriptionForm>,
) -> Result<Response, Error> {
    session.authorize_change(&f.csrf)?;
    let r = access::receiver(&api, &session, id).await?;
    let action = Action::parse(&f.action.trim().to_ascii_lowercase()).ok_or_else(|| {
        Error::bad_input(
            "action",
            format!("`{}` is not CREATE, UPDATE or DELETE", f.action),
        )
    })?;
    let spec = SubscriptionSpec {
        include_full_record: Some(f.include_full_record.is_some()),
        ..SubscriptionSpec::default()
    };
    let new = spec
        .create(r.id, f.resource.trim(), action, &api.config.resources)
        .map_err(|e| Error::bad_input("subscription", format!("`{}` {}", e.field, e.reason)))?;
    api.store
        .insert_subscription(&new, &session.actor())
        .await?;
    api.signals.receivers_changed();
    Ok(layout::back_to_receiver(id))
}

/// `POST /console/receivers/{id}/subscriptions/{sub}/remove`.
pub(crate) async fn remove_subscription(
    State(api): State<ApiContext>,
    session: Session,
    Path((id, sub)): Path<(i64, i64)>,
    Form(f): Form<RemoveForm>,
) -> Result<Response, Error> {
    session.authorize_change(&f.csrf)?;
    let r = access::receiver(&api, &session, id).await?;
    let sid = SubscriptionId(sub);
    match api.store.subscription(sid).await? {
        Some(s) if s.receiver_id == r.id => {}
        _ => {
            return Err(Error::NotFound {
                entity: "subscription",
                id: sub.to_string(),
            });
        }
    }
    api.store.delete_subscription(sid, &f.etag).await?;
    api.signals.receivers_changed();
    Ok(layout::back_to_receiver(id))
}

/// The add-header and add-subscription forms of a receiver's page.
pub(crate) fn add_forms(session: &Session, id: ReceiverId, resources: &[String]) -> Markup {
    html! {
        div.actions {
            (action_form(session, &format!("/console/receivers/{id}/headers"), "Add header", html! {
                label for="header-key" { "Header name" }
                input #header-key name="key" required;
                label for="header-value" { "Value (stored encrypted, shown masked)" }
                input #header-value name="value" type="password" autocomplete="off" required;
                label.check { input type="checkbox" name="replace"; " Replace a header with this name" }
            }))
            (action_form(session, &format!("/console/receivers/{id}/subscriptions"), "Subscribe", html! {
                label for="sub-resource" { "Resource" }
                select #sub-resource name="resource" { @for r in resources { option value=(r) { (r) } } }
                label for="sub-action" { "Action" }
                select #sub-action name="action" { @for a in ["CREATE", "UPDATE", "DELETE"] { option value=(a) { (a) } } }
                label.check { input type="checkbox" name="include_full_record"; " Include the full record" }
            }))
        }
    }
}
