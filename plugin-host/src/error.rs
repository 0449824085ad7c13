//! What can go wrong with a plugin, at upload and on each call.

/// Why a plugin was refused at upload, or why one call of it failed.
///
/// The `Display` of every variant names the cause precisely: it is what the
/// gateway records in a delivery's attempt (call errors) or returns from the
/// attach mutation (upload errors). [`Error::kind`] gives a stable short code
/// for metrics and API error codes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // ----- configuration and upload -------------------------------------
    /// The [`PluginLimits`](crate::PluginLimits) are out of range, or the
    /// engine could not be created with them.
    #[error("invalid plugin configuration: {0}")]
    Config(String),

    /// The bytes are not a WebAssembly component: text, a core module, or
    /// not WebAssembly at all. The message says which and how to fix it.
    #[error("not a WebAssembly component: {0}")]
    NotAComponent(String),

    /// The component failed validation or compilation; the message is the
    /// compiler's.
    #[error("invalid WebAssembly component: {0}")]
    Invalid(String),

    /// The component imports interfaces the gateway does not provide
    /// (filesystem, network, clocks, randomness, or anything unknown).
    #[error(
        "plugin imports {}, which changewire does not provide: plugins get no filesystem, \
         network, clock, randomness or environment",
        .imports.join(", ")
    )]
    ForbiddenImport {
        /// The refused import names, e.g. `wasi:clocks/wall-clock@0.2.6`.
        imports: Vec<String>,
    },

    /// The component does not export `changewire:plugin/transformer@0.1.x`
    /// with the expected type; the message is the linker's.
    #[error("plugin does not implement the changewire:plugin 0.1 interface: {0}")]
    MissingExport(String),

    /// The on-disk cache of compiled plugins could not be used. Not returned
    /// by [`PluginHost::with_disk_cache`](crate::PluginHost::with_disk_cache),
    /// which logs cache problems and runs without the cache.
    #[error("plugin cache")]
    Cache(#[source] std::io::Error),

    // ----- per call -----------------------------------------------------
    /// The call ran past its time limit and was interrupted.
    #[error("plugin exceeded its time limit of {limit_ms} ms")]
    Timeout {
        /// The configured limit, in milliseconds.
        limit_ms: u64,
    },

    /// The plugin tried to grow its memories past the cap (all of an
    /// instance's memories together) and was stopped.
    #[error(
        "plugin exceeded its memory limit of {limit_bytes} bytes \
         (its memories would total {requested_bytes} bytes)"
    )]
    MemoryLimit {
        /// The configured cap, in bytes.
        limit_bytes: u64,
        /// What all the instance's memories would have totalled, in bytes.
        requested_bytes: u64,
    },

    /// The plugin trapped: a panic, `unreachable`, an out-of-bounds access,
    /// a stack overflow, or a call to an import the gateway stubs out. The
    /// message includes the plugin's panic message when it reported one.
    #[error("plugin trapped: {message}")]
    Trap {
        /// What happened, e.g. `wasm 'unreachable' instruction executed
        /// (panicked at src/lib.rs:9:9: boom)`.
        message: String,
    },

    /// The plugin returned, but its output breaks the rules: a body that is
    /// not JSON, a malformed header, or a header the gateway owns.
    #[error("plugin returned invalid output: {reason}")]
    InvalidOutput {
        /// Which rule was broken.
        reason: String,
    },

    /// The plugin returned more bytes (body, headers and reason together)
    /// than the output cap allows.
    #[error("plugin output is {size} bytes, over the limit of {limit} bytes")]
    OutputTooLarge {
        /// Size of the output, in bytes.
        size: u64,
        /// The configured cap, in bytes.
        limit: u64,
    },

    /// The plugin returned an error of its own (`err(message)`), truncated
    /// to 1 KiB.
    #[error("plugin returned an error: {0}")]
    PluginError(String),

    /// A fresh instance of the plugin could not be created.
    #[error("could not instantiate plugin: {0}")]
    Instantiate(String),

    /// Every instance slot of the pooling allocator is in use; the call can
    /// be retried later.
    #[error("no free plugin instance slot (all {slots} are in use); retry later")]
    Capacity {
        /// The configured number of slots.
        slots: u32,
    },
}

impl Error {
    /// A stable short code for this error: the `outcome` label of the
    /// `changewire_plugin_calls_total` metric, and a good API error code.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Config(_) => "config",
            Error::NotAComponent(_) => "not_a_component",
            Error::Invalid(_) => "invalid",
            Error::ForbiddenImport { .. } => "forbidden_import",
            Error::MissingExport(_) => "missing_export",
            Error::Cache(_) => "cache",
            Error::Timeout { .. } => "timeout",
            Error::MemoryLimit { .. } => "memory_limit",
            Error::Trap { .. } => "trap",
            Error::InvalidOutput { .. } => "invalid_output",
            Error::OutputTooLarge { .. } => "output_too_large",
            Error::PluginError(_) => "plugin_error",
            Error::Instantiate(_) => "instantiate",
            Error::Capacity { .. } => "capacity",
        }
    }

    /// Whether the plugin itself is at fault (as opposed to the gateway
    /// lacking capacity or being misconfigured): the errors a receiver's
    /// "on plugin error: fail, or deliver untransformed" choice applies to.
    pub fn is_plugin_fault(&self) -> bool {
        !matches!(
            self,
            Error::Config(_) | Error::Cache(_) | Error::Capacity { .. }
        )
    }
}
