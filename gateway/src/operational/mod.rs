//! Operational webhooks: events about the gateway itself (a receiver
//! disabled or recovered, a delivery failing or exhausted, capture lagging,
//! a plugin failing), sent to ordinary receivers that subscribed with
//! `createOperationalSubscription`, signed, retried and audited like any
//! delivery.
//!
//! ```text
//! recorder / plugin sync / capture watcher ──emit──▶ channel ──▶ coalescer ──▶ store:
//!     one change (resource OPERATIONAL) + one delivery per subscribed receiver
//! ```
//!
//! No loops: an event about a receiver is never sent to that receiver.
//! No storms: see [`coalesce`].

pub(crate) mod coalesce;
mod publish;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub(crate) use crate::model::OperationalEventType;

use crate::config::Config;
use crate::model::ReceiverId;
use crate::signals::Signals;
use crate::store::{Store, now_ms};

/// Events waiting to be stored, at most; more are counted and dropped.
const QUEUE: usize = 10_000;

/// One thing that happened.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct OperationalEvent {
    /// What.
    pub(crate) kind: OperationalEventType,
    /// The receiver it is about, if any (never sent to it).
    pub(crate) subject: Option<ReceiverId>,
    /// The body's `data`.
    pub(crate) data: serde_json::Map<String, serde_json::Value>,
}

impl OperationalEvent {
    /// An event of `kind` about `subject` with `data`'s fields.
    pub(crate) fn new(
        kind: OperationalEventType,
        subject: Option<ReceiverId>,
        data: serde_json::Value,
    ) -> Self {
        let data = match data {
            serde_json::Value::Object(map) => map,
            _ => serde_json::Map::new(),
        };
        OperationalEvent {
            kind,
            subject,
            data,
        }
    }
}

/// Where components report operational events; cheap to clone, never blocks.
#[derive(Debug, Clone)]
pub(crate) struct Emitter {
    tx: mpsc::Sender<OperationalEvent>,
}

impl Emitter {
    /// Queues `event`; a full queue drops it (counted in
    /// `changewire_operational_events_dropped_total`).
    pub(crate) fn emit(&self, event: OperationalEvent) {
        if self.tx.try_send(event).is_err() {
            metrics::counter!("changewire_operational_events_dropped_total").increment(1);
        }
    }
}

/// When capture last had nothing left to import (ms): the oldest change not
/// yet imported was committed after it.
#[derive(Debug)]
pub(crate) struct CaptureProgress {
    caught_up_at: AtomicI64,
    /// Logical mode: why the replication slot is in danger, if it is.
    slot_danger: std::sync::Mutex<Option<String>>,
}

impl Default for CaptureProgress {
    fn default() -> Self {
        CaptureProgress {
            caught_up_at: AtomicI64::new(now_ms()),
            slot_danger: std::sync::Mutex::new(None),
        }
    }
}

impl CaptureProgress {
    /// The importer found nothing more to import.
    pub(crate) fn caught_up(&self) {
        self.caught_up_at.store(now_ms(), Ordering::Relaxed);
    }

    /// Logical mode: the slot holds too much WAL, or lost some (`Some`
    /// with the reason), or is fine again (`None`).
    pub(crate) fn slot_in_danger(&self, reason: Option<String>) {
        if let Ok(mut danger) = self.slot_danger.lock() {
            *danger = reason;
        }
    }

    /// Why the replication slot is in danger, if it is.
    pub(crate) fn slot_danger(&self) -> Option<String> {
        self.slot_danger.lock().ok().and_then(|d| d.clone())
    }

    /// How long capture has been behind (an upper bound of the oldest
    /// unimported change's age).
    pub(crate) fn behind_for(&self, now_ms: i64) -> Duration {
        let since = now_ms - self.caught_up_at.load(Ordering::Relaxed);
        Duration::from_millis(u64::try_from(since).unwrap_or(0))
    }
}

/// Starts the task that coalesces and stores operational events, and the
/// capture-lag watcher when a database is captured.
pub(crate) fn start(
    config: &Arc<Config>,
    store: &Store,
    signals: &Arc<Signals>,
    capture: &Arc<CaptureProgress>,
    shutdown: &CancellationToken,
    tasks: &mut JoinSet<()>,
) -> Emitter {
    let (tx, rx) = mpsc::channel(QUEUE);
    let emitter = Emitter { tx };
    let publisher = publish::Publisher::new(config, store.clone(), signals.clone());
    tasks.spawn(run(
        publisher,
        coalesce::Coalescer::new(config.operational.coalesce),
        rx,
        shutdown.clone(),
    ));
    if config.capture.is_some() {
        tasks.spawn(watch_capture(
            emitter.clone(),
            capture.clone(),
            config.operational.capture_lag,
            shutdown.clone(),
        ));
    }
    emitter
}

async fn run(
    publisher: publish::Publisher,
    mut coalescer: coalesce::Coalescer,
    mut rx: mpsc::Receiver<OperationalEvent>,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let ready = tokio::select! {
            _ = shutdown.cancelled() => return,
            event = rx.recv() => match event {
                Some(event) => coalescer.offer(event, Instant::now()).into_iter().collect(),
                None => return,
            },
            _ = tick.tick() => coalescer.due(Instant::now()),
        };
        for event in ready {
            publisher.publish(event).await;
        }
    }
}

/// Sends `capture.lagging` while capture stays behind for longer than
/// `threshold` (the coalescer keeps it to one per window).
async fn watch_capture(
    emitter: Emitter,
    capture: Arc<CaptureProgress>,
    threshold: Duration,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(
        (threshold / 4).clamp(Duration::from_millis(250), Duration::from_secs(15)),
    );
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let behind = capture.behind_for(now_ms());
        let reason = match capture.slot_danger() {
            Some(reason) => reason,
            None if behind > threshold => format!(
                "capture has not caught up with its log for {} s (threshold {} s); \
                 see /readyz and the gateway's log for the importer's errors",
                behind.as_secs(),
                threshold.as_secs()
            ),
            None => continue,
        };
        emitter.emit(OperationalEvent::new(
            OperationalEventType::CaptureLagging,
            None,
            serde_json::json!({
                "behindSeconds": behind.as_secs(),
                "thresholdSeconds": threshold.as_secs(),
                "reason": reason,
            }),
        ));
    }
}
