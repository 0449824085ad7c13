//! The configuration as read: every layer merged, nothing validated yet.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Resource mappings as written: a TOML table, a list of `NAME=TABLE`, or
/// one comma-separated string (the environment variable form).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RawResources {
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
    pub fn specs(&self) -> Vec<String> {
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
pub struct RawConfig {
    /// See `config.default.toml`.
    pub listen: String,
    /// See `config.default.toml`.
    pub store: String,
    /// See `config.default.toml`.
    #[serde(default)]
    pub capture: Option<String>,
    /// See `config.default.toml`.
    #[serde(default)]
    pub resources: RawResources,
    /// See `config.default.toml`.
    #[serde(default)]
    pub allow_http: bool,
    /// See `config.default.toml`.
    #[serde(default)]
    pub allow_private_networks: bool,
    /// See `config.default.toml`.
    #[serde(default)]
    pub admin_token: Option<String>,
    /// See `config.default.toml`.
    #[serde(default)]
    pub secret_key: Option<String>,
    /// See `config.default.toml`.
    #[serde(default)]
    pub require_secret_key: bool,
    /// See `config.default.toml`.
    pub log: RawLog,
    /// See `config.default.toml`.
    pub api: RawApi,
    /// See `config.default.toml`.
    pub delivery: RawDelivery,
    /// See `config.default.toml`.
    pub capture_options: RawCaptureOptions,
    /// See `config.default.toml`.
    pub plugins: RawPlugins,
}

/// `[plugins]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPlugins {
    /// Run the plugin host.
    pub enabled: bool,
    /// Disk cache directory ("" for none).
    pub cache_dir: String,
    /// Time limit, ms.
    pub time_limit_ms: u64,
    /// Memory cap, bytes.
    pub memory_limit_bytes: u64,
    /// Output cap, bytes.
    pub max_output_bytes: u64,
    /// Warm instances per plugin.
    pub max_warm_instances: u32,
    /// Instance slots in all.
    pub total_instance_slots: u32,
    /// Plugins attached from the file.
    #[serde(default)]
    pub attach: Vec<RawPluginAttach>,
}

/// `[[plugins.attach]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPluginAttach {
    /// The receiver id.
    pub receiver: i64,
    /// Path of the `.wasm` component.
    pub path: String,
    /// Its configuration (any TOML table).
    #[serde(default)]
    pub config: Option<serde_json::Value>,
}

/// `[log]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLog {
    /// `text` or `json`.
    pub format: String,
    /// A tracing filter.
    pub level: String,
}

/// `[api]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawApi {
    /// Largest request body, in bytes.
    pub max_body_bytes: usize,
    /// Deepest GraphQL query.
    pub max_query_depth: usize,
    /// Most expensive GraphQL document.
    pub max_query_complexity: usize,
    /// Most root fields in one GraphQL operation.
    pub max_root_fields: usize,
    /// Largest page.
    pub max_page_size: usize,
}

/// `[delivery]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDelivery {
    /// Deliveries in flight in this process.
    pub max_in_flight: usize,
    /// Default concurrency per receiver.
    pub default_concurrency: u32,
    /// Lease margin beyond the timeout, in seconds.
    pub lease_margin_secs: u64,
    /// Poll interval, in milliseconds.
    pub poll_interval_ms: u64,
    /// Default timeout, in milliseconds.
    pub default_timeout_ms: u64,
    /// Largest timeout, in milliseconds.
    pub max_timeout_ms: u64,
    /// Consecutive failures that open the circuit (0: never).
    pub circuit_failure_threshold: u32,
    /// First probe delay, in seconds.
    pub circuit_probe_secs: u64,
    /// Longest Retry-After honoured, in seconds.
    pub max_retry_after_secs: u64,
    /// Response bytes kept.
    pub response_body_bytes: usize,
    /// Retention of finished deliveries, in days (0: forever).
    pub retention_days: u32,
    /// Shutdown grace, in seconds.
    pub shutdown_grace_secs: u64,
}

/// `[capture_options]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCaptureOptions {
    /// Schema for capture objects.
    pub schema: String,
    /// Use NOTIFY/LISTEN instead of polling.
    pub notify: bool,
    /// Polling interval when idle, in milliseconds.
    pub poll_interval_ms: u64,
    /// Polling interval while changes are arriving, in milliseconds.
    pub busy_poll_interval_ms: u64,
    /// Sweep interval, in milliseconds.
    pub sweep_interval_ms: u64,
    /// Changes per batch.
    pub batch_size: usize,
}

/// What flags override (only the flags that were given).
#[derive(Debug, Clone, Default, Serialize)]
pub struct FlagOverrides {
    /// `--listen`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    /// `--store`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store: Option<String>,
    /// `--capture`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capture: Option<String>,
    /// `--resource` (repeatable).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resources: Option<RawResources>,
    /// `--allow-http`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_http: Option<bool>,
    /// `--allow-private-networks`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_private_networks: Option<bool>,
    /// `--require-secret-key`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub require_secret_key: Option<bool>,
}
