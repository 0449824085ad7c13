//! The `WebhookReceiver` object, its headers, and the GraphQL enums of its
//! settings (each translated to and from the model's type).

use async_graphql::{Context, Enum, ID, Object, SimpleObject};
use changewire_core::Scheme;

use crate::api::context::{api, caller};
use crate::api::error::FieldResult;
use crate::api::events::WebhookEvent;
use crate::api::scalars::{CreatedBy, id};
use crate::api::subscriptions::WebhookSubscription;
use crate::model::{PluginFailureMode, RetryPolicy};
use crate::store::deliveries::EventFilter;
use crate::store::receiver_headers::HeaderRow;
use crate::store::receivers::ReceiverRow;
use crate::timefmt::format_ms;

/// How failed deliveries are retried.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "RetryPolicy")]
pub(crate) enum GqlRetryPolicy {
    /// Exponential backoff with jitter (default: 8 attempts over about a day).
    Exponential,
    /// A fixed interval (Inspectorio: 3 more tries, 60 s apart).
    Fixed,
}

impl From<GqlRetryPolicy> for RetryPolicy {
    fn from(p: GqlRetryPolicy) -> Self {
        match p {
            GqlRetryPolicy::Exponential => RetryPolicy::Exponential,
            GqlRetryPolicy::Fixed => RetryPolicy::Fixed,
        }
    }
}

impl From<RetryPolicy> for GqlRetryPolicy {
    fn from(p: RetryPolicy) -> Self {
        match p {
            RetryPolicy::Exponential => GqlRetryPolicy::Exponential,
            RetryPolicy::Fixed => GqlRetryPolicy::Fixed,
        }
    }
}

/// Signature headers a receiver gets.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "SignatureScheme")]
pub(crate) enum GqlSignatureScheme {
    /// `x-ion-signature`, exactly as ION computes it.
    Ion,
    /// Standard Webhooks `webhook-id`/`webhook-timestamp`/`webhook-signature`
    /// with an HMAC-SHA256 (`v1`) signature.
    Standard,
    /// Standard Webhooks headers with an Ed25519 (`v1a`) signature, verified
    /// with the receiver's `publicKey` (`whpk_…`): the receiver holds no
    /// secret.
    #[graphql(name = "ED25519")]
    Ed25519,
}

impl From<GqlSignatureScheme> for Scheme {
    fn from(s: GqlSignatureScheme) -> Self {
        match s {
            GqlSignatureScheme::Ion => Scheme::Ion,
            GqlSignatureScheme::Standard => Scheme::Standard,
            GqlSignatureScheme::Ed25519 => Scheme::Ed25519,
        }
    }
}

impl GqlSignatureScheme {
    /// The API value of a scheme (None for one this API version does not name).
    fn of(s: Scheme) -> Option<Self> {
        match s {
            Scheme::Ion => Some(GqlSignatureScheme::Ion),
            Scheme::Standard => Some(GqlSignatureScheme::Standard),
            Scheme::Ed25519 => Some(GqlSignatureScheme::Ed25519),
            _ => None,
        }
    }
}

/// What happens when the receiver's plugin fails.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "PluginFailureMode")]
pub(crate) enum GqlPluginFailureMode {
    /// The event ends with status `plugin_error`.
    Fail,
    /// The original, untransformed body is delivered.
    DeliverOriginal,
}

impl From<GqlPluginFailureMode> for PluginFailureMode {
    fn from(m: GqlPluginFailureMode) -> Self {
        match m {
            GqlPluginFailureMode::Fail => PluginFailureMode::Fail,
            GqlPluginFailureMode::DeliverOriginal => PluginFailureMode::DeliverOriginal,
        }
    }
}

impl From<PluginFailureMode> for GqlPluginFailureMode {
    fn from(m: PluginFailureMode) -> Self {
        match m {
            PluginFailureMode::Fail => GqlPluginFailureMode::Fail,
            PluginFailureMode::DeliverOriginal => GqlPluginFailureMode::DeliverOriginal,
        }
    }
}

/// A custom header sent with every delivery. Values are often credentials
/// (`X-Api-Key`): they are encrypted at rest and shown in full only in the
/// response of the mutation that set them; everywhere else, masked.
#[derive(SimpleObject, Debug, Clone)]
pub(crate) struct WebhookHeader {
    /// Id.
    pub(crate) id: ID,
    /// Header name.
    pub(crate) key: String,
    /// Header value: in full only in the response that set it, masked
    /// (`********` and at most its last four characters) afterwards.
    pub(crate) value: String,
}

impl WebhookHeader {
    /// A stored header, its value masked.
    pub(crate) fn masked(h: HeaderRow, secrets: &crate::secrets::SecretBox) -> Self {
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
    pub(super) fn revealed(h: HeaderRow, plain: String) -> Self {
        WebhookHeader {
            id: id(h.id),
            key: h.key,
            value: plain,
        }
    }
}

/// Basic authentication credentials' public half.
#[derive(SimpleObject, Debug, Clone)]
pub(crate) struct BasicAuth {
    /// User name (the password is never returned).
    pub(crate) username: String,
}

/// A registered endpoint that receives webhooks.
pub(crate) struct WebhookReceiver {
    pub(super) row: ReceiverRow,
    /// The plaintext secret, shown only in the creation or rotation response.
    pub(super) revealed_secret: Option<String>,
    /// Custom header values as given, shown only in the creation response.
    pub(super) revealed_headers: Vec<(String, String)>,
}

impl WebhookReceiver {
    /// Wraps a stored receiver (secret masked).
    pub(crate) fn new(row: ReceiverRow) -> Self {
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
        &self.row.settings.name
    }

