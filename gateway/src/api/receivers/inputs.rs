//! The inputs and payloads of the receiver mutations, and their
//! translation to the model's [`ReceiverSpec`].

use async_graphql::{ID, InputObject, MaybeUndefined, SimpleObject};

use super::object::{
    GqlPluginFailureMode, GqlRetryPolicy, GqlSignatureScheme, WebhookHeader, WebhookReceiver,
};
use crate::model::{BasicAuthSpec, ReceiverSpec};

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
    pub retry_policy: Option<GqlRetryPolicy>,
    /// Attempts before `failed` (default 8 for EXPONENTIAL, 4 for FIXED).
    pub max_attempts: Option<i32>,
    /// Interval of the FIXED policy in seconds (default 60).
    pub retry_interval_seconds: Option<i32>,
    /// Signature headers (default [ION]).
    pub signature_schemes: Option<Vec<GqlSignatureScheme>>,
    /// Deliver events of one row one at a time, in commit order (default false).
    pub ordered: Option<bool>,
    /// Concurrent requests (default: the gateway's).
    pub max_concurrency: Option<i32>,
    /// What happens when a plugin fails (default FAIL).
    pub plugin_failure_mode: Option<GqlPluginFailureMode>,
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
    pub retry_policy: Option<GqlRetryPolicy>,
    /// Attempts.
    pub max_attempts: Option<i32>,
    /// FIXED interval, seconds.
    pub retry_interval_seconds: Option<i32>,
    /// Signature schemes.
    pub signature_schemes: Option<Vec<GqlSignatureScheme>>,
    /// Per-row ordering.
    pub ordered: Option<bool>,
    /// Concurrency (null: the gateway default).
    pub max_concurrency: MaybeUndefined<i32>,
    /// Plugin failure mode.
    pub plugin_failure_mode: Option<GqlPluginFailureMode>,
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
        ReceiverSpec {
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
            headers: Vec::new(),
        }
    }
}
