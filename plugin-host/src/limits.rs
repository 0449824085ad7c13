//! The bounds every plugin call runs under, and the store limiter that
//! enforces the memory cap.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::Error;

/// Limits for plugins, shared by every plugin of one [`PluginHost`](crate::PluginHost).
///
/// Embed it in the gateway configuration (`[plugins]` in TOML); unknown keys
/// are refused and missing ones take the defaults below.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PluginLimits {
    /// Wall-clock time one call may run, in milliseconds (1..=60000).
    /// A call is interrupted at the first epoch tick (a tenth of the limit,
    /// 1 to 2 ms) after `time_limit_ms`; until then it yields its thread to
    /// other work at every tick. Default: 100.
    pub time_limit_ms: u64,
    /// The most all linear memories of a plugin instance together may grow
    /// to, in bytes (1 MiB..=4 GiB): a component made of several core
    /// instances, each with its own memory, shares one cap. A growth past
    /// it traps the call. Default: 64 MiB.
    pub memory_limit_bytes: u64,
    /// The most a plugin may return (new body, headers and drop reason
    /// together), in bytes. Keep it at least as large as the largest
    /// webhook body. Default: 4 MiB.
    pub max_output_bytes: u64,
    /// Idle instances kept per plugin for reuse; a call beyond that many
    /// at once creates a fresh instance (tens of microseconds), and 0 means
    /// a fresh instance for every call. Default: 8.
    pub max_warm_instances: u32,
    /// Instance slots of the pooling allocator, shared by all plugins: the
    /// most instances that can exist at once, in use or warm. At most half
    /// of them are kept warm, so the rest stay free for calls. Each slot
    /// reserves about 8 GiB of virtual address space (two 4 GiB memory
    /// reservations, which let compiled code skip bounds checks; about 15%
    /// faster on JSON work), not memory: 256 slots show as ~2 TiB of VSZ
    /// and a few MiB of RSS. Default: 256.
    pub total_instance_slots: u32,
}

impl Default for PluginLimits {
    fn default() -> Self {
        PluginLimits {
            time_limit_ms: 100,
            memory_limit_bytes: 64 << 20,
            max_output_bytes: 4 << 20,
            max_warm_instances: 8,
            total_instance_slots: 256,
        }
    }
}

impl PluginLimits {
    /// Check that every limit is in range.
    pub fn validate(&self) -> Result<(), Error> {
        let fail = |m: String| Err(Error::Config(m));
        if !(1..=60_000).contains(&self.time_limit_ms) {
            return fail(format!(
                "time_limit_ms must be 1..=60000, not {}",
                self.time_limit_ms
            ));
        }
        if !((1 << 20)..=(4 << 30)).contains(&self.memory_limit_bytes) {
            return fail(format!(
                "memory_limit_bytes must be 1 MiB..=4 GiB, not {}",
                self.memory_limit_bytes
            ));
        }
        if self.max_output_bytes < 1024 {
            return fail(format!(
                "max_output_bytes must be at least 1024, not {}",
                self.max_output_bytes
            ));
        }
        if !(1..=100_000).contains(&self.total_instance_slots) {
            return fail(format!(
                "total_instance_slots must be 1..=100000, not {}",
                self.total_instance_slots
            ));
        }
        if self.max_warm_instances > self.total_instance_slots {
            return fail(format!(
                "max_warm_instances ({}) cannot exceed total_instance_slots ({})",
                self.max_warm_instances, self.total_instance_slots
            ));
        }
        Ok(())
    }

    /// How often the epoch ticker advances: a tenth of the time limit,
    /// between 1 and 2 ms. A running plugin yields its thread at every tick
    /// and is interrupted at the first tick past its limit.
    pub(crate) fn epoch_tick(&self) -> Duration {
        Duration::from_millis((self.time_limit_ms / 10).clamp(1, 2))
    }
}

/// How many of each thing one plugin instance (one store) may have. The
/// pooling allocator reserves slots by the same numbers; the limiter
/// enforces them per store as well.
#[derive(Debug, Clone, Copy)]
pub(crate) struct InstanceBounds {
    /// Core module instances.
    pub(crate) core_instances: usize,
    /// Linear memories (defined, across all core instances).
    pub(crate) memories: usize,
    /// Tables (defined, across all core instances).
    pub(crate) tables: usize,
    /// Elements per table.
    pub(crate) table_elements: usize,
}

