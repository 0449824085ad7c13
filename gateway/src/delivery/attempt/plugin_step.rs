//! The body to send: rendered from the change, then given to the
//! receiver's plugin, which may rewrite it, add headers, drop the event,
//! fail, or not be loaded on this gateway.

use super::Engine;
use super::Receiver;
use crate::plugins::Transform;
use crate::store::deliveries::{Completion, LeasedDelivery};

/// How long a delivery waits when the plugin host had no capacity.
const BUSY_RETRY_MS: i64 = 1_000;
/// How long it waits for its plugin to load here (another gateway may load
/// it sooner).
const LOADING_RETRY_MS: i64 = 1_000;
/// How long it waits while its plugin cannot load here.
const NOT_LOADING_RETRY_MS: i64 = 30_000;

/// The body of one attempt.
#[derive(Debug)]
pub(super) struct Body {
    /// The bytes to send (valid JSON).
    pub(crate) text: String,
    /// Headers the plugin added.
    pub(crate) plugin_headers: Vec<(String, String)>,
    /// The plugin changed the body: it cannot be rendered again from the
    /// change, so the audit trail keeps it.
    pub(crate) changed: bool,
}

/// What happens after the plugin step.
#[derive(Debug)]
pub(super) enum BodyStep {
    /// Sign and send this.
    Send(Body),
    /// Do not attempt now: give the lease back, due again in this long.
    Hold {
        /// Wait, ms.
        again_in_ms: i64,
        /// Why it waits (becomes the delivery's last error), or None to
        /// keep the last attempt's error.
        reason: Option<String>,
    },
    /// The plugin ended the delivery without a request.
    Final {
        /// Filtered or plugin error.
        completion: Completion,
        /// Its metrics label.
        label: &'static str,
        error: String,
        /// The body the plugin was given.
        body: String,
    },
}

impl BodyStep {
    /// What the plugin step decided, for its span: `sent`, `held`, or the
    /// final label (`filtered`, `plugin_error`).
    pub(super) fn label(&self) -> &'static str {
        match self {
            BodyStep::Send(_) => "sent",
            BodyStep::Hold { .. } => "held",
            BodyStep::Final { label, .. } => label,
        }
    }
}

/// Renders the body and runs the receiver's plugin on it.
pub(super) async fn apply(engine: &Engine, receiver: &Receiver, d: &LeasedDelivery) -> BodyStep {
    let original = d.body();
    let unchanged = |text: String| {
        BodyStep::Send(Body {
            text,
            plugin_headers: Vec::new(),
            changed: false,
        })
    };
    match engine.plugins.transform(receiver, d, &original).await {
        Transform::Unchanged => unchanged(original),
        Transform::Replaced { body, headers } => BodyStep::Send(Body {
            changed: body.is_some(),
            text: body.unwrap_or(original),
            plugin_headers: headers,
        }),
        Transform::Dropped { reason } => BodyStep::Final {
            completion: Completion::Filtered,
            label: "filtered",
            error: format!("dropped by plugin: {reason}"),
            body: original,
        },
        Transform::Busy { reason } => {
            tracing::debug!(receiver = %receiver.id, event = %d.id, %reason, "plugin host busy; delivery released");
            BodyStep::Hold {
                again_in_ms: BUSY_RETRY_MS,
                reason: None,
            }
        }
        Transform::NotLoaded { reason, permanent } => {
            if permanent && receiver.plugin_deliver_original {
                engine.log_limiter.warn(
                    receiver.id,
                    "plugin_not_loaded",
                    &format!("{reason}; the receiver chose DELIVER_ORIGINAL, so the original body is sent"),
                );
                unchanged(original)
            } else {
                // Never sent untransformed: the lease goes back with the
                // reason, and the receiver is not leased for again until its
                // plugin loads here (`PluginRuntime::ready_for`).
                BodyStep::Hold {
                    again_in_ms: if permanent {
                        NOT_LOADING_RETRY_MS
                    } else {
                        LOADING_RETRY_MS
                    },
                    reason: Some(reason),
                }
            }
        }
        Transform::Failed { error } if receiver.plugin_deliver_original => {
            tracing::warn!(receiver = %receiver.id, event = %d.id, %error, "plugin failed; delivering the original body");
            unchanged(original)
        }
        Transform::Failed { error } => BodyStep::Final {
            completion: Completion::PluginError,
            label: "plugin_error",
            error: format!("plugin failed: {error}"),
            body: original,
        },
    }
}
