//! What the engine knows about each receiver: its settings (secrets
//! decrypted) and its live state (concurrency permits, leases in flight,
//! circuit breaker). Settings reload when a receiver changes in this process
//! (signal) or in another one (periodic check of `updated_at`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use changewire_core::{Scheme, Secret};
use tokio::sync::Semaphore;

use super::headers::Signing;
use super::retry;
use crate::config::DeliverySettings;
use crate::model::{PluginFailureMode, ReceiverId};
use crate::secrets::SecretBox;
use crate::store::receiver_headers::HeaderRow;
use crate::store::receivers::ReceiverRow;
use crate::store::{self, Store};

/// Average attempt duration under which a receiver counts as fast.
pub(crate) const FAST_RECEIVER: Duration = Duration::from_millis(50);

/// A fast receiver's lease budget, in multiples of its concurrency.
pub(crate) const FAST_BUDGET_FACTOR: usize = 16;

/// Live state that survives settings reloads.
#[derive(Debug)]
pub(crate) struct ReceiverState {
    /// Concurrent requests.
    pub(crate) permits: Semaphore,
    permit_count: AtomicUsize,
    /// Leased deliveries not yet finished in this process.
    pub(crate) in_flight: AtomicUsize,
    /// Consecutive failed attempts seen by this process.
    pub(crate) failures: AtomicU32,
    /// Circuit open until (ms); 0 when closed.
    pub(crate) open_until: AtomicI64,
    /// Times the circuit opened since the last success.
    pub(crate) trips: AtomicU32,
    /// A probe is in flight (half-open).
    pub(crate) probing: AtomicBool,
    /// Paused by hand.
    pub(crate) paused: AtomicBool,
    /// Due deliveries may be waiting in the queue beyond what this process
    /// leased: the dispatcher leases for it again as soon as room frees up.
    pub(crate) may_have_due: AtomicBool,
    /// Moving average of recent HTTP attempt durations, µs (0: none yet).
    pub(crate) latency_us: AtomicU64,
}

impl ReceiverState {
    fn new(concurrency: usize) -> Self {
        ReceiverState {
            permits: Semaphore::new(concurrency),
            permit_count: AtomicUsize::new(concurrency),
            in_flight: AtomicUsize::new(0),
            failures: AtomicU32::new(0),
            open_until: AtomicI64::new(0),
            trips: AtomicU32::new(0),
            probing: AtomicBool::new(false),
            paused: AtomicBool::new(false),
            may_have_due: AtomicBool::new(true),
            latency_us: AtomicU64::new(0),
        }
    }

    /// Folds one HTTP attempt's duration into the moving average (1/8 weight).
    pub(crate) fn observe_latency(&self, took: Duration) {
        let sample = u64::try_from(took.as_micros()).unwrap_or(u64::MAX).max(1);
        let old = self.latency_us.load(Ordering::Relaxed);
        let new = if old == 0 {
            sample
        } else {
            (old.saturating_mul(7)).saturating_add(sample) / 8
        };
        self.latency_us.store(new, Ordering::Relaxed);
    }

    fn resize(&self, concurrency: usize) {
        let current = self.permit_count.swap(concurrency, Ordering::SeqCst);
        if concurrency > current {
            self.permits.add_permits(concurrency - current);
        } else if concurrency < current {
            self.permits.forget_permits(current - concurrency);
        }
    }
}

/// A receiver's settings plus its live state.
#[derive(Debug)]
pub(crate) struct Receiver {
    pub(crate) id: ReceiverId,
    /// Name (for plugins and logs).
    pub(crate) name: String,
    /// URL, exactly as registered.
    pub(crate) url: String,
    /// Current secret.
    pub(crate) secret: Secret,
    /// Previous secret and when it stops signing (ms).
    pub(crate) previous: Option<(Secret, i64)>,
    /// Send `x-ion-signature`.
    pub(crate) ion: bool,
    /// Send Standard Webhooks headers.
    pub(crate) standard: bool,
    /// Custom headers.
    pub(crate) headers: Vec<(String, String)>,
    /// Basic auth.
    pub(crate) basic_auth: Option<(String, Secret)>,
    /// Whole-request timeout.
    pub(crate) timeout: Duration,
    /// Retry policy.
    pub(crate) retry: retry::Policy,
    /// Success status.
    pub(crate) expected_status: u16,
    /// Per-row ordering.
    pub(crate) ordered: bool,
    /// Concurrent requests.
    pub(crate) concurrency: usize,
    /// Receives new events.
    pub(crate) active: bool,
    /// Deliver the original body when the plugin fails.
    pub(crate) plugin_deliver_original: bool,
    /// Live state.
    pub(crate) state: Arc<ReceiverState>,
}

impl Receiver {
    /// Signing material now (the previous secret only within its overlap).
    pub(crate) fn signing(&self, now_ms: i64) -> Signing {
        Signing {
            current: self.secret.clone(),
            previous: self
                .previous
                .as_ref()
                .filter(|(_, until)| *until > now_ms)
                .map(|(s, _)| s.clone()),
            ion: self.ion,
            standard: self.standard,
        }
    }

    /// Leases this receiver may hold in this process: twice its concurrency,
    /// or [`FAST_BUDGET_FACTOR`] times it while its recent attempts average
    /// under [`FAST_RECEIVER`]. A fast receiver drains even the larger budget
    /// in well under a second, and refilling it takes fewer, larger lease
    /// queries; a slow, hanging or new receiver keeps the small budget,
    /// which it drains well within its leases.
    pub(crate) fn lease_budget(&self) -> usize {
        let latency = self.state.latency_us.load(Ordering::Relaxed);
        let fast = latency > 0 && u128::from(latency) < FAST_RECEIVER.as_micros();
        self.concurrency * if fast { FAST_BUDGET_FACTOR } else { 2 }
    }

