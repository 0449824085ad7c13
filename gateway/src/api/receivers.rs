//! `WebhookReceiver`: create, read, update, delete, headers, secret rotation,
//! pause and resume.

use async_graphql::{Context, Enum, ID, InputObject, MaybeUndefined, Object, SimpleObject};

use super::context::{admin, api, caller};
use super::error::{Error, FieldResult, Result};
use super::events::WebhookEvent;
use super::scalars::{id, parse_id};
use super::subscriptions::WebhookSubscription;
use super::validate;
use crate::store::deliveries::EventFilter;
use crate::store::receivers::{HeaderRow, ReceiverFields, ReceiverRow};
use crate::timefmt::format_ms;

/// How failed deliveries are retried.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryPolicy {
    /// Exponential backoff with jitter (default: 8 attempts over about a day).
    Exponential,
    /// A fixed interval (Inspectorio: 3 more tries, 60 s apart).
    Fixed,
}

impl RetryPolicy {
    fn as_str(self) -> &'static str {
        match self {
            RetryPolicy::Exponential => "exponential",
            RetryPolicy::Fixed => "fixed",
        }
    }

    fn parse(s: &str) -> Self {
        if s == "fixed" {
            RetryPolicy::Fixed
        } else {
            RetryPolicy::Exponential
        }
    }
}

/// Signature headers a receiver gets.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureScheme {
    /// `x-ion-signature`, exactly as ION computes it.
    Ion,
    /// Standard Webhooks `webhook-id`/`webhook-timestamp`/`webhook-signature`.
    Standard,
}

/// What happens when the receiver's plugin fails.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum PluginFailureMode {
    /// The event ends with status `plugin_error`.
    Fail,
    /// The original, untransformed body is delivered.
    DeliverOriginal,
}

impl PluginFailureMode {
    fn as_str(self) -> &'static str {
        match self {
            PluginFailureMode::Fail => "fail",
            PluginFailureMode::DeliverOriginal => "deliver_original",
        }
    }

    fn parse(s: &str) -> Self {
        if s == "deliver_original" {
            PluginFailureMode::DeliverOriginal
        } else {
            PluginFailureMode::Fail
        }
    }
}

/// A custom header sent with every delivery. Values are often credentials
/// (`X-Api-Key`): they are encrypted at rest and shown in full only in the
/// response of the mutation that set them; everywhere else, masked.
#[derive(SimpleObject, Debug, Clone)]
pub struct WebhookHeader {
    /// Id.
    pub id: ID,
    /// Header name.
    pub key: String,
    /// Header value: in full only in the response that set it, masked
    /// (`********` and at most its last four characters) afterwards.
    pub value: String,
}

impl WebhookHeader {
    /// A stored header, its value masked.
    pub fn masked(h: HeaderRow, secrets: &crate::secrets::SecretBox) -> Self {
        let value = match secrets.open(&h.value) {
            Ok(plain) => crate::secrets::mask_header_value(plain.expose()),
            Err(_) => "******** (encrypted with another CHANGEWIRE_SECRET_KEY)".into(),
        };
        WebhookHeader {
            id: id(h.id),
            key: h.key,
            value,
        }
    }

    /// A header just set, with the value the caller gave (shown this once).
    fn revealed(h: HeaderRow, plain: String) -> Self {
        WebhookHeader {
            id: id(h.id),
            key: h.key,
            value: plain,
        }
    }
}

/// Who created an object.
#[derive(SimpleObject, Debug, Clone)]
pub struct CreatedBy {
    /// The API key id (`admin` for the bootstrap token).
    pub id: ID,
    /// The API key name.
    pub name: String,
}

/// Basic authentication credentials' public half.
#[derive(SimpleObject, Debug, Clone)]
pub struct BasicAuth {
    /// User name (the password is never returned).
    pub username: String,
}

/// A registered endpoint that receives webhooks.
pub struct WebhookReceiver {
    row: ReceiverRow,
    /// The plaintext secret, shown only in the creation or rotation response.
    revealed_secret: Option<String>,
    /// Custom header values as given, shown only in the creation response.
    revealed_headers: Vec<(String, String)>,
}

impl WebhookReceiver {
    /// Wraps a stored receiver (secret masked).
    pub fn new(row: ReceiverRow) -> Self {
        WebhookReceiver {
            row,
            revealed_secret: None,
            revealed_headers: Vec::new(),
        }
    }
}

