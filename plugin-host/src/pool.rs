//! A compiled plugin and its pool of warm instances: the per-call path.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use wasmtime::{Store, Trap};

use crate::bindings::{Bindings, BindingsPre, Event};
use crate::host::{HostState, Shared, truncate};
use crate::imports::NotProvided;
use crate::limits::MemoryLimitHit;
use crate::{Error, PluginOutcome, metric, output};

/// The most of a plugin's own error message that is kept.
const PLUGIN_ERROR_BYTES: usize = 1024;

/// What the plugin is called with: the webhook about to be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PluginInput<'a> {
    /// The resource, lowercase, e.g. `runs`.
    pub resource: &'a str,
    /// `create`, `update`, `delete` or `test`.
    pub action: &'a str,
    /// The JSON body the gateway would send without the plugin.
    pub body: &'a str,
    /// The receiver's id.
    pub receiver_id: i64,
    /// The receiver's name.
    pub receiver_name: &'a str,
    /// The configuration JSON given at attach time (`{}` if none).
    pub config: &'a str,
}

/// A compiled plugin, ready to call from any thread.
///
/// Cheap to clone (an `Arc`). Each call borrows a warm instance from the
/// plugin's pool, or creates one if all are busy, and returns it afterwards;
/// an instance that trapped or hit a limit is discarded instead. Dropping
/// the last clone frees the instances.
#[derive(Clone)]
pub struct Plugin {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Shared>,
    pre: BindingsPre<HostState>,
    sha256: String,
    /// First 12 hex digits of the SHA-256: the plugin's name in logs.
    label: Arc<str>,
    warm: Mutex<Vec<Warm>>,
}

/// One instance with its store, idle in the pool or in use by one call.
struct Warm {
    store: Store<HostState>,
    bindings: Bindings,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("sha256", &self.inner.sha256)
            .finish_non_exhaustive()
    }
}

impl Plugin {
    pub(crate) fn new(shared: Arc<Shared>, pre: BindingsPre<HostState>, sha256: String) -> Self {
        Plugin {
            inner: Arc::new(Inner {
                label: Arc::from(&sha256[..12]),
                shared,
                pre,
                sha256,
                warm: Mutex::new(Vec::new()),
            }),
        }
    }

    /// The SHA-256 of the uploaded `.wasm`, lowercase hex: a stable identity
    /// for the plugin's content.
    pub fn sha256(&self) -> &str {
        &self.inner.sha256
    }

    /// Instances idle in this plugin's pool right now.
    pub fn warm_instances(&self) -> usize {
        self.inner.lock().len()
    }

    /// Run the plugin on one event, from async code.
    ///
    /// The guest runs on the calling task (on a stack of its own) and yields
    /// to the executor at every epoch tick (1–2 ms), so a slow plugin never
    /// holds a runtime thread longer than that; once it has used its time
    /// limit (default 100 ms) it is interrupted. A fast plugin costs no
    /// thread hand-off at all: the whole call stays on this thread.
    ///
    /// `Ok` means the plugin returned a valid outcome; every way a plugin can
    /// misbehave is an [`Error`] whose `Display` is the reason to record.
    /// Dropping the future mid-call discards the instance it ran on.
    pub async fn call_async(&self, input: &PluginInput<'_>) -> Result<PluginOutcome, Error> {
        let started = Instant::now();
        let result = self.call_inner(input).await;
        let outcome = match &result {
            Ok(PluginOutcome::Deliver { .. }) => "deliver",
            Ok(PluginOutcome::Drop { .. }) => "drop",
            Err(e) => e.kind(),
        };
        metrics::counter!(metric::CALLS, "outcome" => outcome).increment(1);
        metrics::histogram!(metric::CALL_SECONDS).record(started.elapsed().as_secs_f64());
        if let Err(e) = &result {
            tracing::debug!(plugin = &*self.inner.label, error = %e, "plugin call failed");
        }
        result
    }

    /// Run the plugin on one event, blocking the calling thread for the
    /// call (at most the time limit plus one epoch tick). For threads that
    /// are not async workers (tools, tests, benchmarks); async code uses
    /// [`call_async`](Self::call_async).
    pub fn call(&self, input: &PluginInput<'_>) -> Result<PluginOutcome, Error> {
        futures_executor::block_on(self.call_async(input))
    }

