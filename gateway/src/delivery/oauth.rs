//! OAuth2 client credentials (RFC 6749 §4.4) for receivers that want a
//! bearer token instead of (or besides) a signature: the token is fetched
//! from the receiver's token endpoint through the same guarded client as
//! deliveries, cached per receiver until shortly before it expires, and
//! fetched again when the receiver answers 401 (once per attempt).

use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use changewire_core::Secret;
use serde::Deserialize;

use super::client::Client;

/// How long a token lives when the endpoint does not say.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(300);
/// The most a token is used before it expires: a minute, or a tenth of its life.
const MAX_EARLY_REFRESH: Duration = Duration::from_secs(60);
/// How long the token endpoint may take.
const TOKEN_TIMEOUT: Duration = Duration::from_secs(10);

/// A receiver's OAuth2 client-credentials settings (the secret opened).
#[derive(Clone)]
pub(crate) struct OAuthClient {
    /// Where tokens come from.
    pub(crate) token_url: String,
    /// The client id.
    pub(crate) client_id: String,
    /// The client secret.
    pub(crate) client_secret: Secret,
    /// The scope asked for, if any.
    pub(crate) scope: Option<String>,
}

impl std::fmt::Debug for OAuthClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthClient")
            .field("token_url", &self.token_url)
            .field("client_id", &self.client_id)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

impl OAuthClient {
    /// Whether a token was issued for these same settings.
    fn same_as(&self, other: &OAuthClient) -> bool {
        self.token_url == other.token_url
            && self.client_id == other.client_id
            && self.client_secret.expose() == other.client_secret.expose()
            && self.scope == other.scope
    }
}

/// Why no token could be had: the attempt's error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("OAuth2 token endpoint {url}: {reason}")]
pub(crate) struct TokenError {
    /// The token URL.
    url: String,
    /// What went wrong.
    reason: String,
}

struct Cached {
    issued_for: OAuthClient,
    token: String,
    use_until: Instant,
}

/// One receiver's token, kept across settings reloads (dropped when its
/// OAuth2 settings change). Fetches are one at a time.
#[derive(Default)]
pub(crate) struct TokenCache {
    current: tokio::sync::Mutex<Option<Cached>>,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenCache { .. }")
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
}

impl TokenCache {
    /// A valid token for `settings`: the cached one unless `refresh` (the
    /// receiver refused it) or it is about to expire, else a new one.
    pub(crate) async fn token(
        &self,
        settings: &OAuthClient,
        client: &Client,
        refresh: bool,
    ) -> Result<String, TokenError> {
        let mut current = self.current.lock().await;
        if let Some(c) = current.as_ref()
            && !refresh
            && c.issued_for.same_as(settings)
            && Instant::now() < c.use_until
        {
            return Ok(c.token.clone());
        }
        *current = None;
        let (token, lifetime) = fetch(settings, client).await?;
        let early = (lifetime / 10).min(MAX_EARLY_REFRESH);
        *current = Some(Cached {
            issued_for: settings.clone(),
            token: token.clone(),
            use_until: Instant::now() + lifetime.saturating_sub(early),
        });
        Ok(token)
    }
}

/// Client authentication by HTTP Basic, id and secret form-encoded first
/// (RFC 6749 §2.3.1).
fn basic_credentials(settings: &OAuthClient) -> String {
    let encode = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let pair = format!(
        "{}:{}",
        encode(&settings.client_id),
        encode(settings.client_secret.expose())
    );
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

async fn fetch(settings: &OAuthClient, client: &Client) -> Result<(String, Duration), TokenError> {
    let failed = |reason: String| TokenError {
        url: settings.token_url.clone(),
        reason,
    };
    let form = {
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        form.append_pair("grant_type", "client_credentials");
        if let Some(scope) = &settings.scope {
            form.append_pair("scope", scope);
        }
        form.finish()
    };
    let headers = [
        (
            "content-type".to_string(),
            "application/x-www-form-urlencoded".to_string(),
        ),
        ("accept".to_string(), "application/json".to_string()),
        ("authorization".to_string(), basic_credentials(settings)),
    ];
    let (answer, _) = client
        .send(
            &settings.token_url,
            &headers,
            Bytes::from(form),
            TOKEN_TIMEOUT,
        )
        .await;
    let answer = answer.map_err(|e| failed(e.to_string()))?;
    if answer.status != 200 {
        let body: String = answer.body.chars().take(300).collect();
        return Err(failed(format!("answered HTTP {}: {body}", answer.status)));
    }
    let parsed: TokenResponse = serde_json::from_str(&answer.body)
        .map_err(|e| failed(format!("answered 200 without a JSON `access_token` ({e})")))?;
    if let Some(kind) = &parsed.token_type
        && !kind.eq_ignore_ascii_case("bearer")
    {
        return Err(failed(format!(
            "issued a `{kind}` token; only Bearer tokens can be sent"
        )));
    }
    if parsed.access_token.is_empty()
        || parsed
            .access_token
            .chars()
            .any(|c| c.is_control() || c == ' ')
    {
        return Err(failed("issued an empty or malformed access_token".into()));
    }
    let lifetime = match parsed.expires_in {
        Some(serde_json::Value::Number(n)) => n.as_u64().map(Duration::from_secs),
        Some(serde_json::Value::String(s)) => s.parse().ok().map(Duration::from_secs),
        _ => None,
    }
    .unwrap_or(DEFAULT_LIFETIME);
    Ok((parsed.access_token, lifetime))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_credentials_are_form_encoded_before_basic() {
        let s = OAuthClient {
            token_url: "https://auth.example/token".into(),
            client_id: "id:1".into(),
            client_secret: Secret::new("s p&c"),
            scope: None,
        };
        let header = basic_credentials(&s);
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(header.trim_start_matches("Basic "))
            .unwrap();
        assert_eq!(String::from_utf8(decoded).unwrap(), "id%3A1:s+p%26c");
        assert!(!format!("{s:?}").contains("s p&c"));
    }
}
