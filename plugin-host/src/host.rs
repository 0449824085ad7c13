//! The engine every plugin runs on, its epoch ticker, and upload-time
//! compilation.

use std::path::Path;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, Linker};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, UpdateDeadline,
};

use crate::bindings::{BindingsPre, Level, LogHost, TRANSFORMER_EXPORT, TypesHost};
use crate::cache::DiskCache;
use crate::limits::{InstanceBounds, Limiter};
use crate::pool::Plugin;
use crate::{Error, PluginLimits, imports, metric};

/// Per-component allowances of the pooling allocator, and of each store's
/// limiter. A Rust guest has one memory, a few tables and about four core
/// instances; these leave room for components composed of several modules
/// or written in other languages.
const MAX_CORE_INSTANCES_PER_COMPONENT: u32 = 16;
const MAX_MEMORIES_PER_COMPONENT: u32 = 2;
const MAX_TABLES_PER_COMPONENT: u32 = 8;
/// Elements per table (pointer-sized; reserved per table slot).
const TABLE_ELEMENTS: usize = 20_000;
/// The same allowances, for the limiter of each instance's store.
const BOUNDS: InstanceBounds = InstanceBounds {
    core_instances: MAX_CORE_INSTANCES_PER_COMPONENT as usize,
    memories: MAX_MEMORIES_PER_COMPONENT as usize,
    tables: MAX_TABLES_PER_COMPONENT as usize,
    table_elements: TABLE_ELEMENTS,
};

/// Compiles plugins and owns what they share: one wasmtime [`Engine`] with the
/// component model, epoch interruption and the pooling allocator, the thread
/// that advances the epoch, and the optional on-disk cache of compiled
/// plugins.
///
/// Create one per process. [`Plugin`]s it compiles keep the engine and the
/// ticker alive, so they stay safe to call after the host is dropped.
pub struct PluginHost {
    shared: Arc<Shared>,
    linker: Linker<HostState>,
    cache: Option<DiskCache>,
}

impl std::fmt::Debug for PluginHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginHost")
            .field("limits", &self.shared.limits)
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

/// What the host and every plugin it compiled share.
pub(crate) struct Shared {
    pub(crate) engine: Engine,
    pub(crate) limits: PluginLimits,
    /// Warm (idle, pooled) instances across all plugins, and the most there
    /// may be: half the slots, so idle instances never starve calls.
    pub(crate) warm_total: AtomicUsize,
    pub(crate) warm_budget: usize,
    _ticker: Ticker,
}

impl PluginHost {
    /// A host with these limits and no disk cache.
    pub fn new(limits: PluginLimits) -> Result<Self, Error> {
        limits.validate()?;
        let engine = engine(&limits).map_err(|e| Error::Config(format!("{e:#}")))?;
        let linker = imports::base_linker(&engine).map_err(|e| Error::Config(format!("{e:#}")))?;
        metric::describe();
        let shared = Arc::new(Shared {
            warm_total: AtomicUsize::new(0),
            warm_budget: (limits.total_instance_slots / 2) as usize,
            _ticker: Ticker::start(engine.clone(), limits.epoch_tick())?,
            engine,
            limits,
        });
        Ok(PluginHost {
            shared,
            linker,
            cache: None,
        })
    }

    /// A host with these limits that keeps compiled plugins in `dir` across
    /// restarts (created, mode 0700, if missing). Only the gateway's user
    /// may write there: a compiled plugin is native code and is loaded as
    /// such. A directory that cannot be created, or that is not owned by
    /// this process's effective user or is writable by group or others
    /// (Unix), is not used: the host logs a warning and compiles every
    /// plugin, as [`PluginHost::new`] does.
    pub fn with_disk_cache(limits: PluginLimits, dir: impl AsRef<Path>) -> Result<Self, Error> {
        let mut host = PluginHost::new(limits)?;
        host.cache = DiskCache::open(dir.as_ref(), &host.shared.engine);
        Ok(host)
    }

    /// The limits every plugin of this host runs under.
    pub fn limits(&self) -> &PluginLimits {
        &self.shared.limits
    }

