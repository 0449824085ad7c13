//! A receiver's settings: what is stored ([`ReceiverSettings`]), and what a
//! client asks for ([`ReceiverSpec`]), which owns the defaults of a new
//! receiver and every rule a setting must keep.

use std::time::Duration;

use changewire_core::Scheme;

use super::receiver_egress::{EgressSpec, ReceiverEgressSettings};
use super::validate;
use super::{Invalid, PluginFailureMode, RetryPolicy, SignatureSchemes};
use crate::destination::Policy;
use crate::secrets::{SecretBox, StoredSigningKey};

/// The longest name.
const MAX_NAME: usize = 200;
/// The longest description.
const MAX_DESCRIPTION: usize = 2000;
/// Attempts allowed per delivery.
const MAX_ATTEMPTS: i64 = 50;
/// The longest interval of the fixed retry policy, seconds (a day).
const MAX_INTERVAL_SECS: i64 = 86_400;
/// The most concurrent requests to one receiver.
const MAX_CONCURRENCY: i64 = 1000;
/// The highest rate limit, requests per second.
const MAX_RATE_LIMIT: i64 = 100_000;
/// The shortest request timeout, ms.
const MIN_TIMEOUT_MS: i64 = 100;
/// The interval of a new fixed-policy receiver, seconds.
const DEFAULT_INTERVAL_SECS: i32 = 60;

/// A receiver's settings as stored (the password sealed).
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ReceiverSettings {
    /// A name for people.
    pub name: String,
    /// What it is for.
    pub description: Option<String>,
    /// Where deliveries go: the string the ION signature covers.
    pub webhook_uri: String,
    /// `json`, ION's only content type.
    pub content_type: String,
    /// The status that counts as success.
    pub expected_response_code: i32,
    /// Whether new events fan out to it (ION's `active`).
    pub active: bool,
    /// The whole request's time limit, ms.
    pub timeout_ms: i32,
    /// How failed attempts are tried again.
    pub retry_policy: RetryPolicy,
    /// Attempts before a delivery is `failed`.
    pub max_attempts: i32,
    /// The fixed policy's interval, seconds.
    pub retry_interval_secs: i32,
    /// Which signatures it gets.
    pub signature_schemes: SignatureSchemes,
    /// Basic-auth user.
    pub basic_auth_username: Option<String>,
    /// Basic-auth password, sealed.
    pub basic_auth_password: Option<String>,
    /// Deliveries of one row go one at a time, in commit order.
    pub ordered: bool,
    /// Its concurrent requests (None: the gateway's default).
    pub max_concurrency: Option<i32>,
    /// What happens when its plugin fails.
    pub plugin_failure_mode: PluginFailureMode,
    /// Requests per second it may receive from all gateway processes
    /// together (None: no limit).
    pub rate_limit_per_second: Option<i32>,
    /// Client certificate, CA bundle, OAuth2.
    #[sqlx(flatten)]
    pub egress: ReceiverEgressSettings,
}

/// Basic-auth credentials as given (the password in clear until sealed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BasicAuthSpec {
    /// User name.
    pub(crate) username: String,
    pub(crate) password: String,
}

/// Settings a client asks for. `None` leaves a setting as it is (or, for a
/// new receiver, at its default); `Some(None)` clears a setting that may
/// be empty.
#[derive(Debug, Clone, Default)]
pub(crate) struct ReceiverSpec {
    /// Name (required for a new receiver).
    pub(crate) name: Option<String>,
    pub(crate) description: Option<Option<String>>,
    /// URL (required for a new receiver).
    pub(crate) webhook_uri: Option<String>,
    /// Content type: `json` (or `application/json`).
    pub(crate) content_type: Option<String>,
    /// Success status (default 200).
    pub(crate) expected_response_code: Option<i32>,
    /// Fans out new events (default true).
    pub(crate) active: Option<bool>,
    /// Timeout, ms (default: the gateway's).
    pub(crate) timeout_ms: Option<i32>,
    /// Retry policy (default exponential).
    pub(crate) retry_policy: Option<RetryPolicy>,
    /// Attempts (default: the policy's).
    pub(crate) max_attempts: Option<i32>,
    /// Fixed interval, seconds (default 60).
    pub(crate) retry_interval_secs: Option<i32>,
    /// Signatures (default ION's).
    pub(crate) signature_schemes: Option<Vec<Scheme>>,
    /// Basic auth (default none).
    pub(crate) basic_auth: Option<Option<BasicAuthSpec>>,
    /// Per-row order (default false).
    pub(crate) ordered: Option<bool>,
    /// Concurrency (default: the gateway's).
    pub(crate) max_concurrency: Option<Option<i32>>,
    /// Plugin failure mode (default fail).
    pub(crate) plugin_failure_mode: Option<PluginFailureMode>,
    /// Requests per second (default: no limit).
    pub(crate) rate_limit_per_second: Option<Option<i32>>,
    /// Custom headers of a new receiver (name, value in clear).
    pub(crate) headers: Vec<(String, String)>,
    /// Client certificate, CA bundle, OAuth2 (default none).
    pub(crate) egress: EgressSpec,
}