    /// Description.
    async fn description(&self) -> Option<&str> {
        self.row.settings.description.as_deref()
    }

    /// Where deliveries are POSTed: the string the ION signature covers (scheme and host
    /// normalised at registration, path and query exactly as registered).
    async fn webhook_uri(&self) -> &str {
        &self.row.settings.webhook_uri
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
        &self.row.settings.content_type
    }

    /// The status that counts as success (default 200).
    async fn expected_response_code(&self) -> i32 {
        self.row.settings.expected_response_code
    }

    /// Whether new events are fanned out to it.
    async fn active(&self) -> bool {
        self.row.settings.active
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
        self.row.settings.timeout_ms
    }

    /// Retry policy.
    async fn retry_policy(&self) -> GqlRetryPolicy {
        self.row.settings.retry_policy.into()
    }

    /// Attempts before an event is `failed`.
    async fn max_attempts(&self) -> i32 {
        self.row.settings.max_attempts
    }

    /// Interval of the FIXED policy, in seconds.
    async fn retry_interval_seconds(&self) -> i32 {
        self.row.settings.retry_interval_secs
    }

    /// Signature headers sent.
    async fn signature_schemes(&self) -> Vec<GqlSignatureScheme> {
        self.row
            .settings
            .signature_schemes
            .iter()
            .filter_map(GqlSignatureScheme::of)
            .collect()
    }

    /// Basic authentication, when configured.
    async fn basic_auth(&self) -> Option<BasicAuth> {
        self.row
            .settings
            .basic_auth_username
            .clone()
            .map(|username| BasicAuth { username })
    }

    /// Deliveries for the same row are sent one at a time, in commit order.
    async fn ordered(&self) -> bool {
        self.row.settings.ordered
    }

    /// Concurrent requests to this receiver (null: the gateway default).
    async fn max_concurrency(&self) -> Option<i32> {
        self.row.settings.max_concurrency
    }

    /// Requests per second it may receive from all gateway processes
    /// together (null: no limit).
    async fn rate_limit_per_second(&self) -> Option<i32> {
        self.row.settings.rate_limit_per_second
    }

    /// Whether it has a client certificate for mutual TLS (the certificate
    /// and key are never shown).
    async fn has_client_certificate(&self) -> bool {
        self.row.settings.egress.tls_client_certificate.is_some()
    }

    /// CAs (PEM) trusted for its certificate instead of the public roots.
    async fn ca_bundle_pem(&self) -> Option<&str> {
        self.row.settings.egress.tls_ca_bundle.as_deref()
    }

    /// Whether its requests carry a W3C `traceparent` header naming the
    /// attempt's span (the gateway's traces, when exported, hold that span).
    async fn send_traceparent(&self) -> bool {
        self.row.settings.egress.send_traceparent
    }

    /// Its OAuth2 client-credentials settings (null: none; the secret is never shown).
    async fn oauth2(&self) -> Option<super::egress::ReceiverOAuth2> {
        super::egress::ReceiverOAuth2::of(&self.row.settings.egress)
    }

    /// Since when every attempt has failed (null while it is healthy): a
    /// receiver failing longer than `delivery.auto_disable_after_secs` is disabled.
    async fn failing_since(&self) -> Option<String> {
        self.row.failing_since.map(format_ms)
    }

    /// The Ed25519 public key (`whpk_…`) that verifies this receiver's
    /// `v1a` signatures. Readable by viewers: it is not a secret.
    async fn public_key(&self) -> Option<&str> {
        self.row.public_key.as_deref()
    }

    /// During a rotation's overlap, the previous public key (its `v1a`
    /// signature is sent too until `previousSecretExpiresAt`).
    async fn previous_public_key(&self) -> Option<&str> {
        self.row
            .previous_secret_expires_at
            .filter(|until| *until > crate::store::now_ms())
            .and(self.row.previous_public_key.as_deref())
    }

    /// What happens when the receiver's plugin fails.
    async fn plugin_failure_mode(&self) -> GqlPluginFailureMode {
        self.row.settings.plugin_failure_mode.into()
    }

    /// Subscriptions of this receiver.
    #[graphql(
        complexity = "crate::api::limits::bounded(crate::api::limits::SUBSCRIPTIONS_PER_RECEIVER, child_complexity)"
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
        complexity = "crate::api::limits::bounded(crate::api::limits::HEADERS_PER_RECEIVER, child_complexity)"
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
    #[graphql(complexity = "crate::api::limits::list(first, child_complexity)")]
    async fn events(
        &self,
        ctx: &Context<'_>,
        status: Option<String>,
        #[graphql(default = 50)] first: i32,
    ) -> FieldResult<Vec<WebhookEvent>> {
        caller(ctx)?;
        let status = crate::api::events::check_status("status", status)?;
        let limit = crate::api::events::page_size(ctx, first)?;
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
    ) -> FieldResult<Option<crate::api::plugins::WebhookPlugin>> {
        caller(ctx)?;
        let state = api(ctx);
        Ok(state
            .store
            .plugin_for(self.row.id)
            .await?
            .map(|row| crate::api::plugins::WebhookPlugin::new(row, &state.plugins)))
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
