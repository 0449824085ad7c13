//! HTTP: `POST /graphql` (GraphiQL on `GET /graphql`, from [`super::graphiql`]),
//! `POST /v1/events`, `GET /healthz`, `GET /readyz`, `GET /metrics`.

use std::sync::Arc;

use async_graphql_axum::GraphQLResponse;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::auth::{Caller, authenticate};
use super::context::ApiContext;
use super::error::Error;
use super::ingest::{parse_transaction_id, publish, publish_many};
use super::schema::{ApiSchema, build};
use crate::fanout::PublishedEvent;
use crate::health::Health;

/// Everything the HTTP handlers need.
#[derive(Clone)]
pub(crate) struct HttpState {
    /// The API state.
    pub(crate) api: ApiContext,
    /// The schema.
    pub(crate) schema: ApiSchema,
    /// Readiness of components.
    pub(crate) health: Arc<Health>,
}

/// The router; testable without a socket (`tower::ServiceExt::oneshot`).
pub(crate) fn router(api: ApiContext, health: Arc<Health>) -> Router {
    let limit = api.config.api.max_body_bytes;
    let schema = build(api.clone());
    let state = HttpState {
        api,
        schema,
        health,
    };
    Router::new()
        .route("/graphql", post(graphql))
        .merge(super::graphiql::routes())
        .route("/v1/events", post(ingest))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .layer(DefaultBodyLimit::disable())
        .layer(tower_http::limit::RequestBodyLimitLayer::new(limit))
        .with_state(state)
}

fn error_body(status: StatusCode, err: &Error) -> Response {
    let mut extensions = serde_json::json!({ "code": err.code() });
    if let Some(field) = err.field() {
        extensions["field"] = field.into();
    }
    if let Some((line, column)) = err.position() {
        extensions["line"] = line.into();
        extensions["column"] = column.into();
    }
    let body =
        serde_json::json!({ "errors": [{ "message": err.to_string(), "extensions": extensions }] });
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

async fn caller_from(state: &HttpState, headers: &HeaderMap) -> Result<Caller, Error> {
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    authenticate(
        auth,
        state.api.config.admin_token.as_ref(),
        &state.api.store,
    )
    .await
}

/// A body that could not be read: too large (413, as when the declared
/// length is), or cut short.
fn unreadable(rejection: &BytesRejection, limit: usize) -> Response {
    let status = rejection.status();
    let reason = if status == StatusCode::PAYLOAD_TOO_LARGE {
        format!("is larger than {limit} bytes (`api.max_body_bytes`)")
    } else {
        format!("could not be read: {}", rejection.body_text())
    };
    error_body(status, &Error::bad_input("body", reason))
}

/// The body of `POST /graphql` as a GraphQL request.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GraphQLBody {
    query: String,
    #[serde(default)]
    operation_name: Option<String>,
    #[serde(default)]
    variables: Option<async_graphql::Variables>,
    #[serde(default)]
    extensions: Option<async_graphql::Extensions>,
}

/// Reads one GraphQL request: a JSON object (whatever the content type, as
/// before), or a multipart request. A batch (a JSON array) is refused.
async fn graphql_request(
    headers: &HeaderMap,
    body: &[u8],
) -> Result<async_graphql::Request, Error> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty());
    if let Some(multipart) =
        content_type.filter(|ct| ct.to_ascii_lowercase().starts_with("multipart/"))
    {
        let options = async_graphql::http::MultipartOptions::default();
        return async_graphql::http::receive_body(Some(multipart), body, options)
            .await
            .map_err(|e| {
                Error::bad_input("body", format!("is not a GraphQL multipart request: {e}"))
            });
    }
    if body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        return Err(Error::bad_input(
            "body",
            "is a batch (a JSON array); batches are not supported: send one request object",
        ));
    }
    let parsed: GraphQLBody = serde_json::from_slice(body).map_err(|e| {
        let mut err = Error::bad_body(
            &e,
            "a GraphQL request ({\"query\": \"…\", \"variables\": {…}})",
        );
        if let (Error::BadBody { reason, .. }, Some(ct)) = (&mut err, content_type)
            && !ct.to_ascii_lowercase().contains("json")
        {
            reason.push_str(&format!(" (content-type `{ct}`: send application/json)"));
        }
        err
    })?;
    let mut request = async_graphql::Request::new(parsed.query);
    request.operation_name = parsed.operation_name;
    request.variables = parsed.variables.unwrap_or_default();
    request.extensions = parsed.extensions.unwrap_or_default();
    Ok(request)
}