/// What the rules depend on: the gateway's configuration.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReceiverRules<'a> {
    /// Where deliveries may go.
    pub(crate) policy: &'a Policy,
    /// The timeout of a new receiver.
    pub(crate) default_timeout: Duration,
    /// The longest timeout a receiver may have.
    pub(crate) max_timeout: Duration,
    /// Seals the Basic-auth password.
    pub(crate) secrets: &'a SecretBox,
}

/// A new receiver: its settings, its custom headers (values sealed) and
/// its Ed25519 signing key.
#[derive(Debug, Clone)]
pub struct NewReceiver {
    /// Its settings.
    pub settings: ReceiverSettings,
    /// Its custom headers, names as given and values sealed.
    pub headers: Vec<(String, String)>,
    /// Its signing key (None: one is made at the next start).
    pub signing_key: Option<StoredSigningKey>,
}

fn millis(d: Duration) -> i32 {
    i32::try_from(d.as_millis()).unwrap_or(i32::MAX)
}

impl ReceiverSpec {
    /// A new receiver: the defaults, then this spec, every field checked.
    /// `name` and `webhookUri` are required.
    pub(crate) fn create(mut self, rules: &ReceiverRules<'_>) -> Result<NewReceiver, Invalid> {
        let name = self
            .name
            .take()
            .ok_or_else(|| Invalid::new("name", "is required"))?;
        let webhook_uri = self
            .webhook_uri
            .take()
            .ok_or_else(|| Invalid::new("webhookUri", "is required"))?;
        let retry_policy = self.retry_policy.unwrap_or(RetryPolicy::Exponential);
        let defaults = ReceiverSettings {
            name: validate::name("name", &name, MAX_NAME)?,
            description: None,
            webhook_uri: validate::webhook_uri("webhookUri", &webhook_uri, rules.policy)?,
            content_type: "json".into(),
            expected_response_code: 200,
            active: true,
            timeout_ms: millis(rules.default_timeout),
            retry_policy,
            max_attempts: retry_policy.default_attempts(),
            retry_interval_secs: DEFAULT_INTERVAL_SECS,
            signature_schemes: SignatureSchemes::default(),
            basic_auth_username: None,
            basic_auth_password: None,
            ordered: false,
            max_concurrency: None,
            plugin_failure_mode: PluginFailureMode::Fail,
            rate_limit_per_second: None,
            egress: ReceiverEgressSettings::default(),
        };
        let headers = checked_headers(&self.headers, rules.secrets)?;
        let settings = self.update(&defaults, rules)?;
        Ok(NewReceiver {
            settings,
            headers,
            signing_key: Some(rules.secrets.new_signing_key()),
        })
    }

