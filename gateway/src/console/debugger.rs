//! The signature debugger: paste (or pick) a delivery's URL, body, headers
//! and secret; it says which scheme verified, prints the exact string that
//! was signed, and names the likely cause of a mismatch (the core's
//! `diagnose`).

use axum::extract::{Form, Query, State};
use axum::response::{IntoResponse, Response};
use changewire_core::diagnose::diagnose;
use changewire_core::{Headers as _, ion, standard};
use maud::{Markup, html};
use serde::Deserialize;
use subtle::ConstantTimeEq as _;

use super::access;
use super::error::Error;
use super::layout::{self, Nav};
use super::session::Session;
use crate::api::ApiContext;
use crate::api::events::sent_body;

/// What the form holds.
#[derive(Debug, Default, Clone, Deserialize)]
pub(crate) struct DebugForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    url: String,
    #[serde(default)]
    body: String,
    /// One `name: value` per line.
    #[serde(default)]
    headers: String,
    #[serde(default)]
    secret: String,
    /// Verify with this receiver's current secret instead (never shown).
    #[serde(default)]
    receiver: String,
}

/// `?event=ID` fills the form from a recorded delivery.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct DebugQuery {
    event: Option<i64>,
}

/// One scheme's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SchemeReport {
    /// `ion` or `standard`.
    pub(crate) scheme: &'static str,
    /// Whether the given signature verified.
    pub(crate) verified: bool,
    /// The exact string the scheme signs.
    pub(crate) signed_string: String,
    /// Why it did not verify.
    pub(crate) cause: Option<String>,
}

/// Parses `name: value` lines (blank lines ignored).
pub(crate) fn parse_headers(text: &str) -> Result<Vec<(String, String)>, Error> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let (name, value) = line.split_once(':').ok_or_else(|| {
            Error::bad_input("headers", format!("line {} has no `name: value`", i + 1))
        })?;
        out.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    Ok(out)
}

/// Checks every scheme whose headers are present.
pub(crate) fn check_signatures(
    secret: &str,
    url: &str,
    body: &[u8],
    headers: &[(String, String)],
) -> Vec<SchemeReport> {
    let mut reports = Vec::new();
    if let Some(signature) = headers.header(ion::HEADER) {
        let next = headers.header(ion::HEADER_NEXT);
        let report = match diagnose(secret, url, body, signature) {
            Ok(d) => {
                let next_matches = next.is_some_and(|n| {
                    bool::from(d.expected_signature.as_bytes().ct_eq(n.trim().as_bytes()))
                });
                SchemeReport {
                    scheme: "ion",
                    verified: d.matches || next_matches,
                    signed_string: d.signed_string,
                    cause: (!d.matches && !next_matches).then(|| {
                        d.cause
                            .map_or_else(|| "no match".to_string(), |c| c.to_string())
                    }),
                }
            }
            Err(e) => SchemeReport {
                scheme: "ion",
                verified: false,
                signed_string: String::new(),
                cause: Some(format!("the body cannot be signed by this scheme: {e}")),
            },
        };
        reports.push(report);
    }
    if let Some(signature) = headers.header(standard::HEADER_SIGNATURE) {
        let id = headers.header(standard::HEADER_ID).unwrap_or("");
        let ts = headers.header(standard::HEADER_TIMESTAMP).unwrap_or("");
        let signed_string = format!("{id}.{ts}.{}", String::from_utf8_lossy(body));
        let report = match standard::SigningKey::from_secret(secret) {
            Err(e) => SchemeReport {
                scheme: "standard",
                verified: false,
                signed_string,
                cause: Some(format!("the secret is not a Standard Webhooks key: {e}")),
            },
            Ok(key) => {
                // The debugger checks the signature, not its age: "now" is
                // the delivery's own timestamp.
                let now = ts.trim().parse::<i64>().unwrap_or(0);
                match standard::verify(&key, id, ts, signature, body, now, 0) {
                    Ok(()) => SchemeReport {
                        scheme: "standard",
                        verified: true,
                        signed_string,
                        cause: None,
                    },
                    Err(e) => SchemeReport {
                        scheme: "standard",
                        verified: false,
                        signed_string,
                        cause: Some(format!(
                            "{e}; the signature covers `webhook-id.webhook-timestamp.body` with the raw body bytes"
                        )),
                    },
                }
            }
        };
        reports.push(report);
    }
    reports
}

fn form_markup(session: &Session, f: &DebugForm, can_use_stored: bool) -> Markup {
    html! {
        form.debugger method="post" action="/console/debugger" {
            input type="hidden" name="csrf" value=(session.csrf);
            label for="url" { "URL, exactly as registered" }
            input #url name="url" value=(f.url) required;
            label for="headers" { "Headers (one `name: value` per line)" }
            textarea #headers name="headers" rows="6" { (f.headers) }
            label for="body" { "Body, the raw bytes received" }
            textarea #body name="body" rows="10" { (f.body) }
            label for="secret" { "Secret" }
            input #secret name="secret" type="password" autocomplete="off" value="";
            @if can_use_stored && !f.receiver.is_empty() {
                label.check {
                    input type="checkbox" name="receiver" value=(f.receiver) checked;
                    " Use receiver " (f.receiver) "'s current secret instead (it is not shown)"
                }
            }
            button type="submit" { "Check" }
        }
    }
}

