//! Who is looking: sessions (a cookie), signing in with a token, magic
//! links, and the CSRF token every form carries.
//!
//! Tokens are random and only their SHA-256 is stored. The cookie is
//! `HttpOnly`, `SameSite=Strict`, scoped to `/console`, and `Secure` when the
//! console is served over https (`[console] secure_cookies`). A magic link is
//! opened by a POST from its own page (a script submits it at once), so a
//! link previewer that only fetches the URL does not use it up.

use std::time::Duration;

use axum::extract::{Form, FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;
use subtle::ConstantTimeEq as _;

use super::error::Error;
use super::shell;
use crate::api::ApiContext;
use crate::api::auth::{Role, authenticate};
use crate::config::{ConsoleSettings, SecureCookies};
use crate::model::ReceiverId;
use crate::secrets::{generate_url_token, hash_token};
use crate::store::console_sessions::{ConsoleTokenKind, ConsoleTokenRow, NewConsoleToken};
use crate::store::now_ms;
use crate::store::receivers::Actor;

/// The session cookie's name.
pub(crate) const COOKIE: &str = "changewire_console";

/// A signed-in console user.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    /// Admin (may change things) or viewer (reads only).
    pub(crate) role: Role,
    /// The one receiver this session may see; `None`: every receiver.
    pub(crate) receiver: Option<ReceiverId>,
    /// The token its forms carry.
    pub(crate) csrf: String,
    /// Who opened it (the key's name, or who minted the link).
    pub(crate) who: String,
}

impl Session {
    fn from_row(row: ConsoleTokenRow) -> Result<Self, Error> {
        let role = Role::parse(&row.role).ok_or_else(|| {
            Error::Store(format!("console session {} has role {}", row.id, row.role))
        })?;
        Ok(Session {
            role,
            receiver: row.receiver_id,
            csrf: row.csrf_token,
            who: row.created_by,
        })
    }

    /// Whether this session may change anything (the server checks again).
    pub(crate) fn can_change(&self) -> bool {
        self.role == Role::Admin
    }

    /// Checks a form's CSRF token.
    pub(crate) fn check_csrf(&self, csrf: &str) -> Result<(), Error> {
        if bool::from(self.csrf.as_bytes().ct_eq(csrf.as_bytes())) {
            Ok(())
        } else {
            Err(Error::Csrf)
        }
    }

    /// Checks a form: its CSRF token first, then that the session may change things.
    pub(crate) fn authorize_change(&self, csrf: &str) -> Result<(), Error> {
        self.check_csrf(csrf)?;
        if !self.can_change() {
            return Err(Error::Forbidden(
                "this console session is read-only: it can look but not change anything".into(),
            ));
        }
        Ok(())
    }

    /// Refuses a receiver this session may not see, as if it did not exist.
    pub(crate) fn check_receiver(&self, id: ReceiverId) -> Result<(), Error> {
        match self.receiver {
            Some(own) if own != id => Err(Error::NotFound {
                entity: "receiver",
                id: id.to_string(),
            }),
            _ => Ok(()),
        }
    }

    /// Who made a change, for the audit fields.
    pub(crate) fn actor(&self) -> Actor {
        Actor {
            id: "console".into(),
            name: format!("{} (console)", self.who),
        }
    }
}

impl FromRequestParts<ApiContext> for Session {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, api: &ApiContext) -> Result<Self, Error> {
        let token = cookie_value(&parts.headers, COOKIE).ok_or(Error::SignIn)?;
        let row = api
            .store
            .console_session(&hash_token(token))
            .await?
            .ok_or(Error::SignIn)?;
        Session::from_row(row)
    }
}

/// The value of cookie `name` in a request's `Cookie` headers.
pub(crate) fn cookie_value<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Whether the cookie is marked `Secure` for this request.
fn secure(settings: &ConsoleSettings, headers: &HeaderMap) -> bool {
    match settings.secure_cookies {
        SecureCookies::Always => true,
        SecureCookies::Never => false,
        SecureCookies::Auto => {
            let forwarded_https = headers
                .get("x-forwarded-proto")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"));
            forwarded_https
                || settings
                    .public_url
                    .as_deref()
                    .is_some_and(|u| u.starts_with("https://"))
        }
    }
}

/// Opens a session and answers with its cookie and a redirect to `landing`.
async fn open_session(
    api: &ApiContext,
    headers: &HeaderMap,
    role: Role,
    receiver: Option<ReceiverId>,
    who: &str,
    link_id: Option<i64>,
    landing: &str,
) -> Result<Response, Error> {
    let settings = &api.config.console;
    let token = generate_url_token("cws_");
    let csrf = generate_url_token("");
    api.store
        .insert_console_token(&NewConsoleToken {
            kind: ConsoleTokenKind::Session,
            token_hash: &hash_token(&token),
            link_id,
            role: role.as_str(),
            receiver_id: receiver,
            csrf_token: &csrf,
            created_by: who,
            expires_at: now_ms().saturating_add(ms(settings.session_ttl)),
        })
        .await?;
    let mut cookie = format!(
        "{COOKIE}={token}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={}",
        settings.session_ttl.as_secs()
    );
    if secure(settings, headers) {
        cookie.push_str("; Secure");
    }
    let mut response = Redirect::to(landing).into_response();
    let value =
        HeaderValue::from_str(&cookie).map_err(|e| Error::Store(format!("session cookie: {e}")))?;
    response.headers_mut().insert(header::SET_COOKIE, value);
    Ok(response)
}