    /// `current` with this spec's changes, every changed field checked.
    pub(crate) fn update(
        self,
        current: &ReceiverSettings,
        rules: &ReceiverRules<'_>,
    ) -> Result<ReceiverSettings, Invalid> {
        let mut s = current.clone();
        let (auth_given, oauth2_given) = (self.basic_auth.is_some(), self.egress.oauth2.is_some());
        s.egress = self.egress.apply(&s.egress, rules)?;
        if let Some(name) = &self.name {
            s.name = validate::name("name", name, MAX_NAME)?;
        }
        match self.description {
            None => {}
            Some(None) => s.description = None,
            Some(Some(d)) => {
                s.description = Some(validate::text("description", &d, MAX_DESCRIPTION)?)
            }
        }
        if let Some(uri) = &self.webhook_uri {
            s.webhook_uri = validate::webhook_uri("webhookUri", uri, rules.policy)?;
        }
        if let Some(ct) = &self.content_type {
            s.content_type = match ct.trim() {
                "json" | "application/json" => "json".to_string(),
                other => {
                    return Err(Invalid::new(
                        "contentType",
                        format!("`{other}` is not supported; use `json`"),
                    ));
                }
            };
        }
        if let Some(code) = self.expected_response_code {
            s.expected_response_code = validate::status_code("expectedResponseCode", code)?;
        }
        if let Some(active) = self.active {
            s.active = active;
        }
        if let Some(t) = self.timeout_ms {
            let max = i64::from(millis(rules.max_timeout));
            s.timeout_ms = bounded("timeoutMs", t, MIN_TIMEOUT_MS, max)?;
        }
        if let Some(policy) = self.retry_policy {
            s.retry_policy = policy;
        }
        if let Some(n) = self.max_attempts {
            s.max_attempts = bounded("maxAttempts", n, 1, MAX_ATTEMPTS)?;
        }
        if let Some(secs) = self.retry_interval_secs {
            s.retry_interval_secs = bounded("retryIntervalSeconds", secs, 1, MAX_INTERVAL_SECS)?;
        }
        if let Some(schemes) = self.signature_schemes {
            s.signature_schemes = SignatureSchemes::of(schemes).ok_or_else(|| {
                Invalid::new("signatureSchemes", "needs at least one signature scheme")
            })?;
        }
        match self.basic_auth {
            None => {}
            Some(None) => {
                s.basic_auth_username = None;
                s.basic_auth_password = None;
            }
            Some(Some(auth)) => {
                let (user, password) = basic_auth(&auth, rules.secrets)?;
                s.basic_auth_username = Some(user);
                s.basic_auth_password = Some(password);
            }
        }
        if let Some(ordered) = self.ordered {
            s.ordered = ordered;
        }
        match self.max_concurrency {
            None => {}
            Some(None) => s.max_concurrency = None,
            Some(Some(c)) => {
                s.max_concurrency = Some(bounded("maxConcurrency", c, 1, MAX_CONCURRENCY)?)
            }
        }
        if let Some(mode) = self.plugin_failure_mode {
            s.plugin_failure_mode = mode;
        }
        match self.rate_limit_per_second {
            None => {}
            Some(None) => s.rate_limit_per_second = None,
            Some(Some(r)) => {
                s.rate_limit_per_second = Some(bounded("rateLimitPerSecond", r, 1, MAX_RATE_LIMIT)?)
            }
        }
        if s.basic_auth_username.is_some() && s.egress.oauth2_token_url.is_some() {
            let field = if oauth2_given || !auth_given {
                "oauth2"
            } else {
                "basicAuth"
            };
            return Err(Invalid::new(
                field,
                "cannot be used with both basicAuth and oauth2: each sends the Authorization header; remove one (set it to null) first",
            ));
        }
        Ok(s)
    }
}

fn bounded(field: &str, value: i32, min: i64, max: i64) -> Result<i32, Invalid> {
    let v = validate::range(field, i64::from(value), min, max)?;
    Ok(i32::try_from(v).unwrap_or(value))
}

fn basic_auth(auth: &BasicAuthSpec, secrets: &SecretBox) -> Result<(String, String), Invalid> {
    let user = validate::name("basicAuth.username", &auth.username, 256)?;
    if user.contains(':') {
        return Err(Invalid::new("basicAuth.username", "must not contain `:`"));
    }
    if auth.password.len() > 1024 || auth.password.chars().any(char::is_control) {
        return Err(Invalid::new(
            "basicAuth.password",
            "must be at most 1024 characters without control characters",
        ));
    }
    Ok((user, secrets.seal(&auth.password)))
}