#[Object]
impl WebhookReceiver {
    /// Id.
    async fn id(&self) -> ID {
        id(self.row.id)
    }

    /// Tag for optimistic concurrency: pass it as `etag` to update or delete.
    #[graphql(name = "_etag")]
    async fn etag(&self) -> &str {
        &self.row.etag
    }

    /// Name.
    async fn name(&self) -> &str {
        &self.row.fields.name
    }

    /// Description.
    async fn description(&self) -> Option<&str> {
        self.row.fields.description.as_deref()
    }

    /// Where deliveries are POSTed: the string the ION signature covers (scheme and host
    /// normalised at registration, path and query exactly as registered).
    async fn webhook_uri(&self) -> &str {
        &self.row.fields.webhook_uri
    }

    /// The HMAC secret: in full only in the creation or rotation response, masked afterwards.
    async fn shared_secret(&self, ctx: &Context<'_>) -> FieldResult<String> {
        if let Some(secret) = &self.revealed_secret {
            return Ok(secret.clone());
        }
        Ok(api(ctx).secrets.open(&self.row.shared_secret)?.masked())
    }

    /// When the previous secret (of a rotation) stops signing.
    async fn previous_secret_expires_at(&self) -> Option<String> {
        match (
            self.row.previous_secret.as_ref(),
            self.row.previous_secret_expires_at,
        ) {
            (Some(_), Some(at)) if at > crate::store::now_ms() => Some(format_ms(at)),
            _ => None,
        }
    }

    /// Content type of deliveries (`json`).
    async fn content_type(&self) -> &str {
        &self.row.fields.content_type
    }

    /// The status that counts as success (default 200).
    async fn expected_response_code(&self) -> i32 {
        self.row.fields.expected_response_code
    }

    /// Whether new events are fanned out to it.
    async fn active(&self) -> bool {
        self.row.fields.active
    }

    /// Whether delivery is paused (manually, or by the circuit breaker); pending events wait.
    async fn paused(&self) -> bool {
        self.row.paused || self.row.circuit_open_until.is_some()
    }

    /// Why delivery is paused.
    async fn paused_reason(&self) -> Option<&str> {
        self.row.paused_reason.as_deref()
    }

