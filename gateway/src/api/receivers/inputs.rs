//! The inputs and payloads of the receiver mutations, and their
//! translation to the model's [`ReceiverSpec`].

use async_graphql::{ID, InputObject, MaybeUndefined, SimpleObject};

use super::egress::{self, ClientCertificateInput, OAuth2ClientCredentialsInput};
use super::object::{
    GqlPluginFailureMode, GqlRetryPolicy, GqlSignatureScheme, WebhookHeader, WebhookReceiver,
};
use crate::model::{BasicAuthSpec, ReceiverSpec};

/// A header given at creation.
#[derive(InputObject, Debug, Clone)]
pub(crate) struct WebhookHeaderInput {
    /// Header name.
    pub(crate) key: String,
    /// Header value.
    pub(crate) value: String,
}

/// Basic authentication credentials.
#[derive(InputObject, Debug, Clone)]
pub(crate) struct BasicAuthInput {
    /// User name.
    pub(crate) username: String,
    /// Password (stored encrypted when CHANGEWIRE_SECRET_KEY is set; never returned).
    pub(crate) password: String,
}

/// Input of `createWebhookReceiver`.
#[derive(InputObject, Debug, Clone)]
pub(crate) struct CreateWebhookReceiverInput {
    /// Name.
    pub(crate) name: String,
    /// Description.
    pub(crate) description: Option<String>,
    /// Where deliveries are POSTed (https unless the gateway allows http).
    pub(crate) webhook_uri: String,
    /// Content type (`json`).
    pub(crate) content_type: Option<String>,
    /// The status that counts as success (default 200).
    pub(crate) expected_response_code: Option<i32>,
    /// Whether new events fan out to it (default true).
    pub(crate) active: Option<bool>,
    /// Custom headers.
    pub(crate) headers: Option<Vec<WebhookHeaderInput>>,
    /// Basic authentication.
    pub(crate) basic_auth: Option<BasicAuthInput>,
    /// Request timeout in milliseconds (default 5000; at most the gateway's maximum).
    pub(crate) timeout_ms: Option<i32>,
    /// Retry policy (default EXPONENTIAL).
    pub(crate) retry_policy: Option<GqlRetryPolicy>,
    /// Attempts before `failed` (default 8 for EXPONENTIAL, 4 for FIXED).
    pub(crate) max_attempts: Option<i32>,
    /// Interval of the FIXED policy in seconds (default 60).
    pub(crate) retry_interval_seconds: Option<i32>,
    /// Signature headers (default [ION]).
    pub(crate) signature_schemes: Option<Vec<GqlSignatureScheme>>,
    /// Deliver events of one row one at a time, in commit order (default false).
    pub(crate) ordered: Option<bool>,
    /// Concurrent requests (default: the gateway's).
    pub(crate) max_concurrency: Option<i32>,
    /// What happens when a plugin fails (default FAIL).
    pub(crate) plugin_failure_mode: Option<GqlPluginFailureMode>,
    /// Requests per second it may receive from all gateway processes
    /// together (default: no limit).
    pub(crate) rate_limit_per_second: Option<i32>,
    /// A client certificate it requires (mutual TLS).
    pub(crate) client_certificate: Option<ClientCertificateInput>,
    /// CAs (PEM) to trust for its certificate instead of the public roots.
    pub(crate) ca_bundle_pem: Option<String>,
    /// OAuth2 client credentials (not with `basicAuth`).
    pub(crate) oauth2: Option<OAuth2ClientCredentialsInput>,
    /// Send a W3C `traceparent` header naming each attempt's span (default false).
    pub(crate) send_traceparent: Option<bool>,
}

