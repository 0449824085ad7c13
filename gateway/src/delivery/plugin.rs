//! The plugin hook, just before signing: each receiver may have one
//! WebAssembly plugin that rewrites the body, adds headers, or drops the event.
//!
//! [`PluginRuntime`] owns the wasmtime host and the registry of compiled
//! plugins by receiver. Replacing a plugin swaps an `Arc`: calls in flight
//! finish with the plugin they started with, the next call uses the new one,
//! so no delivery ever sees half of one. Other gateway processes notice
//! attachments through the store (`sync`).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use super::receivers::Receiver;
use crate::config::PluginSettings;
use crate::plugins::{Plugin, PluginHost, PluginInput, PluginOutcome};
use crate::store::Store;
use crate::store::deliveries::LeasedDelivery;

/// What a plugin decided.
#[derive(Debug, Clone, PartialEq)]
pub enum Transform {
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
    Dropped {
        /// Why.
        reason: String,
    },
    /// The plugin failed (trap, timeout, memory, bad output).
    Failed {
        /// The cause, recorded with the attempt.
        error: String,
    },
    /// The host had no capacity; try again shortly (not the plugin's fault).
    Busy {
        /// Why.
        reason: String,
    },
}

/// A compiled plugin and its configuration.
#[derive(Clone)]
pub struct LoadedPlugin {
    plugin: Plugin,
    config: String,
    name: String,
}

impl LoadedPlugin {
    /// Runs the plugin on one event (yielding at every epoch tick, stopped
    /// at its time limit).
    async fn transform(&self, d: &LeasedDelivery, receiver: &Receiver, body: &str) -> Transform {
        let input = PluginInput {
            resource: &d.resource.to_ascii_lowercase(),
            action: &d.action.to_ascii_lowercase(),
            body,
            receiver_id: receiver.id,
            receiver_name: &receiver.name,
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

/// The host and the plugins attached to receivers.
pub struct PluginRuntime {
    host: Option<Arc<PluginHost>>,
    disabled: Option<String>,
    loaded: RwLock<HashMap<i64, (String, Arc<LoadedPlugin>)>>,
}

/// Why a plugin cannot be attached.
#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    /// Plugins are off (by configuration, or the host could not start).
    #[error("plugins are disabled on this gateway: {0}")]
    Disabled(String),
    /// The module is not a valid plugin; the compiler's reason.
    #[error("{0}")]
    Invalid(String),
}

impl PluginRuntime {
    /// Starts the host (or records why plugins are off).
    pub fn new(settings: &PluginSettings) -> PluginRuntime {
        if !settings.enabled {
            return PluginRuntime {
                host: None,
                disabled: Some("[plugins] enabled = false".into()),
                loaded: Default::default(),
            };
        }
        let host = match &settings.cache_dir {
            Some(dir) => PluginHost::with_disk_cache(settings.limits.clone(), dir),
            None => PluginHost::new(settings.limits.clone()),
        };
        match host {
            Ok(host) => PluginRuntime {
                host: Some(Arc::new(host)),
                disabled: None,
                loaded: Default::default(),
            },
            Err(err) => {
                tracing::warn!(error = %err, "the plugin host could not start; plugins are disabled");
                PluginRuntime {
                    host: None,
                    disabled: Some(err.to_string()),
                    loaded: Default::default(),
                }
            }
        }
    }

    /// A runtime with plugins off (tests, tools).
    pub fn disabled() -> PluginRuntime {
        PluginRuntime {
            host: None,
            disabled: Some("not started".into()),
            loaded: Default::default(),
        }
    }

    /// Validates and compiles a module off the async threads.
    pub async fn compile(&self, wasm: Vec<u8>) -> Result<Plugin, AttachError> {
        let Some(host) = &self.host else {
            return Err(AttachError::Disabled(
                self.disabled.clone().unwrap_or_default(),
            ));
        };
        let host = host.clone();
        tokio::task::spawn_blocking(move || host.compile(&wasm))
            .await
            .map_err(|e| AttachError::Invalid(format!("compilation failed: {e}")))?
            .map_err(|e| AttachError::Invalid(e.to_string()))
    }

    /// Installs (or replaces) a receiver's plugin.
    pub fn install(&self, receiver_id: i64, plugin: Plugin, name: &str, config: &str) {
        let sha = plugin.sha256().to_string();
        let loaded = Arc::new(LoadedPlugin {
            plugin,
            config: config.to_string(),
            name: name.to_string(),
        });
        if let Ok(mut map) = self.loaded.write() {
            map.insert(receiver_id, (format!("{sha}:{config}"), loaded));
        }
    }

    /// Removes a receiver's plugin.
    pub fn remove(&self, receiver_id: i64) {
        if let Ok(mut map) = self.loaded.write() {
            map.remove(&receiver_id);
        }
    }

    fn get(&self, receiver_id: i64) -> Option<Arc<LoadedPlugin>> {
        self.loaded
            .read()
            .ok()?
            .get(&receiver_id)
            .map(|(_, p)| p.clone())
    }

    /// Loads what the store says is attached and drops what is not (other
    /// processes attach and detach through the store).
    pub async fn sync(&self, store: &Store) -> crate::store::Result<()> {
        if self.host.is_none() {
            return Ok(());
        }
        let index = store.plugin_index().await?;
        let current: HashMap<i64, String> = self
            .loaded
            .read()
            .map(|m| m.iter().map(|(k, (v, _))| (*k, v.clone())).collect())
            .unwrap_or_default();
        for (receiver_id, _, _) in &index {
            let Some(row) = store.plugin_for(*receiver_id).await? else {
                continue;
            };
            let key = format!("{}:{}", row.sha256, row.config);
            if current.get(receiver_id) == Some(&key) {
                continue;
            }
            match self.compile(row.wasm.clone()).await {
                Ok(plugin) => self.install(*receiver_id, plugin, &row.name, &row.config),
                Err(err) => {
                    tracing::error!(receiver = receiver_id, error = %err, "a stored plugin does not load; its deliveries fail with this reason")
                }
            }
        }
        for receiver_id in current.keys() {
            if !index.iter().any(|(r, _, _)| r == receiver_id) {
                self.remove(*receiver_id);
            }
        }
        Ok(())
    }

    /// Runs the receiver's plugin, if any, on this task: no thread hand-off
    /// (it cost a fifth of the throughput); a slow plugin yields the thread
    /// every epoch tick, so it delays other receivers no more than any task.
    pub async fn transform(
        &self,
        receiver: &Arc<Receiver>,
        d: &LeasedDelivery,
        body: &str,
    ) -> Transform {
        let Some(plugin) = self.get(receiver.id) else {
            return Transform::Unchanged;
        };
        plugin.transform(d, receiver, body).await
    }
}
