//! What a receiver's plugin decided about one delivery.

use changewire_plugin_host::{Plugin, PluginInput, PluginOutcome};

use crate::delivery::receivers::Receiver;
use crate::store::deliveries::LeasedDelivery;

/// What a plugin decided.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Transform {
    /// No plugin, or the plugin kept the body and added no header.
    Unchanged,
    /// A new body, extra headers, or both.
    Replaced {
        /// The body to send (valid JSON), or `None` to send the original
        /// (a plugin that only adds headers, or returned the body as it was).
        body: Option<String>,
        /// Extra headers (they override custom headers of the same name).
        headers: Vec<(String, String)>,
    },
    /// The plugin dropped the event (status `filtered`).
    Dropped { reason: String },
    /// The plugin failed (trap, timeout, memory, bad output).
    Failed {
        /// The cause, recorded with the attempt.
        error: String,
    },
    /// The host had no capacity; try again shortly (not the plugin's fault).
    Busy { reason: String },
    /// The receiver's plugin (the revision leased with the delivery) is not
    /// loaded on this gateway: the delivery must not be sent untransformed.
    NotLoaded {
        /// Why, in words (recorded as the delivery's last error).
        reason: String,
        /// It cannot load here until something changes (plugins disabled,
        /// the module does not compile); otherwise it is about to load.
        permanent: bool,
    },
}

/// What a plugin is told about the event besides its body.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PluginEvent<'a> {
    /// The resource, lower-case.
    pub(crate) resource: &'a str,
    /// `create`, `update`, `delete` or `test`.
    pub(crate) action: &'a str,
    /// The receiver.
    pub(crate) receiver_id: i64,
    /// Its name.
    pub(crate) receiver_name: &'a str,
}

/// A compiled plugin and its configuration.
#[derive(Clone)]
pub(super) struct LoadedPlugin {
    pub(super) plugin: Plugin,
    pub(super) config: String,
    pub(super) name: String,
}

impl LoadedPlugin {
    /// Runs the plugin on one event (yielding at every epoch tick, stopped
    /// at its time limit).
    pub(super) async fn transform(
        &self,
        d: &LeasedDelivery,
        receiver: &Receiver,
        body: &str,
    ) -> Transform {
        let event = PluginEvent {
            resource: &d.payload.resource.to_ascii_lowercase(),
            action: d.payload.action.as_str(),
            receiver_id: receiver.id.get(),
            receiver_name: &receiver.name,
        };
        self.call(&event, body).await
    }

    /// Runs the plugin on a body.
    pub(super) async fn call(&self, event: &PluginEvent<'_>, body: &str) -> Transform {
        let input = PluginInput {
            resource: event.resource,
            action: event.action,
            body,
            receiver_id: event.receiver_id,
            receiver_name: event.receiver_name,
            config: &self.config,
        };
        match self.plugin.call_async(&input).await {
            Ok(PluginOutcome::Deliver {
                body: None,
                headers,
            }) if headers.is_empty() => Transform::Unchanged,
            Ok(PluginOutcome::Deliver { body: new, headers }) => Transform::Replaced {
                body: new.filter(|new| new != body),
                headers: headers.into_iter().map(|h| (h.name, h.value)).collect(),
            },
            Ok(PluginOutcome::Drop { reason }) => Transform::Dropped { reason },
            Err(e) if !e.is_plugin_fault() => Transform::Busy {
                reason: e.to_string(),
            },
            Err(e) => Transform::Failed {
                error: format!("{} ({})", e, self.name),
            },
        }
    }
}
