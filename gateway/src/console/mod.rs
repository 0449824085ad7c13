//! The web console at `/console`: what happened to each webhook, for the
//! operators who run the gateway and, through magic links, for a receiver's
//! own developers.
//!
//! Server-rendered HTML ([`maud`]) with one small script for live updates
//! and no third-party requests: every asset is in the binary. Every page and
//! action goes through a [`Session`]: a cookie opened by signing in with a
//! token, or by a single-use link from `createConsoleSession`. A viewer's
//! session, or a read-only link's, can read but not change anything; a
//! receiver-scoped one sees only its receiver (anything else is "not found").
//!
//! - [`session`]: cookies, sign-in, magic links, CSRF.
//! - [`shell`] and [`layout`]: the HTML around every page, and the security headers.
//! - [`overview`], [`events`], [`receivers`] (and [`receiver_forms`]),
//!   [`redelivery`], [`plugins`] (attach, detach, dry run), [`debugger`]: the pages.
//! - [`diff`]: a change's before/after, field by field.

mod access;
mod assets;
mod debugger;
mod diff;
mod error;
mod events;
mod layout;
mod overview;
mod plugins;
mod receiver_forms;
mod receivers;
mod redelivery;
pub(crate) mod session;
mod shell;
mod time;

use axum::Router;
use axum::routing::{get, post};

use crate::api::ApiContext;

/// The console's routes, under `/console`.
pub(crate) fn router(api: ApiContext) -> Router {
    let frame_ancestors = &api.config.console.frame_ancestors;
    let deny_framing = frame_ancestors.is_empty();
    // Origins were validated at start-up (no spaces, `;` or `,`).
    let csp = axum::http::HeaderValue::from_str(&layout::content_security_policy(frame_ancestors))
        .unwrap_or_else(|_| axum::http::HeaderValue::from_static("default-src 'none'"));
    Router::new()
        .route("/console", get(overview::page))
        .route("/console/", get(overview::page))
        .route(
            "/console/login",
            get(session::login_form).post(session::login),
        )
        .route("/console/logout", post(session::logout))
        .route(
            "/console/link/{token}",
            get(session::link_form).post(session::redeem_link),
        )
        .route("/console/events", get(events::list))
        .route("/console/events/live", get(events::live_rows))
        .route("/console/events/{id}", get(events::detail))
        .route("/console/events/{id}/retry", post(events::retry))
        .route("/console/events/{id}/dry-run", post(plugins::dry_run))
        .route(
            "/console/receivers/{id}/plugin",
            post(plugins::attach).layer(axum::extract::DefaultBodyLimit::max(
                crate::api::plugins::MAX_PLUGIN_BYTES + (64 << 10),
            )),
        )
        .route(
            "/console/receivers/{id}/plugin/detach",
            post(plugins::detach),
        )
        .route(
            "/console/receivers",
            get(receivers::list).post(receiver_forms::create),
        )
        .route("/console/receivers/new", get(receiver_forms::new_form))
        .route("/console/receivers/{id}", get(receivers::detail))
        .route(
            "/console/receivers/{id}/edit",
            get(receiver_forms::edit_form).post(receiver_forms::update),
        )
        .route(
            "/console/receivers/{id}/headers",
            post(receiver_forms::add_header),
        )
        .route(
            "/console/receivers/{id}/headers/{header}/remove",
            post(receiver_forms::remove_header),
        )
        .route(
            "/console/receivers/{id}/subscriptions",
            post(receiver_forms::add_subscription),
        )
        .route(
            "/console/receivers/{id}/subscriptions/{sub}/remove",
            post(receiver_forms::remove_subscription),
        )
        .route("/console/receivers/{id}/pause", post(receivers::pause))
        .route("/console/receivers/{id}/resume", post(receivers::resume))
        .route(
            "/console/receivers/{id}/rotate",
            post(receivers::rotate_secret),
        )
        .route("/console/receivers/{id}/test", post(receivers::send_test))
        .route(
            "/console/receivers/{id}/redeliver",
            get(redelivery::form).post(redelivery::start),
        )
        .route("/console/redeliveries/{id}", get(redelivery::job))
        .route(
            "/console/debugger",
            get(debugger::form).post(debugger::check),
        )
        .route("/console/assets/{name}", get(assets::serve))
        .layer(axum::middleware::from_fn(move |req, next| {
            layout::security_headers(csp.clone(), deny_framing, req, next)
        }))
        .with_state(api)
}
