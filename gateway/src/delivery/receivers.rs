//! What the engine knows about each receiver: its settings (secrets
//! decrypted) and its live state (concurrency permits, leases in flight,
//! circuit breaker). Settings reload when a receiver changes in this process
//! (signal) or in another one (periodic check of `updated_at`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use changewire_core::standard::Ed25519SigningKey;
use changewire_core::{Scheme, Secret};

use super::client::Client;
use super::headers::Signing;
use super::receiver_egress::{ReceiverEgress, UnusableReceiver};
pub(crate) use super::receiver_state::ReceiverState;
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
    /// Sign with Ed25519 (`v1a`).
    pub(crate) ed25519: bool,
    /// The Ed25519 signing key.
    pub(crate) signing_key: Option<Ed25519SigningKey>,
    /// The previous Ed25519 key, signing until the previous secret's expiry.
    pub(crate) previous_signing_key: Option<Ed25519SigningKey>,
    /// Custom headers.
    pub(crate) headers: Vec<(String, String)>,
    /// Basic auth.
    pub(crate) basic_auth: Option<(String, Secret)>,
    /// Its own TLS client and OAuth2 credentials, if any.
    pub(crate) egress: ReceiverEgress,
    /// Whole-request timeout.
    pub(crate) timeout: Duration,
    /// Retry policy.
    pub(crate) retry: retry::Policy,
    /// Success status.
    pub(crate) expected_status: u16,
    /// Per-row ordering.
    pub(crate) ordered: bool,
    /// Requests per second, from all processes together.
    pub(crate) rate_limit: Option<i32>,
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
        let overlap = self
            .previous
            .as_ref()
            .is_some_and(|(_, until)| *until > now_ms);
        let ed25519 = if self.ed25519 {
            self.signing_key
                .iter()
                .chain(self.previous_signing_key.iter().filter(|_| overlap))
                .cloned()
                .collect()
        } else {
            Vec::new()
        };
        Signing {
            ed25519,
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
        let budget = self.state.effective() * if fast { FAST_BUDGET_FACTOR } else { 2 };
        // A rate-limited receiver leases at most one second of its budget.
        match self.rate_limit {
            Some(rate) => budget.min(usize::try_from(rate).unwrap_or(1).max(1)),
            None => budget,
        }
    }

    /// Whether deliveries may be attempted now; `Probe` when only a circuit
    /// breaker probe is allowed.
    pub(crate) fn eligibility(&self, now_ms: i64) -> Eligibility {
        // Disabled (ION's `active: false`) or paused: pending deliveries wait.
        if !self.active
            || self.state.paused.load(Ordering::SeqCst)
            || self.state.throttled_until.load(Ordering::SeqCst) > now_ms
        {
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
    client: Client,
    default_concurrency: usize,
    map: RwLock<HashMap<ReceiverId, Arc<Receiver>>>,
    last_seen: AtomicI64,
    /// Store reads begun by reloads so far (each reload takes the next number).
    reads_begun: AtomicU64,
}

impl Receivers {
    /// An empty cache.
    pub(crate) fn new(
        store: Store,
        secrets: SecretBox,
        client: Client,
        settings: &DeliverySettings,
    ) -> Self {
        Receivers {
            store,
            secrets,
            client,
            default_concurrency: usize::try_from(settings.default_concurrency)
                .unwrap_or(16)
                .max(1),
            map: RwLock::new(HashMap::new()),
            last_seen: AtomicI64::new(0),
            reads_begun: AtomicU64::new(0),
        }
    }

    /// The number of the last reload read begun: a reload numbered above it
    /// reads the store after this moment.
    pub(crate) fn reads_begun(&self) -> u64 {
        self.reads_begun.load(Ordering::SeqCst)
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
        let read = self.reads_begun.fetch_add(1, Ordering::SeqCst) + 1;
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
            match self.build(row, headers, read) {
                Ok(r) => built.push(r),
                Err(err) => {
                    tracing::error!(error = %err, "a receiver cannot be loaded; its deliveries wait")
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
        read: u64,
    ) -> Result<Receiver, UnusableReceiver> {
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
        let existing = self.get(row.id);
        let egress = ReceiverEgress::build(
            &f.egress,
            &self.secrets,
            &self.client,
            existing.as_ref().map(|e| &e.egress),
        )?;
        let state = existing
            .map(|existing| existing.state.clone())
            .unwrap_or_else(|| Arc::new(ReceiverState::new(concurrency)));
        state.configure(concurrency);
        state
            .failing_since
            .store(row.failing_since.unwrap_or(0), Ordering::SeqCst);
        let held = read <= state.held_through_read.load(Ordering::SeqCst);
        if row.paused || !held {
            state.held_through_read.store(0, Ordering::SeqCst);
        }
        let paused = row.paused || held;
        let was_paused = state.paused.swap(paused, Ordering::SeqCst);
        if was_paused && !paused {
            // Resumed by hand: its past failures are forgiven.
            state.failures.store(0, Ordering::SeqCst);
            state.strikes.store(0, Ordering::SeqCst);
        }
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
        let ed25519_key =
            |stored: &Option<String>| -> Result<Option<Ed25519SigningKey>, crate::secrets::Error> {
                match stored {
                    None => Ok(None),
                    Some(sealed) => {
                        let opened = self.secrets.open(sealed)?;
                        Ok(Ed25519SigningKey::parse(opened.expose()).ok())
                    }
                }
            };
        let signing_key = ed25519_key(&row.signing_key)?;
        let previous_signing_key = ed25519_key(&row.previous_signing_key)?;
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
            ed25519: f.signature_schemes.contains(Scheme::Ed25519),
            signing_key,
            previous_signing_key,
            headers,
            basic_auth,
            egress,
            timeout: Duration::from_millis(u64::try_from(f.timeout_ms.max(1)).unwrap_or(5000)),
            retry: retry::Policy::from_settings(
                f.retry_policy,
                f.max_attempts,
                f.retry_interval_secs,
            ),
            expected_status: u16::try_from(f.expected_response_code).unwrap_or(200),
            ordered: f.ordered,
            rate_limit: f.rate_limit_per_second.filter(|r| *r > 0),
            active: f.active,
            plugin_deliver_original: f.plugin_failure_mode == PluginFailureMode::DeliverOriginal,
            state,
        })
    }
}