/// Checks a new receiver's headers (names unique, case-insensitively) and
/// seals their values.
fn checked_headers(
    given: &[(String, String)],
    secrets: &SecretBox,
) -> Result<Vec<(String, String)>, Invalid> {
    let mut headers: Vec<(String, String)> = Vec::with_capacity(given.len());
    for (i, (key, value)) in given.iter().enumerate() {
        let (key, value) = validate::header(&format!("headers[{i}]"), key, value)?;
        if headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(&key)) {
            return Err(Invalid::new(
                format!("headers[{i}].key"),
                format!("`{key}` is given twice"),
            ));
        }
        headers.push((key, secrets.seal(&value)));
    }
    Ok(headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules<'a>(policy: &'a Policy, secrets: &'a SecretBox) -> ReceiverRules<'a> {
        ReceiverRules {
            policy,
            default_timeout: Duration::from_secs(5),
            max_timeout: Duration::from_secs(60),
            secrets,
        }
    }

    fn spec() -> ReceiverSpec {
        ReceiverSpec {
            name: Some(" ERP ".into()),
            webhook_uri: Some("https://erp.example.com/hooks".into()),
            ..Default::default()
        }
    }

    #[test]
    fn a_new_receiver_gets_the_defaults() {
        let (policy, secrets) = (Policy::default(), SecretBox::new(None));
        let new = spec().create(&rules(&policy, &secrets)).unwrap();
        let s = new.settings;
        assert_eq!(s.name, "ERP");
        assert_eq!(
            (s.retry_policy, s.max_attempts),
            (RetryPolicy::Exponential, 8)
        );
        assert_eq!(s.timeout_ms, 5000);
        assert_eq!(s.signature_schemes, SignatureSchemes::default());
        let fixed = ReceiverSpec {
            retry_policy: Some(RetryPolicy::Fixed),
            ..spec()
        };
        assert_eq!(
            fixed
                .create(&rules(&policy, &secrets))
                .unwrap()
                .settings
                .max_attempts,
            4
        );
    }

    #[test]
    fn every_rule_names_its_field() {
        let (policy, secrets) = (Policy::default(), SecretBox::new(None));
        let cases = [
            (
                ReceiverSpec {
                    name: None,
                    ..spec()
                },
                "name",
            ),
            (
                ReceiverSpec {
                    webhook_uri: Some("http://x.example.com/".into()),
                    ..spec()
                },
                "webhookUri",
            ),
            (
                ReceiverSpec {
                    timeout_ms: Some(61_000),
                    ..spec()
                },
                "timeoutMs",
            ),
            (
                ReceiverSpec {
                    max_attempts: Some(0),
                    ..spec()
                },
                "maxAttempts",
            ),
            (
                ReceiverSpec {
                    max_concurrency: Some(Some(0)),
                    ..spec()
                },
                "maxConcurrency",
            ),
            (
                ReceiverSpec {
                    rate_limit_per_second: Some(Some(0)),
                    ..spec()
                },
                "rateLimitPerSecond",
            ),
            (
                ReceiverSpec {
                    signature_schemes: Some(vec![]),
                    ..spec()
                },
                "signatureSchemes",
            ),
            (
                ReceiverSpec {
                    content_type: Some("xml".into()),
                    ..spec()
                },
                "contentType",
            ),
            (
                ReceiverSpec {
                    headers: vec![("X-A".into(), "1".into()), ("x-a".into(), "2".into())],
                    ..spec()
                },
                "headers[1].key",
            ),
            (
                ReceiverSpec {
                    basic_auth: Some(Some(BasicAuthSpec {
                        username: "a:b".into(),
                        password: "p".into(),
                    })),
                    ..spec()
                },
                "basicAuth.username",
            ),
        ];
        for (spec, field) in cases {
            let err = spec.create(&rules(&policy, &secrets)).unwrap_err();
            assert_eq!(err.field, field, "{err}");
        }
    }

    #[test]
    fn an_update_changes_only_what_it_names() {
        let (policy, secrets) = (Policy::default(), SecretBox::new(None));
        let r = rules(&policy, &secrets);
        let current = spec().create(&r).unwrap().settings;
        let changed = ReceiverSpec {
            max_concurrency: Some(Some(4)),
            description: Some(Some("orders".into())),
            ..Default::default()
        }
        .update(&current, &r)
        .unwrap();
        assert_eq!(changed.max_concurrency, Some(4));
        assert_eq!(changed.description.as_deref(), Some("orders"));
        assert_eq!(changed.webhook_uri, current.webhook_uri);
        let cleared = ReceiverSpec {
            max_concurrency: Some(None),
            ..Default::default()
        }
        .update(&changed, &r)
        .unwrap();
        assert_eq!(cleared.max_concurrency, None);
    }
}