fn login_page(problem: Option<&str>) -> Markup {
    shell::bare(
        "Sign in",
        html! {
            h1 { "Sign in to changewire" }
            @if let Some(problem) = problem {
                p.error role="alert" { (problem) }
            }
            form method="post" action="/console/login" {
                label for="token" { "Admin token or API key" }
                input #token type="password" name="token" autocomplete="current-password" required autofocus;
                button type="submit" { "Sign in" }
            }
            p.hint { "A viewer key opens a read-only console. Receivers' developers get a link instead (createConsoleSession)." }
        },
    )
}

/// `GET /console/login`.
pub(crate) async fn login_form() -> Markup {
    login_page(None)
}

/// The sign-in form.
#[derive(Deserialize)]
pub(crate) struct LoginForm {
    token: String,
}

/// `POST /console/login`: a token in, a session cookie out.
pub(crate) async fn login(
    State(api): State<ApiContext>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Result<Response, Error> {
    let bearer = format!("Bearer {}", form.token.trim());
    match authenticate(Some(&bearer), api.config.admin_token.as_ref(), &api.store).await {
        Ok(caller) => {
            open_session(
                &api,
                &headers,
                caller.role,
                None,
                &caller.actor.name,
                None,
                "/console",
            )
            .await
        }
        Err(_) => Ok((
            StatusCode::UNAUTHORIZED,
            login_page(Some(
                "That token is neither the admin token nor a live API key.",
            )),
        )
            .into_response()),
    }
}

/// A form that carries only its CSRF token.
#[derive(Deserialize)]
pub(crate) struct CsrfForm {
    /// The session's CSRF token.
    pub(crate) csrf: String,
}

/// `POST /console/logout`: ends the session everywhere it is used.
pub(crate) async fn logout(
    State(api): State<ApiContext>,
    headers: HeaderMap,
    session: Session,
    Form(form): Form<CsrfForm>,
) -> Result<Response, Error> {
    session.check_csrf(&form.csrf)?;
    if let Some(token) = cookie_value(&headers, COOKIE) {
        api.store.end_console_session(&hash_token(token)).await?;
    }
    let mut response = Redirect::to("/console/login").into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static(
            "changewire_console=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0",
        ),
    );
    Ok(response)
}

/// `GET /console/link/{token}`: a page whose form uses the link (a script
/// submits it; without scripts, one click).
pub(crate) async fn link_form(Path(token): Path<String>) -> Markup {
    shell::bare(
        "Open the console",
        html! {
            h1 { "changewire console" }
            form #open-link method="post" action={ "/console/link/" (token) } data-autosubmit {
                p { "This link opens a console session once." }
                button type="submit" { "Open the console" }
            }
        },
    )
}

/// `POST /console/link/{token}`: uses the link (once) and opens its session.
pub(crate) async fn redeem_link(
    State(api): State<ApiContext>,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> Result<Response, Error> {
    let link = api
        .store
        .redeem_console_link(&hash_token(&token))
        .await?
        .ok_or_else(|| {
            Error::Forbidden(
                "this link was already used, was revoked, or has expired; ask for a new one".into(),
            )
        })?;
    let role = Role::parse(&link.role)
        .ok_or_else(|| Error::Store(format!("console link {} has role {}", link.id, link.role)))?;
    let landing = match link.receiver_id {
        Some(id) => format!("/console/receivers/{id}"),
        None => "/console/events".to_string(),
    };
    open_session(
        &api,
        &headers,
        role,
        link.receiver_id,
        &link.created_by,
        Some(link.id),
        &landing,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; changewire_console=tok"),
        );
        headers.append(header::COOKIE, HeaderValue::from_static("b=2"));
        assert_eq!(cookie_value(&headers, COOKIE), Some("tok"));
        assert_eq!(cookie_value(&headers, "b"), Some("2"));
        assert_eq!(cookie_value(&headers, "changewire"), None);
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("changewire_console="),
        );
        assert_eq!(cookie_value(&headers, COOKIE), None);
    }

    #[test]
    fn a_viewer_session_cannot_change_anything_and_csrf_is_checked_first() {
        let viewer = Session {
            role: Role::Viewer,
            receiver: None,
            csrf: "c".into(),
            who: "v".into(),
        };
        assert!(matches!(
            viewer.authorize_change("c"),
            Err(Error::Forbidden(_))
        ));
        assert!(matches!(viewer.authorize_change("x"), Err(Error::Csrf)));
        let admin = Session {
            role: Role::Admin,
            ..viewer
        };
        assert!(admin.authorize_change("c").is_ok());
        assert!(matches!(admin.authorize_change(""), Err(Error::Csrf)));
    }

    #[test]
    fn a_scoped_session_sees_only_its_receiver() {
        let scoped = Session {
            role: Role::Admin,
            receiver: Some(ReceiverId(7)),
            csrf: "c".into(),
            who: "w".into(),
        };
        assert!(scoped.check_receiver(ReceiverId(7)).is_ok());
        assert!(matches!(
            scoped.check_receiver(ReceiverId(8)),
            Err(Error::NotFound { .. })
        ));
    }
}
