//! The registry of compiled plugins by receiver, kept equal to what the
//! store says is attached, and the hook that runs a delivery's plugin.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use changewire_plugin_host::{Plugin, PluginHost};
use tokio::sync::Notify;

use super::Error;
use super::transform::{LoadedPlugin, PluginEvent, Transform};
use crate::config::PluginSettings;
use crate::delivery::receivers::Receiver;
use crate::health::Health;
use crate::model::ReceiverId;
use crate::store::deliveries::LeasedDelivery;
use crate::store::{Store, now_ms};

/// The first wait before a plugin that failed to compile is compiled again;
/// it doubles with each failure, up to [`MAX_RETRY`].
const FIRST_RETRY: Duration = Duration::from_secs(2);
/// The longest wait between two compilations of a failing plugin.
const MAX_RETRY: Duration = Duration::from_secs(300);

/// Whether a receiver's attached plugin is loaded on this gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LoadState {
    /// Compiled and in use.
    Loaded,
    /// Attached in the store, not compiled here yet.
    Loading,
    /// It does not compile here; compiled again at `retry_at` (ms).
    Failed {
        /// The compiler's reason.
        error: String,
        /// Next compilation (ms).
        retry_at: i64,
    },
    /// Plugins are off on this gateway.
    Disabled { reason: String },
}

/// One receiver's plugin on this gateway.
struct Slot {
    revision: String,
    name: String,
    state: SlotState,
}

enum SlotState {
    Loaded(Arc<LoadedPlugin>),
    Failed {
        error: String,
        failures: u32,
        retry_at: i64,
    },
}

/// The host and the plugins attached to receivers.
pub(crate) struct PluginRuntime {
    host: Option<Arc<PluginHost>>,
    disabled: Option<String>,
    slots: RwLock<HashMap<ReceiverId, Slot>>,
    /// What the store says is attached: receiver → revision.
    attached: RwLock<HashMap<ReceiverId, String>>,
    /// Asks the sync task to read the store now (a delivery arrived for a
    /// revision not loaded here).
    sync_wanted: Notify,
}

/// What one [`PluginRuntime::sync`] changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SyncReport {
    /// Plugins compiled and installed (their receivers may send again).
    pub(crate) loaded: usize,
    /// Plugins that failed to compile in this round.
    pub(crate) failed: usize,
    /// Those that failed for the first time since they were attached or
    /// last loaded: (receiver, plugin name, error).
    pub(crate) newly_failed: Vec<(ReceiverId, String, String)>,
}

impl PluginRuntime {
    /// Starts the host (or records why plugins are off).
    pub(crate) fn new(settings: &PluginSettings) -> PluginRuntime {
        if !settings.enabled {
            return Self::off("[plugins] enabled = false".into());
        }
        let host = match &settings.cache_dir {
            Some(dir) => PluginHost::with_disk_cache(settings.limits.clone(), dir),
            None => PluginHost::new(settings.limits.clone()),
        };
        match host {
            Ok(host) => PluginRuntime {
                host: Some(Arc::new(host)),
                disabled: None,
                slots: Default::default(),
                attached: Default::default(),
                sync_wanted: Notify::new(),
            },
            Err(err) => {
                tracing::warn!(error = %err, "the plugin host could not start; plugins are disabled");
                Self::off(err.to_string())
            }
        }
    }

    fn off(reason: String) -> PluginRuntime {
        PluginRuntime {
            host: None,
            disabled: Some(reason),
            slots: Default::default(),
            attached: Default::default(),
            sync_wanted: Notify::new(),
        }
    }

    /// Validates and compiles a module off the async threads.
    pub(crate) async fn compile(&self, wasm: Vec<u8>) -> Result<Plugin, Error> {
        let Some(host) = &self.host else {
            return Err(Error::Disabled {
                reason: self.disabled.clone().unwrap_or_default(),
            });
        };
        let host = host.clone();
        tokio::task::spawn_blocking(move || host.compile(&wasm))
            .await
            .map_err(|e| Error::Invalid {
                reason: format!("compilation failed: {e}"),
            })?
            .map_err(|e| Error::Invalid {
                reason: e.to_string(),
            })
    }

    /// Installs (or replaces) a receiver's plugin, as attached at `revision`.
    pub(crate) fn install(
        &self,
        receiver_id: ReceiverId,
        revision: &str,
        plugin: Plugin,
        name: &str,
        config: &str,
    ) {
        let loaded = Arc::new(LoadedPlugin {
            plugin,
            config: config.to_string(),
            name: name.to_string(),
        });
        if let Ok(mut slots) = self.slots.write() {
            slots.insert(
                receiver_id,
                Slot {
                    revision: revision.to_string(),
                    name: name.to_string(),
                    state: SlotState::Loaded(loaded),
                },
            );
        }
        if let Ok(mut attached) = self.attached.write() {
            attached.insert(receiver_id, revision.to_string());
        }
    }

