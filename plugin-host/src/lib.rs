//! # changewire-plugin-host
//!
//! The WebAssembly plugin host of changewire: per-receiver transform and
//! filter, run in microseconds, safely. The gateway (`changewire-gateway`)
//! keeps which receiver has which plugin; this crate compiles and runs them.
//!
//! A plugin is a WebAssembly component implementing
//! `plugins/wit/plugin.wit` (`changewire:plugin/transformer@0.1.0`). Just
//! before a delivery is signed, the gateway calls it with the event; it
//! answers deliver (a new body and extra headers), drop (recorded as
//! `filtered`), or an error.
//!
//! ```text
//! upload ──▶ PluginHost::compile ──▶ Plugin ──(clone, any thread)──▶ Plugin::call_async(&PluginInput)
//!             header check              InstancePre                     check out a warm instance
//!             compile (or disk cache)   pool of warm instances            (or instantiate: ~30 µs)
//!             imports: provide / stub                                   epoch ticks: yield, or stop at
//!               / refuse                                                  the time limit; memory cap
//!             export check                                              call transform (~1 µs + guest)
//!             one warm instance                                         validate output
//!                                                                       return the instance, or
//!                                                                         discard it after a trap
//! ```
//!
//! What a plugin gets: no filesystem, network, clock, randomness or
//! environment (see [`imports`] for the table); a time limit (epoch
//! interruption), a memory cap, and an output cap, all in [`PluginLimits`].
//! Every way a call can fail is an [`Error`] variant whose `Display` is the
//! reason to record in the delivery's attempt; [`Error::kind`] is a stable
//! code, and [`Error::is_plugin_fault`] says whether the receiver's
//! "on plugin error" choice applies.
//!
//! Metrics (via the `metrics` facade, to whatever recorder the process
//! installs; [`metric`] lists the families):
//! `changewire_plugin_calls_total{outcome}` (outcome: `deliver`, `drop`, or
//! an [`Error::kind`]), `changewire_plugin_call_duration_seconds`,
//! `changewire_plugin_instances_created_total`,
//! `changewire_plugin_compile_duration_seconds`,
//! `changewire_plugin_cache_hits_total`.
//!
//! Threads: async code calls [`Plugin::call_async`] on its own task: the
//! guest runs on a stack of its own and yields to the executor at every
//! epoch tick (1–2 ms), so a fast plugin costs no thread hand-off (a
//! `spawn_blocking` per call cost a fifth of the delivery throughput) and a
//! slow one holds a runtime thread no longer than a tick at a time.
//! [`Plugin::call`] blocks the calling thread instead (tools, tests).
//! [`PluginHost::compile`] takes tens to hundreds of milliseconds: call it
//! through `spawn_blocking`.
//!
//! Files: `bindings` (the `bindgen!` output, private), `host` (engine,
//! epoch ticker, compilation), `imports` (what a plugin may import),
//! `limits` (limits and the memory limiter), `pool` (a compiled plugin and
//! its warm instances: the per-call path), `output` (checks on what a plugin
//! returns), `cache` (compiled plugins on disk), `error`.

// Unsafe code is denied everywhere; the one exception (loading compiled
// plugins from the on-disk cache, `cache.rs`) allows it locally with a
// SAFETY comment.
#![deny(unsafe_code)]
#![deny(missing_docs)]

mod bindings;
mod cache;
mod error;
mod host;
pub mod imports;
mod limits;
mod output;
mod pool;

#[cfg(test)]
mod tests;

pub use error::Error;
pub use host::PluginHost;
pub use limits::PluginLimits;
pub use output::{MAX_HEADER_VALUE_BYTES, MAX_HEADERS, MAX_REASON_BYTES};
pub use pool::{Plugin, PluginInput};

/// What the plugin decided, after validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginOutcome {
    /// Send the webhook.
    Deliver {
        /// The body to send instead of the original (valid JSON), or `None`
        /// to send the original.
        body: Option<String>,
        /// Headers to add, names lowercased; none is reserved by the gateway
        /// and no name repeats. They go after the receiver's custom headers
        /// and win over a custom header of the same name.
        headers: Vec<PluginHeader>,
    },
    /// Do not send; record the delivery as `filtered` with this reason.
    Drop {
        /// The plugin's reason, cut to [`MAX_REASON_BYTES`].
        reason: String,
    },
}

/// A header a plugin adds to the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginHeader {
    /// Lowercase HTTP token.
    pub name: String,
    /// Printable ASCII, space and tab only.
    pub value: String,
}

/// The host's metric families, for a process that lists or describes them
/// up front (the gateway's `/metrics`).
pub mod metric {
    pub(crate) const CALLS: &str = "changewire_plugin_calls_total";
    pub(crate) const CALL_SECONDS: &str = "changewire_plugin_call_duration_seconds";
    pub(crate) const INSTANCES_CREATED: &str = "changewire_plugin_instances_created_total";
    pub(crate) const COMPILE_SECONDS: &str = "changewire_plugin_compile_duration_seconds";
    pub(crate) const CACHE_HITS: &str = "changewire_plugin_cache_hits_total";

    /// Every plugin metric family.
    pub const ALL: [&str; 5] = [
        CALLS,
        CALL_SECONDS,
        INSTANCES_CREATED,
        COMPILE_SECONDS,
        CACHE_HITS,
    ];

    /// Register every plugin series that is known before any call, at zero,
    /// so `/metrics` lists the families from the start.
    pub fn register_zero() {
        for outcome in ["deliver", "drop"] {
            metrics::counter!(CALLS, "outcome" => outcome).increment(0);
        }
        let _ = metrics::histogram!(CALL_SECONDS);
        metrics::counter!(INSTANCES_CREATED).increment(0);
        let _ = metrics::histogram!(COMPILE_SECONDS);
        metrics::counter!(CACHE_HITS).increment(0);
    }

    /// Register descriptions with whatever recorder is installed.
    pub fn describe() {
        use metrics::{Unit, describe_counter, describe_histogram};
        describe_counter!(
            CALLS,
            "Plugin calls, by outcome (deliver, drop, or the error kind)."
        );
        describe_histogram!(
            CALL_SECONDS,
            Unit::Seconds,
            "Time of one plugin call, all outcomes."
        );
        describe_counter!(
            INSTANCES_CREATED,
            "Plugin instances created (warm-up and pool misses)."
        );
        describe_histogram!(
            COMPILE_SECONDS,
            Unit::Seconds,
            "Time to compile an uploaded plugin."
        );
        describe_counter!(
            CACHE_HITS,
            "Plugins loaded from the on-disk compiled cache."
        );
    }
}