    /// `CLOSED` (healthy), `OPEN` (paused after repeated failures; probed with backoff).
    async fn circuit_state(&self) -> &'static str {
        if self.row.circuit_open_until.is_some() {
            "OPEN"
        } else {
            "CLOSED"
        }
    }

    /// When the circuit breaker next probes the receiver.
    async fn next_probe_at(&self) -> Option<String> {
        self.row.circuit_open_until.map(format_ms)
    }

    /// Consecutive failed attempts.
    async fn consecutive_failures(&self) -> i32 {
        self.row.consecutive_failures
    }

    /// Request timeout, in milliseconds.
    async fn timeout_ms(&self) -> i32 {
        self.row.fields.timeout_ms
    }

    /// Retry policy.
    async fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy::parse(&self.row.fields.retry_policy)
    }

    /// Attempts before an event is `failed`.
    async fn max_attempts(&self) -> i32 {
        self.row.fields.max_attempts
    }

    /// Interval of the FIXED policy, in seconds.
    async fn retry_interval_seconds(&self) -> i32 {
        self.row.fields.retry_interval_secs
    }

    /// Signature headers sent.
    async fn signature_schemes(&self) -> Vec<SignatureScheme> {
        schemes_from(&self.row.fields.signature_schemes)
    }

    /// Basic authentication, when configured.
    async fn basic_auth(&self) -> Option<BasicAuth> {
        self.row
            .fields
            .basic_auth_username
            .clone()
            .map(|username| BasicAuth { username })
    }

    /// Deliveries for the same row are sent one at a time, in commit order.
    async fn ordered(&self) -> bool {
        self.row.fields.ordered
    }

    /// Concurrent requests to this receiver (null: the gateway default).
    async fn max_concurrency(&self) -> Option<i32> {
        self.row.fields.max_concurrency
    }

    /// What happens when the receiver's plugin fails.
    async fn plugin_failure_mode(&self) -> PluginFailureMode {
        PluginFailureMode::parse(&self.row.fields.plugin_failure_mode)
    }

    /// Subscriptions of this receiver.
    #[graphql(
        complexity = "super::limits::bounded(super::limits::SUBSCRIPTIONS_PER_RECEIVER, child_complexity)"
    )]
    async fn subscriptions(&self, ctx: &Context<'_>) -> FieldResult<Vec<WebhookSubscription>> {
        caller(ctx)?;
        let filter = crate::store::subscriptions::SubscriptionFilter {
            receiver_id: Some(self.row.id),
            ..Default::default()
        };
        let rows = api(ctx)
            .store
            .subscriptions_page(&filter, 0, 10_000)
            .await?;
        Ok(rows.into_iter().map(WebhookSubscription::new).collect())
    }

    /// Custom headers sent with every delivery: values masked, except in the
    /// response of the mutation that created the receiver.
    #[graphql(
        complexity = "super::limits::bounded(super::limits::HEADERS_PER_RECEIVER, child_complexity)"
    )]
    async fn headers(&self, ctx: &Context<'_>) -> FieldResult<Vec<WebhookHeader>> {
        caller(ctx)?;
        let state = api(ctx);
        let rows = state.store.receiver_headers(self.row.id).await?;
        Ok(rows
            .into_iter()
            .map(|h| {
                let given = self
                    .revealed_headers
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(&h.key));
                match given {
                    Some((_, plain)) => WebhookHeader::revealed(h, plain.clone()),
                    None => WebhookHeader::masked(h, &state.secrets),
                }
            })
            .collect())
    }

    /// Recent events of this receiver, newest first.
    #[graphql(complexity = "super::limits::list(first, child_complexity)")]
    async fn events(
        &self,
        ctx: &Context<'_>,
        status: Option<String>,
        #[graphql(default = 50)] first: i32,
    ) -> FieldResult<Vec<WebhookEvent>> {
        caller(ctx)?;
        let status = super::events::check_status("status", status)?;
        let limit = super::events::page_size(ctx, first)?;
        let filter = EventFilter {
            receiver_id: Some(self.row.id),
            status,
            ..Default::default()
        };
        let rows = api(ctx).store.events_page(&filter, 0, limit).await?;
        Ok(rows.into_iter().map(WebhookEvent::new).collect())
    }

    /// The WebAssembly plugin attached to it, if any.
    async fn plugin(
        &self,
        ctx: &Context<'_>,
    ) -> FieldResult<Option<super::plugins::WebhookPlugin>> {
        caller(ctx)?;
        let state = api(ctx);
        Ok(state
            .store
            .plugin_for(self.row.id)
            .await?
            .map(|row| super::plugins::WebhookPlugin::new(row, &state.plugins)))
    }

    /// Who created it.
    async fn created_by(&self) -> Option<CreatedBy> {
        Some(CreatedBy {
            id: ID(self.row.created_by_id.clone()?),
            name: self.row.created_by_name.clone().unwrap_or_default(),
        })
    }

    /// Created.
    async fn created_at(&self) -> String {
        format_ms(self.row.created_at)
    }

    /// Last changed.
    async fn updated_at(&self) -> String {
        format_ms(self.row.updated_at)
    }
}

fn schemes_from(stored: &str) -> Vec<SignatureScheme> {
    stored
        .split(',')
        .filter_map(|s| match s.trim() {
            "ion" => Some(SignatureScheme::Ion),
            "standard" => Some(SignatureScheme::Standard),
            _ => None,
        })
        .collect()
}

fn schemes_to(field: &str, schemes: &[SignatureScheme]) -> Result<String> {
    if schemes.is_empty() {
        return Err(Error::bad_input(
            field,
            "at least one signature scheme is required",
        ));
    }
    let mut names: Vec<&str> = schemes
        .iter()
        .map(|s| match s {
            SignatureScheme::Ion => "ion",
            SignatureScheme::Standard => "standard",
        })
        .collect();
    names.dedup();
    Ok(names.join(","))
}

/// A header given at creation.
#[derive(InputObject, Debug, Clone)]
pub struct WebhookHeaderInput {
    /// Header name.
    pub key: String,
    /// Header value.
    pub value: String,
}

/// Basic authentication credentials.
#[derive(InputObject, Debug, Clone)]
pub struct BasicAuthInput {
    /// User name.
    pub username: String,
    /// Password (stored encrypted when CHANGEWIRE_SECRET_KEY is set; never returned).
    pub password: String,
}