    async fn call_inner(&self, input: &PluginInput<'_>) -> Result<PluginOutcome, Error> {
        let mut warm = match self.checkout() {
            Some(warm) => warm,
            None => self.instantiate().await?,
        };
        let event = Event {
            resource: input.resource.to_owned(),
            action: input.action.to_owned(),
            body: input.body.to_owned(),
            receiver_id: input.receiver_id,
            receiver_name: input.receiver_name.to_owned(),
            config: input.config.to_owned(),
        };
        warm.store.data_mut().begin_call();
        warm.store.set_epoch_deadline(1);
        let returned = warm
            .bindings
            .changewire_plugin_transformer()
            .call_transform(&mut warm.store, &event)
            .await;
        match returned {
            Ok(returned) => {
                // The guest returned normally: its instance is fine to reuse,
                // whatever it returned.
                self.checkin(warm);
                match returned {
                    Ok(outcome) => output::validate(outcome, &self.inner.shared.limits),
                    Err(message) => Err(Error::PluginError(
                        truncate(&message, PLUGIN_ERROR_BYTES).to_owned(),
                    )),
                }
            }
            // `warm` is dropped: after a trap the instance is unusable.
            Err(e) => Err(self.classify(&e, warm.store.data())),
        }
    }

    /// Create an instance now and keep it warm, so the first delivery does
    /// not pay for it and upload fails if the plugin cannot be instantiated.
    pub(crate) fn warm_up(&self) -> Result<(), Error> {
        let warm = futures_executor::block_on(self.instantiate())?;
        self.checkin(warm);
        Ok(())
    }

    async fn instantiate(&self) -> Result<Warm, Error> {
        let shared = &self.inner.shared;
        let mut store = Store::new(
            &shared.engine,
            HostState::new(&shared.limits, Arc::clone(&self.inner.label)),
        );
        store.limiter(|state| &mut state.limiter);
        // Every tick: yield to the executor, or stop a call that used its
        // time limit. Instantiation runs the guest's start code: bounded too.
        store.epoch_deadline_callback(|ctx| Ok(ctx.data().on_epoch_tick()));
        store.set_epoch_deadline(1);
        match self.inner.pre.instantiate_async(&mut store).await {
            Ok(bindings) => {
                metrics::counter!(metric::INSTANCES_CREATED).increment(1);
                Ok(Warm { store, bindings })
            }
            Err(e)
                if e.downcast_ref::<wasmtime::PoolConcurrencyLimitError>()
                    .is_some() =>
            {
                Err(Error::Capacity {
                    slots: shared.limits.total_instance_slots,
                })
            }
            Err(e) => Err(match self.classify(&e, store.data()) {
                Error::Trap { message } => Error::Instantiate(message),
                other => other,
            }),
        }
    }

    /// Turn a wasmtime error from a call into the precise reason.
    fn classify(&self, e: &wasmtime::Error, state: &HostState) -> Error {
        let limits = &self.inner.shared.limits;
        if let Some(requested) = state.limiter.memory_refused {
            return Error::MemoryLimit {
                limit_bytes: limits.memory_limit_bytes,
                requested_bytes: requested,
            };
        }
        if let Some(hit) = e.downcast_ref::<MemoryLimitHit>() {
            return Error::MemoryLimit {
                limit_bytes: hit.limit,
                requested_bytes: hit.requested,
            };
        }
        if e.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
            return Error::Timeout {
                limit_ms: limits.time_limit_ms,
            };
        }
        let mut message = match (e.downcast_ref::<NotProvided>(), e.downcast_ref::<Trap>()) {
            (Some(not_provided), _) => not_provided.to_string(),
            // "wasm trap: wasm `unreachable` instruction executed" -> drop
            // the first "wasm trap: ", the variant already says "trapped".
            (None, Some(trap)) => {
                let text = trap.to_string();
                text.strip_prefix("wasm trap: ")
                    .map(str::to_owned)
                    .unwrap_or(text)
            }
            (None, None) => format!("{e:#}"),
        };
        if let Some(reported) = &state.last_error {
            message = format!("{message} ({reported})");
        }
        Error::Trap { message }
    }

    fn checkout(&self) -> Option<Warm> {
        let warm = self.inner.lock().pop()?;
        self.inner.shared.warm_total.fetch_sub(1, Ordering::Relaxed);
        Some(warm)
    }

    /// Return an instance to the pool, unless the pool or the host-wide warm
    /// budget is full; then it is dropped (outside the lock).
    fn checkin(&self, warm: Warm) {
        let shared = &self.inner.shared;
        let mut pool = self.inner.lock();
        if pool.len() < shared.limits.max_warm_instances as usize
            && shared
                .warm_total
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                    (n < shared.warm_budget).then_some(n + 1)
                })
                .is_ok()
        {
            pool.push(warm);
            return;
        }
        drop(pool);
        drop(warm);
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Warm>> {
        // A panic while holding the lock cannot leave the Vec inconsistent.
        self.warm.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        let idle = self
            .warm
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .len();
        self.shared.warm_total.fetch_sub(idle, Ordering::Relaxed);
    }
}