    /// Removes a receiver's plugin (it was detached).
    pub(crate) fn remove(&self, receiver_id: ReceiverId) {
        if let Ok(mut slots) = self.slots.write() {
            slots.remove(&receiver_id);
        }
        if let Ok(mut attached) = self.attached.write() {
            attached.remove(&receiver_id);
        }
    }

    /// Whether a receiver's plugin at `revision` is loaded here.
    pub(crate) fn load_state(&self, receiver_id: ReceiverId, revision: &str) -> LoadState {
        if let Some(reason) = &self.disabled {
            return LoadState::Disabled {
                reason: reason.clone(),
            };
        }
        let Ok(slots) = self.slots.read() else {
            return LoadState::Loading;
        };
        match slots.get(&receiver_id) {
            Some(slot) if slot.revision == revision => match &slot.state {
                SlotState::Loaded(_) => LoadState::Loaded,
                SlotState::Failed {
                    error, retry_at, ..
                } => LoadState::Failed {
                    error: error.clone(),
                    retry_at: *retry_at,
                },
            },
            _ => LoadState::Loading,
        }
    }

    /// Whether deliveries to this receiver may be leased now: it has no
    /// plugin, its plugin is loaded here, or its plugin cannot load here and
    /// the receiver chose to get the original body then. A receiver whose
    /// plugin is loading, or cannot load, is held.
    pub(crate) fn ready_for(&self, receiver: &Receiver) -> bool {
        let revision = match self.attached.read() {
            Ok(attached) => match attached.get(&receiver.id) {
                None => return true,
                Some(revision) => revision.clone(),
            },
            Err(_) => return false,
        };
        match self.load_state(receiver.id, &revision) {
            LoadState::Loaded => true,
            LoadState::Loading => false,
            LoadState::Failed { .. } | LoadState::Disabled { .. } => {
                receiver.plugin_deliver_original
            }
        }
    }

    /// Waits until a delivery asked for a plugin revision not loaded here.
    pub(crate) async fn sync_requested(&self) {
        self.sync_wanted.notified().await;
    }

    /// Loads what the store says is attached and drops what is not (other
    /// processes attach and detach through the store). A module that does
    /// not compile is compiled again with backoff (2 s doubling to 5 min),
    /// logged at each try rather than every round, and reported as the
    /// non-blocking `plugins` component of `/readyz`.
    pub(crate) async fn sync(
        &self,
        store: &Store,
        health: &Health,
    ) -> crate::store::Result<SyncReport> {
        let index = store.plugin_index().await?;
        if let Ok(mut attached) = self.attached.write() {
            *attached = index
                .iter()
                .map(|e| (e.receiver_id, e.revision.clone()))
                .collect();
        }
        if let Ok(mut slots) = self.slots.write() {
            slots.retain(|id, _| index.iter().any(|e| e.receiver_id == *id));
        }
        let mut report = SyncReport::default();
        if let Some(reason) = &self.disabled {
            if index.is_empty() {
                health.ready("plugins");
            } else {
                let receivers: Vec<String> =
                    index.iter().map(|e| e.receiver_id.to_string()).collect();
                health.degraded(
                    "plugins",
                    format!(
                        "plugins are disabled on this gateway ({reason}), but receivers {} have one: \
                         their deliveries are held here (sent untransformed only to receivers that \
                         chose DELIVER_ORIGINAL)",
                        receivers.join(", ")
                    ),
                );
            }
            return Ok(report);
        }
        let now = now_ms();
        for entry in &index {
            let (due, failures) = match self.slots.read() {
                Ok(slots) => match slots.get(&entry.receiver_id) {
                    Some(slot) if slot.revision == entry.revision => match &slot.state {
                        SlotState::Loaded(_) => (false, 0),
                        SlotState::Failed {
                            failures, retry_at, ..
                        } => (now >= *retry_at, *failures),
                    },
                    _ => (true, 0),
                },
                Err(_) => (false, 0),
            };
            if !due {
                continue;
            }
            let Some(row) = store.plugin_for(entry.receiver_id).await? else {
                continue; // detached meanwhile
            };
            match self.compile(row.wasm.clone()).await {
                Ok(plugin) => {
                    if failures > 0 {
                        tracing::info!(receiver = %row.receiver_id, plugin = %row.name, "the plugin loads again; its deliveries resume");
                    }
                    self.install(
                        row.receiver_id,
                        &row.revision,
                        plugin,
                        &row.name,
                        &row.config,
                    );
                    report.loaded += 1;
                }
                Err(err) => {
                    report.failed += 1;
                    let failures = failures + 1;
                    let wait = FIRST_RETRY
                        .saturating_mul(1 << (failures - 1).min(16))
                        .min(MAX_RETRY);
                    let retry_at =
                        now_ms() + i64::try_from(wait.as_millis()).unwrap_or(i64::MAX / 4);
                    if failures == 1 {
                        report.newly_failed.push((
                            row.receiver_id,
                            row.name.clone(),
                            err.to_string(),
                        ));
                        tracing::error!(receiver = %row.receiver_id, plugin = %row.name, error = %err, retry_in = ?wait,
                            "a stored plugin does not load on this gateway; its receiver's deliveries are held until it does");
                    } else {
                        tracing::warn!(receiver = %row.receiver_id, plugin = %row.name, error = %err, failures, retry_in = ?wait,
                            "the stored plugin still does not load");
                    }
                    if let Ok(mut slots) = self.slots.write() {
                        slots.insert(
                            row.receiver_id,
                            Slot {
                                revision: row.revision.clone(),
                                name: row.name.clone(),
                                state: SlotState::Failed {
                                    error: err.to_string(),
                                    failures,
                                    retry_at,
                                },
                            },
                        );
                    }
                }
            }
        }
        self.report_health(health);
        Ok(report)
    }