async fn graphql(
    State(state): State<HttpState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(rejection) => return unreadable(&rejection, state.api.config.api.max_body_bytes),
    };
    let caller = match caller_from(&state, &headers).await {
        Ok(caller) => caller,
        Err(err) => return error_body(status_of(&err), &err),
    };
    let mut request = match graphql_request(&headers, &body).await {
        Ok(request) => request,
        Err(err) => return error_body(status_of(&err), &err),
    };
    if request.query.contains('\u{a0}') {
        request.query = normalize_nbsp(&request.query);
    }
    let request = request.data(caller);
    let mut response = state.schema.execute(request).await;
    // Parse and validation errors (unknown enum values, depth and complexity
    // limits, wrong types) carry no code of their own: they are bad input.
    for err in &mut response.errors {
        let has_code = err
            .extensions
            .as_ref()
            .is_some_and(|e| e.get("code").is_some());
        if !has_code {
            err.extensions
                .get_or_insert_with(Default::default)
                .set("code", "BAD_USER_INPUT");
        }
    }
    GraphQLResponse::from(response).into_response()
}

/// Replaces non-breaking spaces outside string literals with spaces.
///
/// Documents copied from web pages (ION's docs among them) are indented with
/// U+00A0, which GraphQL's grammar does not count as whitespace; treating it
/// as a space lets them run unchanged. Inside strings it is kept.
pub(crate) fn normalize_nbsp(query: &str) -> String {
    #[derive(PartialEq)]
    enum Mode {
        Code,
        String,
        Block,
        Comment,
    }
    let mut out = String::with_capacity(query.len());
    let mut mode = Mode::Code;
    let mut i = 0;
    while let Some(c) = query[i..].chars().next() {
        let rest = &query[i..];
        match mode {
            Mode::Code if rest.starts_with("\"\"\"") => {
                out.push_str("\"\"\"");
                i += 3;
                mode = Mode::Block;
                continue;
            }
            Mode::Block if rest.starts_with("\"\"\"") => {
                out.push_str("\"\"\"");
                i += 3;
                mode = Mode::Code;
                continue;
            }
            Mode::String if c == '\\' => {
                out.push(c);
                i += 1;
                if let Some(next) = query[i..].chars().next() {
                    out.push(next);
                    i += next.len_utf8();
                }
                continue;
            }
            Mode::Code if c == '"' => mode = Mode::String,
            Mode::Code if c == '#' => mode = Mode::Comment,
            Mode::String if c == '"' || c == '\n' => mode = Mode::Code,
            Mode::Comment if c == '\n' => mode = Mode::Code,
            _ => {}
        }
        if mode == Mode::Code && c == '\u{a0}' {
            out.push(' ');
        } else {
            out.push(c);
        }
        i += c.len_utf8();
    }
    out
}

fn status_of(err: &Error) -> StatusCode {
    match err {
        Error::BadInput { .. } | Error::BadBody { .. } => StatusCode::BAD_REQUEST,
        Error::NotFound { .. } => StatusCode::NOT_FOUND,
        Error::Conflict(_) => StatusCode::CONFLICT,
        Error::Unauthenticated => StatusCode::UNAUTHORIZED,
        Error::Forbidden(_) => StatusCode::FORBIDDEN,
        Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// Body of `POST /v1/events`; objects are kept as raw text so their key order survives.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct IngestBody<'a> {
    resource: &'a str,
    action: &'a str,
    #[serde(borrow)]
    id: &'a RawValue,
    etag: Option<&'a str>,
    #[serde(borrow)]
    old: Option<&'a RawValue>,
    #[serde(borrow)]
    new: Option<&'a RawValue>,
    #[serde(borrow)]
    record: Option<&'a RawValue>,
    transaction_id: Option<&'a str>,
    idempotency_key: Option<&'a str>,
}

impl<'a> IngestBody<'a> {
    /// The event, with its transaction id parsed (`prefix` locates it in a list).
    fn event(&self, prefix: &str) -> Result<PublishedEvent<'a>, Error> {
        Ok(PublishedEvent {
            resource: self.resource,
            action: self.action,
            id: self.id,
            etag: self.etag,
            old: self.old,
            new: self.new,
            record: self.record,
            transaction_id: parse_transaction_id(
                &format!("{prefix}transactionId"),
                self.transaction_id,
            )?,
            idempotency_key: self.idempotency_key,
            occurred_at: None,
        })
    }
}