/// Input of `updateWebhookReceiver`: fields left out stay as they are.
#[derive(InputObject, Debug, Clone)]
pub(crate) struct UpdateWebhookReceiverInput {
    /// Id.
    pub(crate) id: ID,
    /// The `_etag` last read; a stale one is refused with CONFLICT.
    pub(crate) etag: String,
    /// Name.
    pub(crate) name: Option<String>,
    /// Description (null clears it).
    pub(crate) description: MaybeUndefined<String>,
    /// URL.
    pub(crate) webhook_uri: Option<String>,
    /// Content type.
    pub(crate) content_type: Option<String>,
    /// Success status.
    pub(crate) expected_response_code: Option<i32>,
    /// Whether new events fan out to it.
    pub(crate) active: Option<bool>,
    /// Basic authentication (null removes it).
    pub(crate) basic_auth: MaybeUndefined<BasicAuthInput>,
    /// Timeout, ms.
    pub(crate) timeout_ms: Option<i32>,
    /// Retry policy.
    pub(crate) retry_policy: Option<GqlRetryPolicy>,
    /// Attempts.
    pub(crate) max_attempts: Option<i32>,
    /// FIXED interval, seconds.
    pub(crate) retry_interval_seconds: Option<i32>,
    /// Signature schemes.
    pub(crate) signature_schemes: Option<Vec<GqlSignatureScheme>>,
    /// Per-row ordering.
    pub(crate) ordered: Option<bool>,
    /// Concurrency (null: the gateway default).
    pub(crate) max_concurrency: MaybeUndefined<i32>,
    /// Plugin failure mode.
    pub(crate) plugin_failure_mode: Option<GqlPluginFailureMode>,
    /// Requests per second (null: no limit).
    pub(crate) rate_limit_per_second: MaybeUndefined<i32>,
    /// Client certificate (null removes it).
    pub(crate) client_certificate: MaybeUndefined<ClientCertificateInput>,
    /// CA bundle (null: the public roots again).
    pub(crate) ca_bundle_pem: MaybeUndefined<String>,
    /// OAuth2 client credentials (null removes them).
    pub(crate) oauth2: MaybeUndefined<OAuth2ClientCredentialsInput>,
    /// Send a W3C `traceparent` header.
    pub(crate) send_traceparent: Option<bool>,
}

/// Identifies an object at a version.
#[derive(InputObject, Debug, Clone)]
pub(crate) struct DeleteWebhookReceiverInput {
    /// Id.
    pub(crate) id: ID,
    /// The `_etag` last read.
    pub(crate) etag: String,
}

/// Input of `addHeaderToWebhookReceiver`.
#[derive(InputObject, Debug, Clone)]
pub(crate) struct AddHeaderToWebhookReceiverInput {
    /// Receiver.
    pub(crate) receiver_id: ID,
    /// Header name.
    pub(crate) key: String,
    /// Header value (encrypted at rest; shown in full only in this
    /// mutation's response).
    pub(crate) value: String,
    /// Replace a header of the same name (default: refuse it).
    pub(crate) replace: Option<bool>,
}

/// Input of `removeHeaderFromWebhookReceiver`.
#[derive(InputObject, Debug, Clone)]
pub(crate) struct RemoveHeaderFromWebhookReceiverInput {
    /// The header's id.
    pub(crate) id: ID,
}

/// Input of `rotateWebhookReceiverSecret`.
#[derive(InputObject, Debug, Clone)]
pub(crate) struct RotateWebhookReceiverSecretInput {
    /// Receiver.
    pub(crate) id: ID,
    /// The `_etag` last read.
    pub(crate) etag: String,
    /// How long the old secret keeps signing alongside the new one, in seconds
    /// (default 86400; 0 switches at once; at most 30 days).
    pub(crate) overlap_seconds: Option<i32>,
}

/// Input of `pauseWebhookReceiver`.
#[derive(InputObject, Debug, Clone)]
pub(crate) struct PauseWebhookReceiverInput {
    /// Receiver.
    pub(crate) id: ID,
    /// The `_etag` last read.
    pub(crate) etag: String,
    /// Why (shown as `pausedReason`).
    pub(crate) reason: Option<String>,
}

/// Input of `resumeWebhookReceiver`.
#[derive(InputObject, Debug, Clone)]
pub(crate) struct ResumeWebhookReceiverInput {
    /// Receiver.
    pub(crate) id: ID,
    /// The `_etag` last read.
    pub(crate) etag: String,
}

/// Payload carrying a receiver.
#[derive(SimpleObject)]
pub(crate) struct WebhookReceiverPayload {
    /// The receiver.
    pub(crate) webhook_receiver: WebhookReceiver,
}

