//! The configuration as read: every layer merged, nothing validated yet.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Resource mappings as written: a TOML table, a list of `NAME=TABLE`, or
/// one comma-separated string (the environment variable form).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub(crate) enum RawResources {
    /// `[resources] RUNS = "runs"`.
    Table(BTreeMap<String, String>),
    /// `["RUNS=runs", …]` (the flags).
    List(Vec<String>),
    /// `"RUNS=runs,PARTS=parts"` (the environment).
    Joined(String),
    /// Nothing configured.
    #[default]
    None,
}

impl RawResources {
    /// The mappings as `NAME=TABLE` strings, in order.
    pub(crate) fn specs(&self) -> Vec<String> {
        match self {
            RawResources::Table(map) => map.iter().map(|(k, v)| format!("{k}={v}")).collect(),
            RawResources::List(list) => list.clone(),
            RawResources::Joined(s) => s
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(str::to_string)
                .collect(),
            RawResources::None => Vec::new(),
        }
    }
}

/// Every key of `config.default.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    /// See `config.default.toml`.
    pub(crate) listen: String,
    /// See `config.default.toml`.
    pub(crate) store: String,
    /// See `config.default.toml`.
    #[serde(default)]
    pub(crate) capture: Option<String>,
    /// See `config.default.toml`.
    #[serde(default)]
    pub(crate) resources: RawResources,
    /// See `config.default.toml`.
    #[serde(default)]
    pub(crate) allow_http: bool,
    /// See `config.default.toml`.
    #[serde(default)]
    pub(crate) allow_private_networks: bool,
    /// See `config.default.toml`.
    #[serde(default)]
    pub(crate) admin_token: Option<String>,
    /// See `config.default.toml`.
    #[serde(default)]
    pub(crate) secret_key: Option<String>,
    /// See `config.default.toml`.
    #[serde(default)]
    pub(crate) require_secret_key: bool,
    /// See `config.default.toml`.
    pub(crate) log: RawLog,
    /// See `config.default.toml`.
    pub(crate) telemetry: RawTelemetry,
    /// See `config.default.toml`.
    pub(crate) api: RawApi,
    /// See `config.default.toml`.
    pub(crate) delivery: RawDelivery,
    /// See `config.default.toml`.
    pub(crate) capture_options: RawCaptureOptions,
    /// See `config.default.toml`.
    pub(crate) plugins: RawPlugins,
    /// See `config.default.toml`.
    pub(crate) console: RawConsole,
    /// See `config.default.toml`.
    pub(crate) operational: RawOperational,
}

/// `[operational]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawOperational {
    /// The failed attempt of one delivery that sends `delivery.failing`.
    pub(crate) failing_after_attempts: u32,
    /// Oldest unimported change age that sends `capture.lagging`, seconds.
    pub(crate) capture_lag_secs: u64,
    /// At most one event per type and receiver in this window, seconds.
    pub(crate) coalesce_secs: u64,
}

/// `[console]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConsole {
    /// Serve the console at `/console`.
    pub(crate) enabled: bool,
    /// The gateway's public origin, for absolute magic links ("" for paths).
    pub(crate) public_url: String,
    /// Origins allowed to embed the console in a frame.
    #[serde(default)]
    pub(crate) frame_ancestors: Vec<String>,
    /// How long a console session lasts, hours.
    pub(crate) session_hours: u64,
    /// How long a magic link may be used when `ttlSeconds` is not given.
    pub(crate) link_ttl_secs: u64,
    /// `auto` (Secure when served over https), `always`, `never`.
    pub(crate) secure_cookies: String,
}

/// `[plugins]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPlugins {
    /// Run the plugin host.
    pub(crate) enabled: bool,
    /// Disk cache directory ("" for none).
    pub(crate) cache_dir: String,
    /// Time limit, ms.
    pub(crate) time_limit_ms: u64,
    /// Memory cap, bytes.
    pub(crate) memory_limit_bytes: u64,
    /// Output cap, bytes.
    pub(crate) max_output_bytes: u64,
    /// Warm instances per plugin.
    pub(crate) max_warm_instances: u32,
    /// Instance slots in all.
    pub(crate) total_instance_slots: u32,
    /// Plugins attached from the file.
    #[serde(default)]
    pub(crate) attach: Vec<RawPluginAttach>,
}

