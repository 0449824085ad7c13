//! The page shell (navigation, who is signed in, sign out) and the headers
//! every console response carries: a strict Content-Security-Policy (no
//! inline script or style, nothing from another origin), framing only by the
//! `[console] frame_ancestors` origins, and no referrer (a magic link's token
//! is in its URL).

use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use maud::{DOCTYPE, Markup, html};

use super::shell::head;

use super::session::Session;

/// Which navigation entry is current.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Nav {
    /// Every receiver's health.
    Overview,
    /// The audit trail.
    Events,
    /// Receivers and their settings.
    Receivers,
    /// The signature debugger.
    Debugger,
}

/// A console page for a signed-in session.
pub(crate) fn page(title: &str, session: &Session, current: Nav, body: Markup) -> Markup {
    let entries: Vec<(Nav, String, &str)> = match session.receiver {
        Some(id) => vec![
            (
                Nav::Receivers,
                format!("/console/receivers/{id}"),
                "Receiver",
            ),
            (Nav::Events, "/console/events".into(), "Events"),
            (
                Nav::Debugger,
                "/console/debugger".into(),
                "Signature debugger",
            ),
        ],
        None => vec![
            (Nav::Overview, "/console".into(), "Overview"),
            (Nav::Events, "/console/events".into(), "Events"),
            (Nav::Receivers, "/console/receivers".into(), "Receivers"),
            (
                Nav::Debugger,
                "/console/debugger".into(),
                "Signature debugger",
            ),
        ],
    };
    let role = if session.can_change() {
        "admin"
    } else {
        "read-only"
    };
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    span.brand { "changewire" }
                    nav aria-label="Console" {
                        @for (nav, href, label) in &entries {
                            @if *nav == current {
                                a href=(href) aria-current="page" { (label) }
                            } @else {
                                a href=(href) { (label) }
                            }
                        }
                    }
                    span.who { (session.who) " · " span.role { (role) } }
                    form.signout method="post" action="/console/logout" {
                        input type="hidden" name="csrf" value=(session.csrf);
                        button type="submit" { "Sign out" }
                    }
                }
                main #main { (body) }
            }
        }
    }
}

/// The answer to a change of a receiver: back to its page.
pub(crate) fn back_to_receiver(id: impl std::fmt::Display) -> Response {
    axum::response::Redirect::to(&format!("/console/receivers/{id}")).into_response()
}

/// A hidden CSRF field and a submit button: the form of one action.
pub(crate) fn action_form(session: &Session, action: &str, label: &str, extra: Markup) -> Markup {
    html! {
        form.action method="post" action=(action) {
            input type="hidden" name="csrf" value=(session.csrf);
            (extra)
            @if session.can_change() {
                button type="submit" { (label) }
            } @else {
                button type="submit" disabled title="This session is read-only" { (label) }
            }
        }
    }
}

/// The Content-Security-Policy for pages framed only by `frame_ancestors`.
pub(crate) fn content_security_policy(frame_ancestors: &[String]) -> String {
    let ancestors = if frame_ancestors.is_empty() {
        "'none'".to_string()
    } else {
        frame_ancestors.join(" ")
    };
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors {ancestors}"
    )
}

/// Adds the console's security headers to a response.
pub(crate) async fn security_headers(
    csp: HeaderValue,
    deny_framing: bool,
    req: Request,
    next: Next,
) -> Response {
    let mut response = next.run(req).await;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    if deny_framing {
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::content_security_policy;

    #[test]
    fn framing_is_refused_unless_origins_are_listed() {
        let none = content_security_policy(&[]);
        assert!(none.contains("frame-ancestors 'none'"), "{none}");
        assert!(none.contains("script-src 'self';"), "{none}");
        assert!(!none.contains("unsafe-inline"), "{none}");
        let some = content_security_policy(&["https://app.example.com".into()]);
        assert!(
            some.ends_with("frame-ancestors https://app.example.com"),
            "{some}"
        );
    }
}