/// `GET /console/debugger[?event=ID]`.
pub(crate) async fn form(
    State(api): State<ApiContext>,
    session: Session,
    Query(q): Query<DebugQuery>,
) -> Result<Response, Error> {
    let mut f = DebugForm::default();
    if let Some(id) = q.event {
        let event = access::event(&api, &session, id).await?;
        let attempts = api.store.attempts(event.id).await?;
        if let Some(last) = attempts.last() {
            f.url = last.record.request_url.clone();
            f.body = sent_body(&event, last.record.request_body.as_deref());
            let sent: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(&last.record.request_headers).unwrap_or_default();
            f.headers = sent
                .iter()
                .filter(|(k, _)| k.starts_with("x-ion-signature") || k.starts_with("webhook-"))
                .map(|(k, v)| format!("{k}: {}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join("\n");
        }
        f.receiver = event.receiver_id.to_string();
    }
    let body = html! {
        h1 { "Signature debugger" }
        p.hint { "Nothing is sent anywhere: the gateway recomputes the signatures and compares." }
        (form_markup(&session, &f, session.can_change()))
    };
    Ok(layout::page("Signature debugger", &session, Nav::Debugger, body).into_response())
}

/// `POST /console/debugger`.
pub(crate) async fn check(
    State(api): State<ApiContext>,
    session: Session,
    Form(f): Form<DebugForm>,
) -> Result<Response, Error> {
    // Reading only, but a stored secret is used: the CSRF token is required.
    session.check_csrf(&f.csrf)?;
    let headers = parse_headers(&f.headers)?;
    if f.url.trim().is_empty() {
        return Err(Error::bad_input("url", "is required"));
    }
    let secret = if f.receiver.trim().is_empty() {
        if f.secret.is_empty() {
            return Err(Error::bad_input(
                "secret",
                "is required (or pick a recorded delivery to use its receiver's secret)",
            ));
        }
        f.secret.clone()
    } else {
        if !session.can_change() {
            return Err(Error::Forbidden(
                "a read-only session cannot use a stored secret; paste it instead".into(),
            ));
        }
        let id: i64 = f
            .receiver
            .trim()
            .parse()
            .map_err(|_| Error::bad_input("receiver", "is not a receiver id"))?;
        let row = access::receiver(&api, &session, id).await?;
        api.secrets
            .open(&row.shared_secret)
            .map_err(|_| {
                Error::Forbidden(
                    "this receiver's secret was sealed with another CHANGEWIRE_SECRET_KEY".into(),
                )
            })?
            .expose()
            .to_string()
    };
    let reports = check_signatures(&secret, f.url.trim(), f.body.as_bytes(), &headers);
    let verified: Vec<&str> = reports
        .iter()
        .filter(|r| r.verified)
        .map(|r| r.scheme)
        .collect();
    let body = html! {
        h1 { "Signature debugger" }
        section #verdict role="status" {
            @if reports.is_empty() {
                p.state.bad { "No signature header found: paste x-ion-signature or webhook-signature with its webhook-id and webhook-timestamp." }
            } @else if verified.is_empty() {
                p.state.bad { "No scheme verified." }
            } @else {
                p.state.good { "Verified with: " (verified.join(", ")) }
            }
            @for r in &reports {
                h2 { (r.scheme) ": " @if r.verified { "verified" } @else { "mismatch" } }
                @if let Some(cause) = &r.cause { p.error-text { "Likely cause: " (cause) } }
                h3 { "Signed string" }
                pre.signed-string { (r.signed_string) }
            }
        }
        (form_markup(&session, &f, session.can_change()))
    };
    Ok(layout::page("Signature debugger", &session, Nav::Debugger, body).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ion_signature_verifies_and_a_wrong_url_is_named() {
        let body = br#"{"data": {"id": 1, "name": "x"}}"#;
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let signature = ion::sign_body(secret, "https://example.com/hook", body).expect("sign");
        let headers = vec![(ion::HEADER.to_string(), signature)];
        let ok = check_signatures(secret, "https://example.com/hook", body, &headers);
        assert!(ok[0].verified, "{ok:?}");
        assert!(ok[0].signed_string.contains("https://example.com/hook"));
        let wrong = check_signatures(secret, "https://example.com/hook/", body, &headers);
        assert!(!wrong[0].verified);
        assert!(
            wrong[0]
                .cause
                .as_deref()
                .unwrap_or("")
                .contains("trailing slash"),
            "{wrong:?}"
        );
    }

    #[test]
    fn header_lines_need_a_colon() {
        assert_eq!(
            parse_headers("X-Ion-Signature: abc\n\nwebhook-id: 1").expect("parsed"),
            vec![
                ("x-ion-signature".into(), "abc".into()),
                ("webhook-id".into(), "1".into())
            ]
        );
        assert!(matches!(
            parse_headers("nocolon"),
            Err(Error::BadInput {
                field: "headers",
                ..
            })
        ));
    }
}