/// `[[plugins.attach]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPluginAttach {
    /// The receiver id.
    pub(crate) receiver: i64,
    /// Path of the `.wasm` component.
    pub(crate) path: String,
    /// Its configuration (any TOML table).
    #[serde(default)]
    pub(crate) config: Option<serde_json::Value>,
}

/// `[log]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLog {
    /// `text` or `json`.
    pub(crate) format: String,
    /// A tracing filter.
    pub(crate) level: String,
}

/// `[api]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawApi {
    /// Largest request body, in bytes.
    pub(crate) max_body_bytes: usize,
    /// Deepest GraphQL query.
    pub(crate) max_query_depth: usize,
    /// Most expensive GraphQL document.
    pub(crate) max_query_complexity: usize,
    /// Most root fields in one GraphQL operation.
    pub(crate) max_root_fields: usize,
    /// Largest page.
    pub(crate) max_page_size: usize,
}

/// `[delivery]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDelivery {
    /// Deliveries in flight in this process.
    pub(crate) max_in_flight: usize,
    /// Default concurrency per receiver.
    pub(crate) default_concurrency: u32,
    /// Lease margin beyond the timeout, in seconds.
    pub(crate) lease_margin_secs: u64,
    /// Poll interval, in milliseconds.
    pub(crate) poll_interval_ms: u64,
    /// Default timeout, in milliseconds.
    pub(crate) default_timeout_ms: u64,
    /// Largest timeout, in milliseconds.
    pub(crate) max_timeout_ms: u64,
    /// Consecutive failures that open the circuit (0: never).
    pub(crate) circuit_failure_threshold: u32,
    /// First probe delay, in seconds.
    pub(crate) circuit_probe_secs: u64,
    /// Longest Retry-After honoured, in seconds.
    pub(crate) max_retry_after_secs: u64,
    /// Response bytes kept.
    pub(crate) response_body_bytes: usize,
    /// Retention of finished deliveries, in days (0: forever).
    pub(crate) retention_days: u32,
    /// Shutdown grace, in seconds.
    pub(crate) shutdown_grace_secs: u64,
    /// Disable a receiver failing for longer than this, in seconds (0: never).
    pub(crate) auto_disable_after_secs: u64,
    /// The outbound proxy URL ("": the environment's, or none).
    #[serde(default)]
    pub(crate) proxy: String,
    /// Hosts reached without the proxy.
    #[serde(default)]
    pub(crate) no_proxy: Vec<String>,
    /// Private ranges receivers may be in.
    #[serde(default)]
    pub(crate) allow_networks: Vec<String>,
}

/// `[telemetry]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTelemetry {
    /// OTLP/HTTP collector URL ("": no traces).
    pub(crate) otlp_endpoint: String,
    /// `service.name` of the spans.
    pub(crate) service_name: String,
}

/// `[capture_options]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCaptureOptions {
    /// Schema for capture objects.
    pub(crate) schema: String,
    /// Use NOTIFY/LISTEN instead of polling.
    pub(crate) notify: bool,
    /// Polling interval when idle, in milliseconds.
    pub(crate) poll_interval_ms: u64,
    /// Polling interval while changes are arriving, in milliseconds.
    pub(crate) busy_poll_interval_ms: u64,
    /// Sweep interval, in milliseconds.
    pub(crate) sweep_interval_ms: u64,
    /// Changes per batch.
    pub(crate) batch_size: usize,
    /// `triggers` or `logical` (PostgreSQL).
    pub(crate) mode: String,
    /// Logical mode: how often a heartbeat goes through the slot, ms.
    pub(crate) heartbeat_interval_ms: u64,
    /// Logical mode: the slot lag that fails readiness, MB (0: derived).
    pub(crate) slot_lag_limit_mb: u64,
}

/// What flags override (only the flags that were given).
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct FlagOverrides {
    /// `--listen`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) listen: Option<String>,
    /// `--store`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) store: Option<String>,
    /// `--capture`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) capture: Option<String>,
    /// `--resource` (repeatable).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) resources: Option<RawResources>,
    /// `--allow-http`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) allow_http: Option<bool>,
    /// `--allow-private-networks`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) allow_private_networks: Option<bool>,
    /// `--require-secret-key`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) require_secret_key: Option<bool>,
    /// `--capture-mode` (`capture_options.mode`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) capture_options: Option<CaptureOptionFlags>,
}

/// The `[capture_options]` keys that flags set.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct CaptureOptionFlags {
    /// `--capture-mode`.
    pub(crate) mode: String,
}