    /// Whether deliveries may be attempted now; `Probe` when only a circuit
    /// breaker probe is allowed.
    pub(crate) fn eligibility(&self, now_ms: i64) -> Eligibility {
        // Disabled (ION's `active: false`) or paused: pending deliveries wait.
        if !self.active || self.state.paused.load(Ordering::SeqCst) {
            return Eligibility::Held;
        }
        let open_until = self.state.open_until.load(Ordering::SeqCst);
        if open_until == 0 {
            return Eligibility::Open;
        }
        if now_ms >= open_until && !self.state.probing.load(Ordering::SeqCst) {
            return Eligibility::Probe;
        }
        Eligibility::Held
    }
}

/// Whether a receiver's deliveries may go now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Eligibility {
    /// Normal operation.
    Open,
    /// One probe may go (circuit half-open).
    Probe,
    /// Nothing goes (paused, or circuit open).
    Held,
}

/// The cache.
pub(crate) struct Receivers {
    store: Store,
    secrets: SecretBox,
    default_concurrency: usize,
    map: RwLock<HashMap<ReceiverId, Arc<Receiver>>>,
    last_seen: AtomicI64,
}

impl Receivers {
    /// An empty cache.
    pub(crate) fn new(store: Store, secrets: SecretBox, settings: &DeliverySettings) -> Self {
        Receivers {
            store,
            secrets,
            default_concurrency: usize::try_from(settings.default_concurrency)
                .unwrap_or(16)
                .max(1),
            map: RwLock::new(HashMap::new()),
            last_seen: AtomicI64::new(0),
        }
    }

    /// One receiver.
    pub(crate) fn get(&self, id: ReceiverId) -> Option<Arc<Receiver>> {
        self.map.read().ok()?.get(&id).cloned()
    }

    /// Every receiver.
    pub(crate) fn all(&self) -> Vec<Arc<Receiver>> {
        self.map
            .read()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Reloads receivers changed since the last reload and drops deleted ones.
    pub(crate) async fn refresh(&self) -> store::Result<()> {
        let since = self.last_seen.load(Ordering::SeqCst);
        // Two seconds of overlap: clocks of writers in other processes differ slightly.
        let changed = self
            .store
            .receivers_changed_since(since.saturating_sub(2_000))
            .await?;
        let ids = self.store.receiver_ids().await?;
        let mut built = Vec::with_capacity(changed.len());
        let mut newest = since;
        for row in changed {
            newest = newest.max(row.updated_at);
            let headers = self.store.receiver_headers(row.id).await?;
            match self.build(row, headers) {
                Ok(r) => built.push(r),
                Err(err) => {
                    tracing::error!(error = %err, "a receiver's secret cannot be read; its deliveries wait")
                }
            }
        }
        if let Ok(mut map) = self.map.write() {
            map.retain(|id, _| ids.binary_search(id).is_ok());
            for r in built {
                map.insert(r.id, Arc::new(r));
            }
        }
        self.last_seen.store(newest, Ordering::SeqCst);
        Ok(())
    }

    fn build(
        &self,
        row: ReceiverRow,
        stored_headers: Vec<HeaderRow>,
    ) -> Result<Receiver, crate::secrets::Error> {
        let mut headers = Vec::with_capacity(stored_headers.len());
        for h in stored_headers {
            let value = self.secrets.open(&h.value)?;
            headers.push((h.key, value.expose().to_string()));
        }
        let f = &row.settings;
        let concurrency = f
            .max_concurrency
            .and_then(|c| usize::try_from(c).ok())
            .filter(|c| *c > 0)
            .unwrap_or(self.default_concurrency);
        let state = self
            .get(row.id)
            .map(|existing| existing.state.clone())
            .unwrap_or_else(|| Arc::new(ReceiverState::new(concurrency)));
        state.resize(concurrency);
        state.paused.store(row.paused, Ordering::SeqCst);
        state
            .open_until
            .store(row.circuit_open_until.unwrap_or(0), Ordering::SeqCst);
        if row.circuit_open_until.is_none() {
            state.probing.store(false, Ordering::SeqCst);
        }
        state.trips.store(
            u32::try_from(row.circuit_trips).unwrap_or(0),
            Ordering::SeqCst,
        );
        let previous = match (&row.previous_secret, row.previous_secret_expires_at) {
            (Some(p), Some(until)) => Some((self.secrets.open(p)?, until)),
            _ => None,
        };
        let basic_auth = match (&f.basic_auth_username, &f.basic_auth_password) {
            (Some(u), Some(p)) => Some((u.clone(), self.secrets.open(p)?)),
            _ => None,
        };
        Ok(Receiver {
            id: row.id,
            name: f.name.clone(),
            url: f.webhook_uri.clone(),
            secret: self.secrets.open(&row.shared_secret)?,
            previous,
            ion: f.signature_schemes.contains(Scheme::Ion),
            standard: f.signature_schemes.contains(Scheme::Standard),
            headers,
            basic_auth,
            timeout: Duration::from_millis(u64::try_from(f.timeout_ms.max(1)).unwrap_or(5000)),
            retry: retry::Policy::from_settings(
                f.retry_policy,
                f.max_attempts,
                f.retry_interval_secs,
            ),
            expected_status: u16::try_from(f.expected_response_code).unwrap_or(200),
            ordered: f.ordered,
            concurrency,
            active: f.active,
            plugin_deliver_original: f.plugin_failure_mode == PluginFailureMode::DeliverOriginal,
            state,
        })
    }
}