/// Input of `createWebhookReceiver`.
#[derive(InputObject, Debug, Clone)]
pub struct CreateWebhookReceiverInput {
    /// Name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Where deliveries are POSTed (https unless the gateway allows http).
    pub webhook_uri: String,
    /// Content type (`json`).
    pub content_type: Option<String>,
    /// The status that counts as success (default 200).
    pub expected_response_code: Option<i32>,
    /// Whether new events fan out to it (default true).
    pub active: Option<bool>,
    /// Custom headers.
    pub headers: Option<Vec<WebhookHeaderInput>>,
    /// Basic authentication.
    pub basic_auth: Option<BasicAuthInput>,
    /// Request timeout in milliseconds (default 5000; at most the gateway's maximum).
    pub timeout_ms: Option<i32>,
    /// Retry policy (default EXPONENTIAL).
    pub retry_policy: Option<RetryPolicy>,
    /// Attempts before `failed` (default 8 for EXPONENTIAL, 4 for FIXED).
    pub max_attempts: Option<i32>,
    /// Interval of the FIXED policy in seconds (default 60).
    pub retry_interval_seconds: Option<i32>,
    /// Signature headers (default [ION]).
    pub signature_schemes: Option<Vec<SignatureScheme>>,
    /// Deliver events of one row one at a time, in commit order (default false).
    pub ordered: Option<bool>,
    /// Concurrent requests (default: the gateway's).
    pub max_concurrency: Option<i32>,
    /// What happens when a plugin fails (default FAIL).
    pub plugin_failure_mode: Option<PluginFailureMode>,
}

/// Input of `updateWebhookReceiver`: fields left out stay as they are.
#[derive(InputObject, Debug, Clone)]
pub struct UpdateWebhookReceiverInput {
    /// Id.
    pub id: ID,
    /// The `_etag` last read; a stale one is refused with CONFLICT.
    pub etag: String,
    /// Name.
    pub name: Option<String>,
    /// Description (null clears it).
    pub description: MaybeUndefined<String>,
    /// URL.
    pub webhook_uri: Option<String>,
    /// Content type.
    pub content_type: Option<String>,
    /// Success status.
    pub expected_response_code: Option<i32>,
    /// Whether new events fan out to it.
    pub active: Option<bool>,
    /// Basic authentication (null removes it).
    pub basic_auth: MaybeUndefined<BasicAuthInput>,
    /// Timeout, ms.
    pub timeout_ms: Option<i32>,
    /// Retry policy.
    pub retry_policy: Option<RetryPolicy>,
    /// Attempts.
    pub max_attempts: Option<i32>,
    /// FIXED interval, seconds.
    pub retry_interval_seconds: Option<i32>,
    /// Signature schemes.
    pub signature_schemes: Option<Vec<SignatureScheme>>,
    /// Per-row ordering.
    pub ordered: Option<bool>,
    /// Concurrency (null: the gateway default).
    pub max_concurrency: MaybeUndefined<i32>,
    /// Plugin failure mode.
    pub plugin_failure_mode: Option<PluginFailureMode>,
}

/// Identifies an object at a version.
#[derive(InputObject, Debug, Clone)]
pub struct DeleteWebhookReceiverInput {
    /// Id.
    pub id: ID,
    /// The `_etag` last read.
    pub etag: String,
}

/// Input of `addHeaderToWebhookReceiver`.
#[derive(InputObject, Debug, Clone)]
pub struct AddHeaderToWebhookReceiverInput {
    /// Receiver.
    pub receiver_id: ID,
    /// Header name.
    pub key: String,
    /// Header value (encrypted at rest; shown in full only in this
    /// mutation's response).
    pub value: String,
    /// Replace a header of the same name (default: refuse it).
    pub replace: Option<bool>,
}

/// Input of `removeHeaderFromWebhookReceiver`.
#[derive(InputObject, Debug, Clone)]
pub struct RemoveHeaderFromWebhookReceiverInput {
    /// The header's id.
    pub id: ID,
}

/// Input of `rotateWebhookReceiverSecret`.
#[derive(InputObject, Debug, Clone)]
pub struct RotateWebhookReceiverSecretInput {
    /// Receiver.
    pub id: ID,
    /// The `_etag` last read.
    pub etag: String,
    /// How long the old secret keeps signing alongside the new one, in seconds
    /// (default 86400; 0 switches at once; at most 30 days).
    pub overlap_seconds: Option<i32>,
}