/// Payload of `deleteWebhookReceiver`.
#[derive(SimpleObject)]
pub(crate) struct DeleteWebhookReceiverPayload {
    /// The deleted receiver's id.
    pub(crate) id: ID,
}

/// Payload of `addHeaderToWebhookReceiver`.
#[derive(SimpleObject)]
pub(crate) struct AddHeaderPayload {
    /// The new header.
    pub(crate) webhook_header: WebhookHeader,
    /// Its receiver.
    pub(crate) webhook_receiver: WebhookReceiver,
}

/// Payload of `rotateWebhookReceiverSecret`.
#[derive(SimpleObject)]
pub(crate) struct RotateSecretPayload {
    /// The receiver; `sharedSecret` holds the new secret in full, this once.
    pub(crate) webhook_receiver: WebhookReceiver,
    /// Until when the previous secret keeps signing (null: not at all).
    pub(crate) previous_secret_expires_at: Option<String>,
}

fn maybe<T, U>(value: &MaybeUndefined<T>, f: impl Fn(&T) -> U) -> Option<Option<U>> {
    match value {
        MaybeUndefined::Undefined => None,
        MaybeUndefined::Null => Some(None),
        MaybeUndefined::Value(v) => Some(Some(f(v))),
    }
}

fn basic_auth(input: &BasicAuthInput) -> BasicAuthSpec {
    BasicAuthSpec {
        username: input.username.clone(),
        password: input.password.clone(),
    }
}

impl CreateWebhookReceiverInput {
    /// What the client asks for, in the model's terms (checked by
    /// [`ReceiverSpec::create`]).
    pub(super) fn spec(self) -> ReceiverSpec {
        let egress = egress::created(
            self.client_certificate.as_ref(),
            self.ca_bundle_pem.as_ref(),
            self.oauth2.as_ref(),
            self.send_traceparent,
        );
        ReceiverSpec {
            egress,
            name: Some(self.name),
            description: self.description.map(Some),
            webhook_uri: Some(self.webhook_uri),
            content_type: self.content_type,
            expected_response_code: self.expected_response_code,
            active: self.active,
            timeout_ms: self.timeout_ms,
            retry_policy: self.retry_policy.map(Into::into),
            max_attempts: self.max_attempts,
            retry_interval_secs: self.retry_interval_seconds,
            signature_schemes: self
                .signature_schemes
                .map(|s| s.into_iter().map(Into::into).collect()),
            basic_auth: self.basic_auth.as_ref().map(|a| Some(basic_auth(a))),
            ordered: self.ordered,
            max_concurrency: self.max_concurrency.map(Some),
            plugin_failure_mode: self.plugin_failure_mode.map(Into::into),
            rate_limit_per_second: self.rate_limit_per_second.map(Some),
            headers: self
                .headers
                .unwrap_or_default()
                .into_iter()
                .map(|h| (h.key, h.value))
                .collect(),
        }
    }
}

impl UpdateWebhookReceiverInput {
    /// The changes the client asks for, in the model's terms (checked by
    /// [`ReceiverSpec::update`]).
    pub(super) fn spec(&self) -> ReceiverSpec {
        ReceiverSpec {
            name: self.name.clone(),
            description: maybe(&self.description, Clone::clone),
            webhook_uri: self.webhook_uri.clone(),
            content_type: self.content_type.clone(),
            expected_response_code: self.expected_response_code,
            active: self.active,
            timeout_ms: self.timeout_ms,
            retry_policy: self.retry_policy.map(Into::into),
            max_attempts: self.max_attempts,
            retry_interval_secs: self.retry_interval_seconds,
            signature_schemes: self
                .signature_schemes
                .as_ref()
                .map(|s| s.iter().copied().map(Into::into).collect()),
            basic_auth: maybe(&self.basic_auth, basic_auth),
            ordered: self.ordered,
            max_concurrency: maybe(&self.max_concurrency, |c| *c),
            plugin_failure_mode: self.plugin_failure_mode.map(Into::into),
            rate_limit_per_second: maybe(&self.rate_limit_per_second, |r| *r),
            headers: Vec::new(),
            egress: egress::updated(
                &self.client_certificate,
                &self.ca_bundle_pem,
                &self.oauth2,
                self.send_traceparent,
            ),
        }
    }
}