    /// `/readyz`'s `plugins` component: every plugin that does not load.
    fn report_health(&self, health: &Health) {
        let Ok(slots) = self.slots.read() else {
            return;
        };
        let mut failing: Vec<(ReceiverId, String)> = slots
            .iter()
            .filter_map(|(id, slot)| match &slot.state {
                SlotState::Failed { error, .. } => Some((
                    *id,
                    format!(
                        "receiver {id}: plugin `{}` (revision {}) does not load: {error}",
                        slot.name, slot.revision
                    ),
                )),
                SlotState::Loaded(_) => None,
            })
            .collect();
        failing.sort();
        if failing.is_empty() {
            health.ready("plugins");
        } else {
            let lines: Vec<String> = failing.into_iter().map(|(_, m)| m).collect();
            health.degraded("plugins", lines.join("; "));
        }
    }

    /// Runs the receiver's plugin, if the delivery has one, on this task: no
    /// thread hand-off (it cost a fifth of the throughput); a slow plugin
    /// yields the thread every epoch tick, so it delays other receivers no
    /// more than any task.
    pub(crate) async fn transform(
        &self,
        receiver: &Receiver,
        d: &LeasedDelivery,
        body: &str,
    ) -> Transform {
        let Some(revision) = d.plugin_revision.as_deref() else {
            return Transform::Unchanged;
        };
        let loaded = match self.slots.read() {
            Ok(slots) => match slots.get(&receiver.id) {
                Some(slot) if slot.revision == revision => match &slot.state {
                    SlotState::Loaded(plugin) => Ok(plugin.clone()),
                    SlotState::Failed { error, .. } => Err(Transform::NotLoaded {
                        reason: format!(
                            "held: the receiver's plugin `{}` (revision {revision}) does not load on this gateway: {error}",
                            slot.name
                        ),
                        permanent: true,
                    }),
                },
                _ => Err(self.not_loaded(revision)),
            },
            Err(_) => Err(self.not_loaded(revision)),
        };
        match loaded {
            Ok(plugin) => plugin.transform(d, receiver, body).await,
            Err(not_loaded) => not_loaded,
        }
    }

    /// Runs the plugin loaded here for a receiver on `body`, sending
    /// nothing: the console's dry run. `Err` says why no plugin runs.
    pub(crate) async fn dry_run(
        &self,
        receiver_id: ReceiverId,
        event: &PluginEvent<'_>,
        body: &str,
    ) -> Result<(Transform, std::time::Duration), String> {
        let plugin = {
            let slots = self
                .slots
                .read()
                .map_err(|_| "the plugin registry is unavailable".to_string())?;
            match slots.get(&receiver_id) {
                Some(Slot {
                    state: SlotState::Loaded(plugin),
                    ..
                }) => plugin.clone(),
                Some(Slot {
                    state: SlotState::Failed { error, .. },
                    name,
                    ..
                }) => {
                    return Err(format!(
                        "the plugin `{name}` does not load on this gateway: {error}"
                    ));
                }
                None => {
                    return Err(match &self.disabled {
                        Some(reason) => format!("plugins are disabled on this gateway ({reason})"),
                        None => "no plugin is loaded here for this receiver".to_string(),
                    });
                }
            }
        };
        let started = std::time::Instant::now();
        let outcome = plugin.call(event, body).await;
        Ok((outcome, started.elapsed()))
    }

    fn not_loaded(&self, revision: &str) -> Transform {
        if let Some(reason) = &self.disabled {
            return Transform::NotLoaded {
                reason: format!(
                    "held: the receiver has a plugin, and plugins are disabled on this gateway ({reason})"
                ),
                permanent: true,
            };
        }
        self.sync_wanted.notify_one();
        Transform::NotLoaded {
            reason: format!(
                "held: the receiver's plugin (revision {revision}) is not loaded on this gateway yet"
            ),
            permanent: false,
        }
    }
}