/// Input of `pauseWebhookReceiver`.
#[derive(InputObject, Debug, Clone)]
pub struct PauseWebhookReceiverInput {
    /// Receiver.
    pub id: ID,
    /// The `_etag` last read.
    pub etag: String,
    /// Why (shown as `pausedReason`).
    pub reason: Option<String>,
}

/// Input of `resumeWebhookReceiver`.
#[derive(InputObject, Debug, Clone)]
pub struct ResumeWebhookReceiverInput {
    /// Receiver.
    pub id: ID,
    /// The `_etag` last read.
    pub etag: String,
}

/// Payload carrying a receiver.
#[derive(SimpleObject)]
pub struct WebhookReceiverPayload {
    /// The receiver.
    pub webhook_receiver: WebhookReceiver,
}

/// Payload of `deleteWebhookReceiver`.
#[derive(SimpleObject)]
pub struct DeleteWebhookReceiverPayload {
    /// The deleted receiver's id.
    pub id: ID,
}

/// Payload of `addHeaderToWebhookReceiver`.
#[derive(SimpleObject)]
pub struct AddHeaderPayload {
    /// The new header.
    pub webhook_header: WebhookHeader,
    /// Its receiver.
    pub webhook_receiver: WebhookReceiver,
}

/// Payload of `rotateWebhookReceiverSecret`.
#[derive(SimpleObject)]
pub struct RotateSecretPayload {
    /// The receiver; `sharedSecret` holds the new secret in full, this once.
    pub webhook_receiver: WebhookReceiver,
    /// Until when the previous secret keeps signing (null: not at all).
    pub previous_secret_expires_at: Option<String>,
}

/// Receiver queries.
#[derive(Default)]
pub struct ReceiverQuery;

#[Object]
impl ReceiverQuery {
    /// Receivers, oldest first.
    #[graphql(complexity = "super::limits::connection(first, child_complexity)")]
    async fn webhook_receivers(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> FieldResult<super::pagination::Page<WebhookReceiver>> {
        caller(ctx)?;
        let store = &api(ctx).store;
        let limit = super::events::page_size(ctx, first.unwrap_or(100))?;
        let after_id = super::pagination::decode_cursor("after", after.as_deref())?;
        let mut rows = store.receivers_page(after_id, limit + 1).await?;
        let has_next = rows.len() as i64 > limit;
        rows.truncate(limit as usize);
        let total = store.receiver_count().await?;
        Ok(super::pagination::page(
            rows.into_iter()
                .map(|r| (r.id, WebhookReceiver::new(r)))
                .collect(),
            has_next,
            after_id > 0,
            total,
        ))
    }

    /// One receiver.
    async fn webhook_receiver(&self, ctx: &Context<'_>, id: ID) -> FieldResult<WebhookReceiver> {
        caller(ctx)?;
        let rid = parse_id("id", &id)?;
        let row = api(ctx).store.receiver(rid).await?.ok_or(Error::NotFound {
            entity: "receiver",
            id: rid.to_string(),
        })?;
        Ok(WebhookReceiver::new(row))
    }
}

/// Receiver mutations.
#[derive(Default)]
pub struct ReceiverMutation;

/// Settings shared by the create and update inputs.
struct CommonSettings<'a> {
    content_type: Option<&'a str>,
    expected: Option<i32>,
    timeout_ms: Option<i32>,
    max_attempts: Option<i32>,
    interval: Option<i32>,
    concurrency: Option<i32>,
}

fn apply_common(
    ctx: &Context<'_>,
    f: &mut ReceiverFields,
    settings: CommonSettings<'_>,
) -> Result<()> {
    let CommonSettings {
        content_type,
        expected,
        timeout_ms,
        max_attempts,
        interval,
        concurrency,
    } = settings;
    let cfg = &api(ctx).config;
    if let Some(ct) = content_type {
        f.content_type = match ct.trim() {
            "json" | "application/json" => "json".to_string(),
            other => {
                return Err(Error::bad_input(
                    "input.contentType",
                    format!("`{other}` is not supported; use `json`"),
                ));
            }
        };
    }
    if let Some(code) = expected {
        f.expected_response_code = validate::status_code("input.expectedResponseCode", code)?;
    }
    if let Some(t) = timeout_ms {
        let max = i64::try_from(cfg.delivery.max_timeout.as_millis()).unwrap_or(60_000);
        f.timeout_ms = validate::range("input.timeoutMs", i64::from(t), 100, max)? as i32;
    }
    if let Some(n) = max_attempts {
        f.max_attempts = validate::range("input.maxAttempts", i64::from(n), 1, 50)? as i32;
    }
    if let Some(s) = interval {
        f.retry_interval_secs =
            validate::range("input.retryIntervalSeconds", i64::from(s), 1, 86_400)? as i32;
    }
    if let Some(c) = concurrency {
        validate::range("input.maxConcurrency", i64::from(c), 1, 1000)?;
    }
    Ok(())
}