    /// Validate and compile a plugin, once, at upload (or from the disk
    /// cache), check its imports and exports, and create one warm instance.
    ///
    /// Refuses, with the reason in the error: bytes that are not a
    /// component ([`Error::NotAComponent`]), an invalid component
    /// ([`Error::Invalid`], the compiler's message), one that does not export
    /// `changewire:plugin/transformer@0.1.x` ([`Error::MissingExport`]), and
    /// one importing a capability the gateway does not grant
    /// ([`Error::ForbiddenImport`]). Takes tens to hundreds of milliseconds
    /// when not cached: call it off the async runtime's worker threads.
    pub fn compile(&self, wasm: &[u8]) -> Result<Plugin, Error> {
        check_header(wasm)?;
        let sha256 = hex(&Sha256::digest(wasm));
        let component = self.load_or_compile(wasm, &sha256)?;
        let engine = &self.shared.engine;
        if component
            .get_export_index(None, TRANSFORMER_EXPORT)
            .is_none()
        {
            let exports: Vec<String> = component
                .component_type()
                .exports(engine)
                .map(|(name, _)| format!("`{name}`"))
                .collect();
            return Err(Error::MissingExport(format!(
                "it exports {}, not `{TRANSFORMER_EXPORT}`",
                if exports.is_empty() {
                    "nothing".to_owned()
                } else {
                    exports.join(", ")
                }
            )));
        }
        let linker = imports::linker_for(engine, &self.linker, &component)?;
        let pre = linker
            .instantiate_pre(&component)
            .map_err(|e| Error::Instantiate(format!("{e:#}")))?;
        let pre = BindingsPre::new(pre).map_err(|e| Error::MissingExport(format!("{e:#}")))?;
        let plugin = Plugin::new(Arc::clone(&self.shared), pre, sha256);
        plugin.warm_up()?;
        Ok(plugin)
    }

    fn load_or_compile(&self, wasm: &[u8], sha256: &str) -> Result<Component, Error> {
        let engine = &self.shared.engine;
        if let Some(component) = self.cache.as_ref().and_then(|c| c.load(engine, sha256)) {
            metrics::counter!(metric::CACHE_HITS).increment(1);
            return Ok(component);
        }
        let started = Instant::now();
        let component =
            Component::new(engine, wasm).map_err(|e| Error::Invalid(format!("{e:#}")))?;
        metrics::histogram!(metric::COMPILE_SECONDS).record(started.elapsed().as_secs_f64());
        if let Some(cache) = &self.cache {
            cache.store(sha256, &component);
        }
        Ok(component)
    }
}

/// The engine configuration: component model, epoch interruption, and a
/// pooling allocator sized by the limits.
fn engine(limits: &PluginLimits) -> wasmtime::Result<Engine> {
    let slots = limits.total_instance_slots;
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(slots)
        .total_core_instances(slots.saturating_mul(MAX_CORE_INSTANCES_PER_COMPONENT / 2))
        .total_memories(slots.saturating_mul(MAX_MEMORIES_PER_COMPONENT))
        .total_tables(slots.saturating_mul(MAX_TABLES_PER_COMPONENT / 2))
        // One stack per call or instantiation in flight (calls are async).
        .total_stacks(slots)
        .max_core_instances_per_component(MAX_CORE_INSTANCES_PER_COMPONENT)
        .max_memories_per_component(MAX_MEMORIES_PER_COMPONENT)
        .max_tables_per_component(MAX_TABLES_PER_COMPONENT)
        .table_elements(TABLE_ELEMENTS)
        .max_memory_size(usize::try_from(limits.memory_limit_bytes)?);
    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .epoch_interruption(true)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    Engine::new(&config)
}

/// The first 8 bytes of a WebAssembly binary: magic, then version and layer.
/// A component is version 0x0d, layer 1; a core module version 1, layer 0.
fn check_header(wasm: &[u8]) -> Result<(), Error> {
    const MAGIC: &[u8] = b"\0asm";
    match wasm.get(..8) {
        Some([0, b'a', b's', b'm', 0x0d, 0, 1, 0]) => Ok(()),
        Some([0, b'a', b's', b'm', 1, 0, 0, 0]) => Err(Error::NotAComponent(
            "this is a core WebAssembly module; build the plugin for `wasm32-wasip2` with the \
             changewire plugin SDK (or wrap a core module with `wasm-tools component new`)"
                .to_owned(),
        )),
        Some(h) if h.starts_with(MAGIC) => Err(Error::NotAComponent(format!(
            "unsupported WebAssembly version/layer {:02x?}",
            &h[4..]
        ))),
        _ if wasm.trim_ascii_start().starts_with(b"(") => Err(Error::NotAComponent(
            "this looks like WebAssembly text; upload the binary `.wasm`".to_owned(),
        )),
        _ => Err(Error::NotAComponent(format!(
            "expected a WebAssembly binary (starting with \\0asm), got {} bytes of something else",
            wasm.len()
        ))),
    }
}