/// The store's resource limiter: caps the sum of all the instance's
/// memories at the configured size, bounds the number of instances,
/// memories and tables, and remembers that it refused a growth, so the
/// call's error is a precise [`Error::MemoryLimit`] rather than whatever
/// trap follows.
///
/// A store holds one plugin instance, whose memories only grow, so the sum
/// is kept by adding each granted growth (the initial size of a memory is
/// its first growth, from 0).
#[derive(Debug)]
pub(crate) struct Limiter {
    memory_limit: u64,
    bounds: InstanceBounds,
    /// Bytes of all linear memories of the store, as granted.
    memory_total: u64,
    /// The last growth granted, taken back if wasmtime then fails it.
    last_grant: u64,
    /// The total a refused `memory.grow` would have reached, if any during
    /// this call.
    pub(crate) memory_refused: Option<u64>,
}

/// The error a refused growth traps with.
#[derive(Debug, thiserror::Error)]
#[error("memory limit of {limit} bytes reached (the memories would total {requested})")]
pub(crate) struct MemoryLimitHit {
    pub(crate) limit: u64,
    pub(crate) requested: u64,
}

impl Limiter {
    pub(crate) fn new(limits: &PluginLimits, bounds: InstanceBounds) -> Self {
        Limiter {
            memory_limit: limits.memory_limit_bytes,
            bounds,
            memory_total: 0,
            last_grant: 0,
            memory_refused: None,
        }
    }
}

impl wasmtime::ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let growth = u64::try_from(desired.saturating_sub(current)).unwrap_or(u64::MAX);
        let total = self.memory_total.saturating_add(growth);
        if total > self.memory_limit {
            self.memory_refused = Some(total);
            return Err(wasmtime::Error::new(MemoryLimitHit {
                limit: self.memory_limit,
                requested: total,
            }));
        }
        self.memory_total = total;
        self.last_grant = growth;
        Ok(true)
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        // The growth did not happen: it no longer counts.
        self.memory_total = self.memory_total.saturating_sub(self.last_grant);
        self.last_grant = 0;
        // Growth refused by the pool itself: trap too, never hand the guest
        // a failed `memory.grow` it might mishandle.
        self.memory_refused.get_or_insert(self.memory_limit);
        Err(error)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= self.bounds.table_elements)
    }

    fn instances(&self) -> usize {
        self.bounds.core_instances
    }

    fn tables(&self) -> usize {
        self.bounds.tables
    }

    fn memories(&self) -> usize {
        self.bounds.memories
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_deserialize_from_nothing() {
        assert!(PluginLimits::default().validate().is_ok());
        let parsed: PluginLimits = serde_json::from_str("{}").expect("empty config");
        assert_eq!(parsed, PluginLimits::default());
    }

    #[test]
    fn unknown_and_out_of_range_fields_are_refused() {
        let e = serde_json::from_str::<PluginLimits>(r#"{"time_limit":5}"#).unwrap_err();
        assert!(e.to_string().contains("unknown field `time_limit`"), "{e}");
        let l = PluginLimits {
            time_limit_ms: 0,
            ..PluginLimits::default()
        };
        assert_eq!(
            l.validate().map_err(|e| e.to_string()),
            Err("invalid plugin configuration: time_limit_ms must be 1..=60000, not 0".into())
        );
        let l = PluginLimits {
            max_warm_instances: 9,
            total_instance_slots: 8,
            ..PluginLimits::default()
        };
        assert!(l.validate().is_err());
    }

    #[test]
    fn the_epoch_tick_is_a_tenth_of_the_limit_within_1_to_2_ms() {
        for (ms, tick) in [
            (1, 1),
            (5, 1),
            (10, 1),
            (15, 1),
            (20, 2),
            (100, 2),
            (60_000, 2),
        ] {
            let l = PluginLimits {
                time_limit_ms: ms,
                ..PluginLimits::default()
            };
            assert_eq!(l.epoch_tick(), Duration::from_millis(tick), "{ms} ms");
        }
    }
}