fn basic_auth(ctx: &Context<'_>, input: &BasicAuthInput) -> Result<(String, String)> {
    let user = validate::name("input.basicAuth.username", &input.username, 256)?;
    if user.contains(':') {
        return Err(Error::bad_input(
            "input.basicAuth.username",
            "must not contain `:`",
        ));
    }
    if input.password.len() > 1024 || input.password.chars().any(char::is_control) {
        return Err(Error::bad_input(
            "input.basicAuth.password",
            "must be at most 1024 characters without control characters",
        ));
    }
    Ok((user, api(ctx).secrets.seal(&input.password)))
}

#[Object]
impl ReceiverMutation {
    /// Registers a receiver. The response carries `sharedSecret` in full, once.
    async fn create_webhook_receiver(
        &self,
        ctx: &Context<'_>,
        input: CreateWebhookReceiverInput,
    ) -> FieldResult<WebhookReceiverPayload> {
        let caller = admin(ctx)?;
        let state = api(ctx);
        let cfg = &state.config;
        let retry_policy = input.retry_policy.unwrap_or(RetryPolicy::Exponential);
        let mut fields = ReceiverFields {
            name: validate::name("input.name", &input.name, 200)?,
            description: input
                .description
                .as_deref()
                .map(|d| validate::text("input.description", d, 2000))
                .transpose()?,
            webhook_uri: validate::webhook_uri(
                "input.webhookUri",
                &input.webhook_uri,
                &state.policy,
            )?,
            content_type: "json".into(),
            expected_response_code: 200,
            active: input.active.unwrap_or(true),
            timeout_ms: i32::try_from(cfg.delivery.default_timeout.as_millis()).unwrap_or(5000),
            retry_policy: retry_policy.as_str().into(),
            max_attempts: if retry_policy == RetryPolicy::Fixed {
                4
            } else {
                8
            },
            retry_interval_secs: 60,
            signature_schemes: "ion".into(),
            basic_auth_username: None,
            basic_auth_password: None,
            ordered: input.ordered.unwrap_or(false),
            max_concurrency: input.max_concurrency,
            plugin_failure_mode: input
                .plugin_failure_mode
                .unwrap_or(PluginFailureMode::Fail)
                .as_str()
                .into(),
        };
        apply_common(
            ctx,
            &mut fields,
            CommonSettings {
                content_type: input.content_type.as_deref(),
                expected: input.expected_response_code,
                timeout_ms: input.timeout_ms,
                max_attempts: input.max_attempts,
                interval: input.retry_interval_seconds,
                concurrency: input.max_concurrency,
            },
        )?;
        if let Some(schemes) = &input.signature_schemes {
            fields.signature_schemes = schemes_to("input.signatureSchemes", schemes)?;
        }
        if let Some(auth) = &input.basic_auth {
            let (u, p) = basic_auth(ctx, auth)?;
            fields.basic_auth_username = Some(u);
            fields.basic_auth_password = Some(p);
        }
        let mut headers = Vec::new();
        for (i, h) in input.headers.iter().flatten().enumerate() {
            let pair = validate::header(&format!("input.headers[{i}]"), &h.key, &h.value)?;
            if headers
                .iter()
                .any(|(k, _): &(String, String)| k.eq_ignore_ascii_case(&pair.0))
            {
                return Err(Error::bad_input(
                    format!("input.headers[{i}].key"),
                    format!("`{}` is given twice", pair.0),
                )
                .into());
            }
            headers.push(pair);
        }
        let sealed_headers: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| (k.clone(), state.secrets.seal(v)))
            .collect();
        let secret = crate::secrets::generate_receiver_secret();
        let row = state
            .store
            .insert_receiver(
                &fields,
                &state.secrets.seal(secret.expose()),
                &caller.actor,
                &sealed_headers,
            )
            .await?;
        state.signals.receivers_changed();
        Ok(WebhookReceiverPayload {
            webhook_receiver: WebhookReceiver {
                row,
                revealed_secret: Some(secret.expose().to_string()),
                revealed_headers: headers,
            },
        })
    }

    /// Changes a receiver; `etag` must be its current `_etag`.
    async fn update_webhook_receiver(
        &self,
        ctx: &Context<'_>,
        input: UpdateWebhookReceiverInput,
    ) -> FieldResult<WebhookReceiverPayload> {
        admin(ctx)?;
        let state = api(ctx);
        let rid = parse_id("input.id", &input.id)?;
        let current = state.store.receiver(rid).await?.ok_or(Error::NotFound {
            entity: "receiver",
            id: rid.to_string(),
        })?;
        let mut f = current.fields.clone();
        if let Some(name) = &input.name {
            f.name = validate::name("input.name", name, 200)?;
        }
        match &input.description {
            MaybeUndefined::Undefined => {}
            MaybeUndefined::Null => f.description = None,
            MaybeUndefined::Value(d) => {
                f.description = Some(validate::text("input.description", d, 2000)?)
            }
        }
        if let Some(uri) = &input.webhook_uri {
            f.webhook_uri = validate::webhook_uri("input.webhookUri", uri, &state.policy)?;
        }
        if let Some(active) = input.active {
            f.active = active;
        }
        if let Some(p) = input.retry_policy {
            f.retry_policy = p.as_str().into();
        }
        apply_common(
            ctx,
            &mut f,
            CommonSettings {
                content_type: input.content_type.as_deref(),
                expected: input.expected_response_code,
                timeout_ms: input.timeout_ms,
                max_attempts: input.max_attempts,
                interval: input.retry_interval_seconds,
                concurrency: input.max_concurrency.as_opt_ref().flatten().copied(),
            },
        )?;
        match &input.max_concurrency {
            MaybeUndefined::Undefined => {}
            MaybeUndefined::Null => f.max_concurrency = None,
            MaybeUndefined::Value(c) => f.max_concurrency = Some(*c),
        }
        if let Some(schemes) = &input.signature_schemes {
            f.signature_schemes = schemes_to("input.signatureSchemes", schemes)?;
        }
        match &input.basic_auth {
            MaybeUndefined::Undefined => {}
            MaybeUndefined::Null => {
                f.basic_auth_username = None;
                f.basic_auth_password = None;
            }
            MaybeUndefined::Value(auth) => {
                let (u, p) = basic_auth(ctx, auth)?;
                f.basic_auth_username = Some(u);
                f.basic_auth_password = Some(p);
            }
        }
        if let Some(o) = input.ordered {
            f.ordered = o;
        }
        if let Some(m) = input.plugin_failure_mode {
            f.plugin_failure_mode = m.as_str().into();
        }
        let row = state.store.update_receiver(rid, &input.etag, &f).await?;
        state.signals.receivers_changed();
        Ok(WebhookReceiverPayload {
            webhook_receiver: WebhookReceiver::new(row),
        })
    }

    /// Deletes a receiver with its subscriptions, headers, plugin and events.
    async fn delete_webhook_receiver(
        &self,
        ctx: &Context<'_>,
        input: DeleteWebhookReceiverInput,
    ) -> FieldResult<DeleteWebhookReceiverPayload> {
        admin(ctx)?;
        let state = api(ctx);
        let rid = parse_id("input.id", &input.id)?;
        state.store.delete_receiver(rid, &input.etag).await?;
        state.signals.receivers_changed();
        Ok(DeleteWebhookReceiverPayload { id: id(rid) })
    }

    /// Adds (or, with `replace`, replaces) a header sent with every delivery
    /// to this receiver. Its value is shown in full in this response only.
    async fn add_header_to_webhook_receiver(
        &self,
        ctx: &Context<'_>,
        input: AddHeaderToWebhookReceiverInput,
    ) -> FieldResult<AddHeaderPayload> {
        admin(ctx)?;
        let state = api(ctx);
        let rid = parse_id("input.receiverId", &input.receiver_id)?;
        let (key, value) = validate::header("input", &input.key, &input.value)?;
        if state.store.receiver(rid).await?.is_none() {
            return Err(Error::NotFound {
                entity: "receiver",
                id: rid.to_string(),
            }
            .into());
        }
        let header = state
            .store
            .add_receiver_header(
                rid,
                &key,
                &state.secrets.seal(&value),
                input.replace.unwrap_or(false),
            )
            .await?;
        let row = state.store.receiver(rid).await?.ok_or(Error::NotFound {
            entity: "receiver",
            id: rid.to_string(),
        })?;
        state.signals.receivers_changed();
        Ok(AddHeaderPayload {
            webhook_header: WebhookHeader::revealed(header, value),
            webhook_receiver: WebhookReceiver::new(row),
        })
    }

    /// Removes a custom header.
    async fn remove_header_from_webhook_receiver(
        &self,
        ctx: &Context<'_>,
        input: RemoveHeaderFromWebhookReceiverInput,
    ) -> FieldResult<WebhookReceiverPayload> {
        admin(ctx)?;
        let state = api(ctx);
        let hid = parse_id("input.id", &input.id)?;
        let rid = state.store.remove_receiver_header(hid).await?;
        let row = state.store.receiver(rid).await?.ok_or(Error::NotFound {
            entity: "receiver",
            id: rid.to_string(),
        })?;
        state.signals.receivers_changed();
        Ok(WebhookReceiverPayload {
            webhook_receiver: WebhookReceiver::new(row),
        })
    }

    /// Issues a new secret (returned in full, once). The old secret keeps
    /// signing alongside it (`x-ion-signature`, with the new one in
    /// `x-ion-signature-next`; both in `webhook-signature`) for the overlap.
    async fn rotate_webhook_receiver_secret(
        &self,
        ctx: &Context<'_>,
        input: RotateWebhookReceiverSecretInput,
    ) -> FieldResult<RotateSecretPayload> {
        admin(ctx)?;
        let state = api(ctx);
        let rid = parse_id("input.id", &input.id)?;
        let overlap = validate::range(
            "input.overlapSeconds",
            i64::from(input.overlap_seconds.unwrap_or(86_400)),
            0,
            30 * 86_400,
        )?;
        let current = state.store.receiver(rid).await?.ok_or(Error::NotFound {
            entity: "receiver",
            id: rid.to_string(),
        })?;
        let secret = crate::secrets::generate_receiver_secret();
        let expires = crate::store::now_ms() + overlap * 1000;
        let previous = (overlap > 0).then_some((current.shared_secret.as_str(), expires));
        let row = state
            .store
            .rotate_receiver_secret(
                rid,
                &input.etag,
                &state.secrets.seal(secret.expose()),
                previous,
            )
            .await?;
        state.signals.receivers_changed();
        Ok(RotateSecretPayload {
            previous_secret_expires_at: previous.map(|(_, at)| format_ms(at)),
            webhook_receiver: WebhookReceiver {
                row,
                revealed_secret: Some(secret.expose().to_string()),
                revealed_headers: Vec::new(),
            },
        })
    }

    /// Holds deliveries to a receiver; events keep queueing and nothing is dropped.
    async fn pause_webhook_receiver(
        &self,
        ctx: &Context<'_>,
        input: PauseWebhookReceiverInput,
    ) -> FieldResult<WebhookReceiverPayload> {
        let caller = admin(ctx)?;
        let state = api(ctx);
        let rid = parse_id("input.id", &input.id)?;
        let reason = match &input.reason {
            Some(r) => validate::name("input.reason", r, 500)?,
            None => format!("paused by {}", caller.actor.name),
        };
        let row = state
            .store
            .set_receiver_paused(rid, Some(&input.etag), true, Some(&reason))
            .await?;
        state.signals.receivers_changed();
        Ok(WebhookReceiverPayload {
            webhook_receiver: WebhookReceiver::new(row),
        })
    }

    /// Resumes a receiver paused by hand or by the circuit breaker.
    async fn resume_webhook_receiver(
        &self,
        ctx: &Context<'_>,
        input: ResumeWebhookReceiverInput,
    ) -> FieldResult<WebhookReceiverPayload> {
        admin(ctx)?;
        let state = api(ctx);
        let rid = parse_id("input.id", &input.id)?;
        let row = state
            .store
            .set_receiver_paused(rid, Some(&input.etag), false, None)
            .await?;
        state.signals.receivers_changed();
        Ok(WebhookReceiverPayload {
            webhook_receiver: WebhookReceiver::new(row),
        })
    }
}