/// Lowercase hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// Advances the engine's epoch every `tick` on its own thread, until dropped.
struct Ticker {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Ticker {
    fn start(engine: Engine, tick: std::time::Duration) -> Result<Self, Error> {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("plugin-epoch".to_owned())
            .spawn(move || {
                // `recv_timeout` never returns early on a timeout, so the
                // epoch cannot run fast; dropping the sender ends the loop.
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(tick) {
                    engine.increment_epoch();
                }
            })
            .map_err(|e| Error::Config(format!("cannot start the epoch thread: {e}")))?;
        Ok(Ticker {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Per-store data: the memory limiter and this call's log budget.
pub(crate) struct HostState {
    pub(crate) limiter: Limiter,
    /// The plugin's short id (first 12 hex digits of its SHA-256), for logs.
    plugin: Arc<str>,
    log_budget: usize,
    /// When the current call (or the instantiation) started, and how long
    /// it may run.
    started: Instant,
    time_limit: Duration,
    /// The last `error`-level message of the current call.
    pub(crate) last_error: Option<String>,
}

/// Bytes of log messages kept per call, and per message.
const LOG_BYTES_PER_CALL: usize = 8 * 1024;
const LOG_BYTES_PER_MESSAGE: usize = 1024;

impl HostState {
    pub(crate) fn new(limits: &PluginLimits, plugin: Arc<str>) -> Self {
        HostState {
            limiter: Limiter::new(limits, BOUNDS),
            plugin,
            log_budget: LOG_BYTES_PER_CALL,
            last_error: None,
            started: Instant::now(),
            time_limit: Duration::from_millis(limits.time_limit_ms),
        }
    }

    /// Reset per-call state before a call on a reused instance.
    pub(crate) fn begin_call(&mut self) {
        self.limiter.memory_refused = None;
        self.log_budget = LOG_BYTES_PER_CALL;
        self.last_error = None;
        self.started = Instant::now();
    }

    /// What running guest code does at each epoch tick: yield to the
    /// executor (other tasks on this thread run, then the guest resumes),
    /// or, once the call has run for its time limit (wall clock, waits in
    /// the executor included), stop it with
    /// [`Trap::Interrupt`](wasmtime::Trap::Interrupt).
    pub(crate) fn on_epoch_tick(&self) -> UpdateDeadline {
        if self.started.elapsed() >= self.time_limit {
            UpdateDeadline::Interrupt
        } else {
            UpdateDeadline::Yield(1)
        }
    }
}

/// `changewire:plugin/types` has types only.
impl TypesHost for HostState {}

impl LogHost for HostState {
    fn log(&mut self, level: Level, message: String) {
        if self.log_budget == 0 {
            return;
        }
        let message = truncate(&message, LOG_BYTES_PER_MESSAGE.min(self.log_budget));
        self.log_budget -= message.len().max(1).min(self.log_budget);
        let plugin = &*self.plugin;
        match level {
            Level::Debug => tracing::debug!(plugin, "{message}"),
            Level::Info => tracing::info!(plugin, "{message}"),
            Level::Warn => tracing::warn!(plugin, "{message}"),
            Level::Error => {
                tracing::warn!(plugin, "plugin error: {message}");
                self.last_error = Some(message.to_owned());
            }
        }
    }
}

/// `s` cut to at most `max` bytes, on a character boundary.
pub(crate) fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_check_explains_what_it_got() {
        let err = |b: &[u8]| check_header(b).map_err(|e| e.to_string()).unwrap_err();
        assert!(err(b"\0asm\x01\0\0\0").contains("core WebAssembly module"));
        assert!(err(b"  (component)").contains("WebAssembly text"));
        assert!(err(b"\0asm\x0e\0\x01\0").contains("unsupported WebAssembly version"));
        assert!(err(b"PK\x03\x04").contains("got 4 bytes of something else"));
        assert!(check_header(b"\0asm\x0d\0\x01\0rest").is_ok());
    }

    #[test]
    fn truncate_respects_char_boundaries() {
        assert_eq!(truncate("héllo", 2), "h");
        assert_eq!(truncate("héllo", 3), "hé");
        assert_eq!(truncate("abc", 10), "abc");
    }
}
