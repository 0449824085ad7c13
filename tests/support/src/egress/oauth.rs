//! An OAuth2 client-credentials token endpoint and, on the same server, a
//! webhook receiver that only accepts the bearer tokens it issued.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::json;

use super::{Recorder, bind_loopback};
use crate::receiver::Received;
use crate::receiver::record;

/// A token and when it stops being valid.
struct Issued {
    token: String,
    until: Instant,
}

struct Shared {
    client_id: String,
    client_secret: String,
    expires_in: AtomicU64,
    token_status: AtomicU16,
    tokens: Mutex<Vec<Issued>>,
    scopes: Mutex<Vec<Option<String>>>,
    token_requests: Recorder,
    hook: Recorder,
    hook_rejected: AtomicUsize,
}

/// A token endpoint (`POST /oauth/token`) and a protected receiver
/// (`POST /hook`) on 127.0.0.1; stops when dropped.
///
/// The token endpoint takes an `application/x-www-form-urlencoded` body
/// (else 400 `invalid_request`). It answers, in this order: the status set
/// with [`set_token_status`](TokenEndpoint::set_token_status) with
/// `{"error":"server_error"}` when not 200; 401 `{"error":"invalid_client"}`
/// unless the client authenticated, by HTTP Basic (`base64(urlencode(id) ":"
/// urlencode(secret))`) or by `client_id`/`client_secret` form fields; 400
/// `{"error":"unsupported_grant_type"}` unless `grant_type=client_credentials`;
/// else 200 `{"access_token":"tok-N","token_type":"Bearer","expires_in":S}`.
///
/// A token is valid for `expires_in` seconds after it was issued (enforced),
/// until [`revoke_all`](TokenEndpoint::revoke_all).
pub struct TokenEndpoint {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl TokenEndpoint {
    /// Starts with these client credentials, tokens valid for 3600 s.
    pub async fn start(client_id: &str, client_secret: &str) -> TokenEndpoint {
        let shared = Arc::new(Shared {
            client_id: client_id.to_string(),
            client_secret: client_secret.to_string(),
            expires_in: AtomicU64::new(3600),
            token_status: AtomicU16::new(200),
            tokens: Mutex::new(Vec::new()),
            scopes: Mutex::new(Vec::new()),
            token_requests: Recorder::default(),
            hook: Recorder::default(),
            hook_rejected: AtomicUsize::new(0),
        });
        let listener = bind_loopback().await;
        let addr = listener.local_addr().expect("local addr");
        let app = Router::new()
            .route("/oauth/token", post(token))
            .route("/hook", post(hook))
            .with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        TokenEndpoint { addr, shared, task }
    }

    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT/oauth/token`.
    pub fn token_url(&self) -> String {
        format!("http://{}/oauth/token", self.addr)
    }

    /// `http://127.0.0.1:PORT/hook`.
    pub fn hook_url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// The `expires_in` of the tokens issued from now on (and how long they
    /// are valid), in seconds.
    pub fn set_expires_in(&self, secs: u64) {
        self.shared.expires_in.store(secs, Ordering::SeqCst);
    }

    /// The token endpoint answers this status with `{"error":"server_error"}`
    /// from now on (200: back to normal).
    pub fn set_token_status(&self, status: u16) {
        self.shared.token_status.store(status, Ordering::SeqCst);
    }

    /// Every token issued so far stops being valid.
    pub fn revoke_all(&self) {
        if let Ok(mut tokens) = self.shared.tokens.lock() {
            tokens.clear();
        }
    }

    /// How many tokens were issued.
    pub fn issued(&self) -> usize {
        self.shared.scopes.lock().map(|s| s.len()).unwrap_or(0)
    }

    /// The `scope` of each token request that got a token, in order.
    pub fn scopes(&self) -> Vec<Option<String>> {
        self.shared
            .scopes
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default()
    }

    /// Every request to the token endpoint, answered or not.
    pub fn token_requests(&self) -> Vec<Received> {
        self.shared.token_requests.all()
    }