/// `POST /v1/events`: one event (an object) or several (an array of them,
/// stored in one transaction). 202 when something was stored, 200 when every
/// event was a duplicate.
async fn ingest(
    State(state): State<HttpState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(rejection) => return unreadable(&rejection, state.api.config.api.max_body_bytes),
    };
    let bad_body = |e: serde_json::Error| Error::bad_body(&e, "an event or a list of events");
    let result = async {
        let caller = caller_from(&state, &headers).await?;
        caller.require_admin()?;
        if body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
            let parsed: Vec<IngestBody<'_>> = serde_json::from_slice(&body).map_err(bad_body)?;
            let events = parsed
                .iter()
                .enumerate()
                .map(|(i, p)| p.event(&format!("[{i}].")))
                .collect::<Result<Vec<_>, Error>>()?;
            let payloads = publish_many(&state.api, &events).await?;
            let stored = payloads.iter().any(|p| !p.duplicate);
            return Ok((stored, serde_json::to_value(payloads).unwrap_or_default()));
        }
        let parsed: IngestBody<'_> = serde_json::from_slice(&body).map_err(bad_body)?;
        let payload = publish(&state.api, &parsed.event("")?, "").await?;
        Ok((
            !payload.duplicate,
            serde_json::to_value(payload).unwrap_or_default(),
        ))
    }
    .await;
    match result {
        Ok((stored, payload)) => {
            let status = if stored {
                StatusCode::ACCEPTED
            } else {
                StatusCode::OK
            };
            (status, axum::Json(payload)).into_response()
        }
        Err(err) => error_body(status_of(&err), &err),
    }
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(state): State<HttpState>) -> Response {
    let mut components = state.health.snapshot();
    let store = match state.api.store.ping().await {
        Ok(()) => crate::health::ComponentState::working(),
        Err(e) => crate::health::ComponentState {
            ready: false,
            error: Some(crate::report::Report(&e).to_string()),
            blocks_readiness: true,
        },
    };
    components.insert("store".into(), store);
    let ready = !components.values().any(|c| c.blocks());
    let degraded = components.values().any(|c| !c.ready);
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        axum::Json(
            serde_json::json!({ "ready": ready, "degraded": degraded, "components": components }),
        ),
    )
        .into_response()
}

async fn metrics() -> Response {
    match crate::telemetry::metrics_handle() {
        Some(handle) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            handle.render(),
        )
            .into_response(),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "metrics recorder unavailable",
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::{Error, HeaderMap, graphql_request, header, normalize_nbsp};

    fn multipart(boundary: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let value = format!("multipart/form-data; boundary={boundary}");
        headers.insert(header::CONTENT_TYPE, value.parse().expect("a header value"));
        headers
    }

    #[tokio::test]
    async fn multipart_requests_are_still_read() {
        let body = "--xyz\r\nContent-Disposition: form-data; name=\"operations\"\r\n\r\n\
                    {\"query\": \"{ resources { name } }\", \"operationName\": null}\r\n\
                    --xyz\r\nContent-Disposition: form-data; name=\"map\"\r\n\r\n{}\r\n--xyz--\r\n";
        let request = graphql_request(&multipart("xyz"), body.as_bytes())
            .await
            .expect("read");
        assert_eq!(request.query, "{ resources { name } }");
        let err = graphql_request(&multipart("xyz"), b"--nope--")
            .await
            .expect_err("refused");
        assert!(
            matches!(&err, Error::BadInput { field, reason } if field == "body" && reason.contains("multipart")),
            "{err}"
        );
    }

    #[tokio::test]
    async fn json_requests_keep_their_operation_and_variables() {
        let body = br#"{"query": "query A { a } query B { b }", "operationName": "B", "variables": {"x": [1]}, "id": "ignored"}"#;
        let request = graphql_request(&HeaderMap::new(), body)
            .await
            .expect("read");
        assert_eq!(request.operation_name.as_deref(), Some("B"));
        assert_eq!(
            request.variables.into_value().into_json().expect("json"),
            serde_json::json!({"x": [1]})
        );
    }

    #[test]
    fn nbsp_outside_strings_becomes_space() {
        assert_eq!(normalize_nbsp("{\u{a0}\u{a0}a }"), "{  a }");
        assert_eq!(
            normalize_nbsp("{ a(x: \"n\u{a0}b\") }"),
            "{ a(x: \"n\u{a0}b\") }"
        );
        assert_eq!(
            normalize_nbsp("{ a(x: \"q\\\"\u{a0}\") }\u{a0}"),
            "{ a(x: \"q\\\"\u{a0}\") } "
        );
        assert_eq!(
            normalize_nbsp("\"\"\"\u{a0}\"\"\"\u{a0}"),
            "\"\"\"\u{a0}\"\"\" "
        );
        assert_eq!(normalize_nbsp("# c\u{a0}\n\u{a0}x"), "# c\u{a0}\n x");
    }
}
