//! The delivery engine: signed POSTs, at least once, with retries, an audit
//! trail, per-receiver isolation and a circuit breaker.
//!
//! ```text
//! fan-out ──hand-off (born leased, in-process channel)──────────────────┐
//! deliveries (pending, due) ──lease (SKIP LOCKED, per-receiver budget)──▶ attempt tasks
//!      ▲                                                                     │ render → plugin → sign → POST
//!      └──── recorder: one transaction per batch (status, attempts) ◀────────┘
//! ```
//!
//! Split by concern: [`dispatcher`] (leases), [`handoff`] (fan-out to
//! sending without the queue), [`attempt`] (one request),
//! [`client`] (HTTP + SSRF guard), [`headers`] (signatures), [`render`]
//! (body), [`retry`] (schedule), [`recorder`] (audit trail + circuit
//! breaker), [`receivers`] (settings cache). The plugin hook is
//! [`crate::plugins`].

pub(crate) mod attempt;
mod circuit;
pub(crate) mod client;
pub(crate) mod dispatcher;
pub(crate) mod handoff;
pub(crate) mod headers;
pub(crate) mod log_limit;
mod oauth;
pub(crate) mod rate_limit;
mod receiver_egress;
mod receiver_state;
pub(crate) mod receivers;
pub(crate) mod recorder;
pub(crate) mod retry;

use std::sync::Arc;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::config::DeliverySettings;
use crate::health::Health;
use crate::operational::{Emitter, OperationalEvent, OperationalEventType};
use crate::plugins::PluginRuntime;
use crate::secrets::SecretBox;
use crate::shared::Shared;
use crate::signals::Signals;
use crate::store::Store;

/// Delivery engine failures at start-up.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    /// Loading receivers failed.
    #[error(transparent)]
    Store(#[from] crate::store::Error),
}

/// Shared state of the engine's tasks.
pub(crate) struct Engine {
    /// The store.
    pub(crate) store: Store,
    pub(crate) settings: DeliverySettings,
    pub(crate) receivers: receivers::Receivers,
    /// HTTP client.
    pub(crate) client: client::Client,
    pub(crate) plugins: Arc<PluginRuntime>,
    /// This process's lease owner id.
    pub(crate) owner: String,
    pub(crate) signals: Arc<Signals>,
    pub(crate) health: Arc<Health>,
    pub(crate) shutdown: CancellationToken,
    /// Deliveries leased or reserved in this process and not yet finished.
    pub(crate) in_flight: std::sync::atomic::AtomicUsize,
    /// Notified when an attempt finishes or reserved room is given back.
    pub(crate) freed: tokio::sync::Notify,
    /// Warnings that would repeat per delivery, at most one a minute each.
    pub(crate) log_limiter: log_limit::LogLimiter,
    /// Where receiver and delivery trouble is reported (operational webhooks).
    pub(crate) operational: Emitter,
    /// Where attempt spans go (when traces are exported).
    pub(crate) traces: crate::traces::Traces,
    /// When a delivery counts as failing (`[operational]`).
    pub(crate) operational_settings: crate::config::OperationalSettings,
}

/// A lease owner id unique to this process.
fn owner_id() -> String {
    format!("{}-{:08x}", std::process::id(), rand::random::<u32>())
}

/// Starts the dispatcher, the recorder and the plugin sync; returns the
/// hand-off through which capture and the publisher give this engine the
/// deliveries it may send at once.
pub(crate) async fn start(
    shared: &Shared,
    tasks: &mut JoinSet<()>,
    plugins: Arc<PluginRuntime>,
    operational: Emitter,
) -> Result<handoff::Handoff, Error> {
    let Shared {
        config,
        store,
        signals,
        health,
        shutdown,
        traces,
    } = shared;
    let secrets = SecretBox::new(config.secret_key.as_ref());
    let policy = config.destination_policy();
    let client = client::Client::new(
        policy,
        config.delivery.proxies.clone(),
        config.delivery.response_body_bytes,
    );
    let receivers =
        receivers::Receivers::new(store.clone(), secrets, client.clone(), &config.delivery);
    receivers.refresh().await?;
    let engine = Arc::new(Engine {
        store: store.clone(),
        settings: config.delivery.clone(),
        receivers,
        client,
        plugins,
        owner: owner_id(),
        signals: signals.clone(),
        health: health.clone(),
        shutdown: shutdown.clone(),
        in_flight: std::sync::atomic::AtomicUsize::new(0),
        freed: tokio::sync::Notify::new(),
        log_limiter: log_limit::LogLimiter::default(),
        traces: traces.clone(),
        operational,
        operational_settings: config.operational.clone(),
    });
    let (handoff, handed) = handoff::Handoff::new(&engine);
    let (tx, rx) = tokio::sync::mpsc::channel(4096);
    tasks.spawn(recorder::run(engine.clone(), rx));
    tasks.spawn(sync_plugins(engine.clone()));
    tasks.spawn(dispatcher::run(engine, tx, handed));
    Ok(handoff)
}

/// Keeps the loaded plugins equal to what the store says is attached:
/// every 2 s, and at once when a delivery arrives for a revision not loaded
/// here. Runs beside the dispatcher, so compiling a plugin never delays
/// leasing for other receivers. Receivers whose plugin just loaded are
/// leased for again right away.
async fn sync_plugins(engine: Arc<Engine>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(2));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = engine.shutdown.cancelled() => return,
            _ = tick.tick() => {}
            _ = engine.plugins.sync_requested() => {}
        }
        match engine.plugins.sync(&engine.store, &engine.health).await {
            Ok(report) => {
                if report.loaded > 0 {
                    engine.signals.wake_delivery();
                }
                for (receiver, plugin, error) in report.newly_failed {
                    let name = engine.receivers.get(receiver).map(|r| r.name.clone());
                    engine.operational.emit(OperationalEvent::new(
                        OperationalEventType::PluginFailed,
                        Some(receiver),
                        serde_json::json!({
                            "receiverId": receiver.to_string(),
                            "receiverName": name,
                            "plugin": plugin,
                            "lastError": format!("the plugin does not load: {error}"),
                        }),
                    ));
                }
            }
            Err(err) => {
                tracing::warn!(error = %crate::report::Report(&err), "reloading plugins failed")
            }
        }
    }
}