    /// Every request `/hook` accepted.
    pub fn hook_received(&self) -> Vec<Received> {
        self.shared.hook.all()
    }

    /// How many requests `/hook` accepted.
    pub fn hook_count(&self) -> usize {
        self.shared.hook.count()
    }

    /// Waits until `/hook` accepted at least `n` requests; panics after
    /// `timeout`.
    pub async fn wait_for_hook(&self, n: usize, timeout: Duration) -> Vec<Received> {
        self.shared.hook.wait_for("/hook", n, timeout).await
    }

    /// How many requests `/hook` rejected (401).
    pub fn hook_rejected(&self) -> usize {
        self.shared.hook_rejected.load(Ordering::SeqCst)
    }
}

impl Drop for TokenEndpoint {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn json_error(status: StatusCode, error: &str) -> Response {
    let mut response = (status, axum::Json(json!({ "error": error }))).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        "no-store".parse().expect("header value"),
    );
    response
}

/// Undoes `application/x-www-form-urlencoded` encoding (`+` is a space);
/// `None` if the result is not UTF-8.
fn form_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
                continue;
            }
            (b'+', _) => out.push(b' '),
            (b, _) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// The `(id, secret)` in an `Authorization: Basic` header.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(BASE64.decode(token.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((form_decode(id)?, form_decode(secret)?))
}

async fn token(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    shared
        .token_requests
        .push(record(&uri, &headers, body.clone()));
    let status = shared.token_status.load(Ordering::SeqCst);
    if status != 200 {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return json_error(status, "server_error");
    }
    let form_encoded = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !form_encoded {
        return json_error(StatusCode::BAD_REQUEST, "invalid_request");
    }
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let expected = (shared.client_id.clone(), shared.client_secret.clone());
    let by_basic = basic_credentials(&headers).is_some_and(|c| c == expected);
    let by_form = field("client_id")
        .zip(field("client_secret"))
        .is_some_and(|c| c == expected);
    if !by_basic && !by_form {
        let mut response = json_error(StatusCode::UNAUTHORIZED, "invalid_client");
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            "Basic realm=\"test\"".parse().expect("header value"),
        );
        return response;
    }
    if field("grant_type").as_deref() != Some("client_credentials") {
        return json_error(StatusCode::BAD_REQUEST, "unsupported_grant_type");
    }
    let expires_in = shared.expires_in.load(Ordering::SeqCst);
    let (Ok(mut scopes), Ok(mut tokens)) = (shared.scopes.lock(), shared.tokens.lock()) else {
        return json_error(StatusCode::INTERNAL_SERVER_ERROR, "server_error");
    };
    scopes.push(field("scope"));
    let access_token = format!("tok-{}", scopes.len());
    tokens.push(Issued {
        token: access_token.clone(),
        until: Instant::now() + Duration::from_secs(expires_in),
    });
    let body = json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": expires_in,
    });
    let mut response = axum::Json(body).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        "no-store".parse().expect("header value"),
    );
    response
}

/// Whether the request carries a bearer token that is valid now.
fn bearer_valid(shared: &Shared, headers: &HeaderMap) -> bool {
    let Some((scheme, token)) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
    else {
        return false;
    };
    let now = Instant::now();
    scheme.eq_ignore_ascii_case("bearer")
        && shared.tokens.lock().is_ok_and(|tokens| {
            tokens
                .iter()
                .any(|t| t.token == token.trim() && now < t.until)
        })
}

async fn hook(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !bearer_valid(&shared, &headers) {
        shared.hook_rejected.fetch_add(1, Ordering::SeqCst);
        let mut response = (StatusCode::UNAUTHORIZED, "invalid token").into_response();
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            "Bearer error=\"invalid_token\""
                .parse()
                .expect("header value"),
        );
        return response;
    }
    shared.hook.push(record(&uri, &headers, body));
    (StatusCode::OK, "ok").into_response()
}
