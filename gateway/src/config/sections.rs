//! The sections of the configuration (`[log]`, `[api]`, `[delivery]`,
//! `[capture_options]`, `[plugins]`), each validated by its own function,
//! every error naming its key.

use std::time::Duration;

use ipnet::IpNet;

use super::raw::{
    RawApi, RawCaptureOptions, RawConsole, RawDelivery, RawLog, RawOperational, RawPlugins,
};
use super::{ConfigError, invalid, resources};
use crate::egress::{EgressError, ProxySettings};

/// `[log]`, validated.
#[derive(Debug, Clone)]
pub(crate) struct LogSettings {
    /// JSON lines instead of text.
    pub(crate) json: bool,
    /// The tracing filter.
    pub(crate) level: String,
}

/// `[api]`, validated.
#[derive(Debug, Clone)]
pub(crate) struct ApiSettings {
    /// Largest request body, in bytes.
    pub(crate) max_body_bytes: usize,
    /// Deepest GraphQL query.
    pub(crate) max_query_depth: usize,
    /// Most expensive GraphQL document (see `api::limits` for the cost model).
    pub(crate) max_query_complexity: usize,
    /// Most root fields (aliases included) in one GraphQL operation.
    pub(crate) max_root_fields: usize,
    /// Largest page.
    pub(crate) max_page_size: usize,
}

/// `[delivery]`, validated.
#[derive(Debug, Clone)]
pub(crate) struct DeliverySettings {
    /// Deliveries in flight in this process.
    pub(crate) max_in_flight: usize,
    /// Default concurrency per receiver.
    pub(crate) default_concurrency: u32,
    /// Lease margin beyond the timeout.
    pub(crate) lease_margin: Duration,
    /// Poll interval.
    pub(crate) poll_interval: Duration,
    /// Default timeout.
    pub(crate) default_timeout: Duration,
    /// Largest timeout.
    pub(crate) max_timeout: Duration,
    /// Consecutive failures that open the circuit (0: never).
    pub(crate) circuit_failure_threshold: u32,
    /// First probe delay.
    pub(crate) circuit_probe: Duration,
    /// Longest Retry-After honoured.
    pub(crate) max_retry_after: Duration,
    /// Response bytes kept.
    pub(crate) response_body_bytes: usize,
    /// Retention of finished deliveries (None: forever).
    pub(crate) retention: Option<Duration>,
    /// Shutdown grace.
    pub(crate) shutdown_grace: Duration,
    /// A receiver failing for longer than this is disabled (None: never).
    pub(crate) auto_disable_after: Option<Duration>,
    /// The outbound proxies and what bypasses them.
    pub(crate) proxies: ProxySettings,
    /// Private ranges receivers may be in.
    pub(crate) allow_networks: Vec<IpNet>,
}

/// `[telemetry]`, validated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct TelemetrySettings {
    /// OTLP/HTTP collector base URL (spans go to `{endpoint}/v1/traces`);
    /// None: no traces.
    pub(crate) otlp_endpoint: Option<String>,
    /// `service.name` of the spans.
    pub(crate) service_name: String,
}

/// `[capture_options]`, validated.
#[derive(Debug, Clone)]
pub(crate) struct CaptureOptions {
    /// Schema for capture objects (PostgreSQL).
    pub(crate) schema: String,
    /// NOTIFY from the trigger and LISTEN (else poll).
    pub(crate) notify: bool,
    /// Polling interval without NOTIFY, once no change arrived for a second.
    pub(crate) poll_interval: Duration,
    /// Polling interval while changes arrived within the last second.
    pub(crate) busy_poll_interval: Duration,
    /// Sweep interval.
    pub(crate) sweep_interval: Duration,
    /// Changes per batch.
    pub(crate) batch_size: usize,
    /// How changes are read from a captured PostgreSQL database.
    pub(crate) mode: CaptureMode,
    /// Logical mode: how often a heartbeat message goes through the slot,
    /// so that an idle (or filtered) database lets the slot advance.
    pub(crate) heartbeat_interval: Duration,
    /// Logical mode: the slot lag (bytes) above which `/readyz` fails and
    /// `capture.lagging` is sent; `None`: 80% of the server's
    /// `max_slot_wal_keep_size`, or 1 GiB when that is unlimited.
    pub(crate) slot_lag_limit: Option<u64>,
}

/// How changes are read from a captured PostgreSQL database
/// (`capture_options.mode`). SQLite has triggers only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CaptureMode {
    /// Audit triggers write a log table that the importer reads: no
    /// privileges beyond the tables' own, any `wal_level`.
    Triggers,
    /// A publication and a `pgoutput` replication slot, streamed: nothing
    /// is written into the application's transactions. Needs
    /// `wal_level = logical`, the REPLICATION attribute and
    /// `REPLICA IDENTITY FULL` on the mapped tables.
    Logical,
}

/// `$XDG_CACHE_HOME/changewire/plugins`, or `~/.cache/changewire/plugins`.
fn default_cache_dir() -> Option<std::path::PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".cache")))?;
    Some(base.join("changewire").join("plugins"))
}

/// `[plugins]`, validated.
#[derive(Debug, Clone)]
pub(crate) struct PluginSettings {
    /// Run the plugin host.
    pub(crate) enabled: bool,
    /// Disk cache directory.
    pub(crate) cache_dir: Option<std::path::PathBuf>,
    /// Limits of every call.
    pub(crate) limits: changewire_plugin_host::PluginLimits,
    /// Plugins attached from the configuration file: (receiver, path, config JSON).
    pub(crate) attach: Vec<(i64, std::path::PathBuf, String)>,
}

impl LogSettings {
    /// `[log]`.
    pub(super) fn validate(raw: RawLog) -> Result<Self, ConfigError> {
        let json = match raw.format.as_str() {
            "json" => true,
            "text" => false,
            other => {
                return Err(invalid(
                    "log.format",
                    format!("`{other}` is not `text` or `json`"),
                ));
            }
        };
        Ok(LogSettings {
            json,
            level: raw.level,
        })
    }
}

impl ApiSettings {
    /// `[api]`.
    pub(super) fn validate(api: RawApi) -> Result<Self, ConfigError> {
        if api.max_body_bytes < 1024 {
            return Err(invalid("api.max_body_bytes", "must be at least 1024"));
        }
        if api.max_page_size == 0 {
            return Err(invalid("api.max_page_size", "must be at least 1"));
        }
        if api.max_query_complexity == 0 {
            return Err(invalid("api.max_query_complexity", "must be at least 1"));
        }
        if api.max_root_fields == 0 {
            return Err(invalid("api.max_root_fields", "must be at least 1"));
        }
        Ok(ApiSettings {
            max_body_bytes: api.max_body_bytes,
            max_query_depth: api.max_query_depth,
            max_query_complexity: api.max_query_complexity,
            max_root_fields: api.max_root_fields,
            max_page_size: api.max_page_size,
        })
    }
}

impl DeliverySettings {
    /// `[delivery]`; `env` reads the proxy variables (`HTTPS_PROXY`…) used
    /// when `proxy` is not set.
    pub(super) fn validate(
        d: RawDelivery,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        if d.max_in_flight == 0 {
            return Err(invalid("delivery.max_in_flight", "must be at least 1"));
        }
        if d.default_concurrency == 0 {
            return Err(invalid(
                "delivery.default_concurrency",
                "must be at least 1",
            ));
        }
        if d.default_timeout_ms == 0 || d.default_timeout_ms > d.max_timeout_ms {
            return Err(invalid(
                "delivery.default_timeout_ms",
                "must be between 1 and delivery.max_timeout_ms",
            ));
        }
        if d.poll_interval_ms == 0 {
            return Err(invalid("delivery.poll_interval_ms", "must be at least 1"));
        }
        let proxies = ProxySettings::resolve(&d.proxy, &d.no_proxy, env).map_err(|e| match e {
            EgressError::Setting { setting, reason } => ConfigError::Setting { setting, reason },
            other => invalid("delivery.proxy", other.to_string()),
        })?;
        let allow_networks = d
            .allow_networks
            .iter()
            .map(|n| {
                n.trim().parse::<IpNet>().map_err(|_| {
                    invalid(
                        "delivery.allow_networks",
                        format!("`{n}` is not a range like 10.20.0.0/16 or fd00:1::/32"),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(DeliverySettings {
            proxies,
            allow_networks,
            max_in_flight: d.max_in_flight,
            default_concurrency: d.default_concurrency,
            lease_margin: Duration::from_secs(d.lease_margin_secs),
            poll_interval: Duration::from_millis(d.poll_interval_ms),
            default_timeout: Duration::from_millis(d.default_timeout_ms),
            max_timeout: Duration::from_millis(d.max_timeout_ms),
            circuit_failure_threshold: d.circuit_failure_threshold,
            circuit_probe: Duration::from_secs(d.circuit_probe_secs.max(1)),
            max_retry_after: Duration::from_secs(d.max_retry_after_secs),
            response_body_bytes: d.response_body_bytes,
            retention: (d.retention_days > 0)
                .then(|| Duration::from_secs(u64::from(d.retention_days) * 86_400)),
            shutdown_grace: Duration::from_secs(d.shutdown_grace_secs),
            auto_disable_after: (d.auto_disable_after_secs > 0)
                .then(|| Duration::from_secs(d.auto_disable_after_secs)),
        })
    }
}

impl CaptureOptions {
    /// `[capture_options]`.
    pub(super) fn validate(c: RawCaptureOptions) -> Result<Self, ConfigError> {
        resources::check_table(&c.schema).map_err(|e| invalid("capture_options.schema", e.0))?;
        if c.batch_size == 0 || c.batch_size > 10_000 {
            return Err(invalid(
                "capture_options.batch_size",
                "must be between 1 and 10000",
            ));
        }
        let mode = match c.mode.as_str() {
            "triggers" => CaptureMode::Triggers,
            "logical" => CaptureMode::Logical,
            other => {
                return Err(invalid(
                    "capture_options.mode",
                    format!("`{other}` is not a capture mode: use \"triggers\" or \"logical\""),
                ));
            }
        };
        if c.heartbeat_interval_ms < 100 {
            return Err(invalid(
                "capture_options.heartbeat_interval_ms",
                "must be at least 100",
            ));
        }
        Ok(CaptureOptions {
            mode,
            heartbeat_interval: Duration::from_millis(c.heartbeat_interval_ms),
            slot_lag_limit: (c.slot_lag_limit_mb > 0)
                .then(|| c.slot_lag_limit_mb.saturating_mul(1024 * 1024)),
            poll_interval: Duration::from_millis(c.poll_interval_ms.max(1)),
            busy_poll_interval: Duration::from_millis(
                c.busy_poll_interval_ms.clamp(1, c.poll_interval_ms.max(1)),
            ),
            sweep_interval: Duration::from_millis(c.sweep_interval_ms.max(10)),
            batch_size: c.batch_size,
            schema: c.schema,
            notify: c.notify,
        })
    }
}

impl PluginSettings {
    /// `[plugins]`.
    pub(super) fn validate(p: RawPlugins) -> Result<Self, ConfigError> {
        let limits = changewire_plugin_host::PluginLimits {
            time_limit_ms: p.time_limit_ms,
            memory_limit_bytes: p.memory_limit_bytes,
            max_output_bytes: p.max_output_bytes,
            max_warm_instances: p.max_warm_instances,
            total_instance_slots: p.total_instance_slots,
        };
        limits
            .validate()
            .map_err(|e| invalid("plugins", e.to_string()))?;
        let mut attach = Vec::new();
        for a in p.attach {
            if a.receiver <= 0 {
                return Err(invalid(
                    "plugins.attach.receiver",
                    format!("{} is not a receiver id", a.receiver),
                ));
            }
            let config = a
                .config
                .map(|c| c.to_string())
                .unwrap_or_else(|| "{}".into());
            attach.push((a.receiver, std::path::PathBuf::from(a.path), config));
        }
        Ok(PluginSettings {
            enabled: p.enabled,
            cache_dir: match p.cache_dir.trim() {
                "" => None,
                "auto" => default_cache_dir(),
                dir => Some(std::path::PathBuf::from(dir)),
            },
            limits,
            attach,
        })
    }
}

/// When the console's session cookie is marked `Secure`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SecureCookies {
    /// When the request came over https (or `public_url` is https).
    Auto,
    /// Always.
    Always,
    /// Never (plain-http deployments behind nothing).
    Never,
}

/// `[console]`, validated.
#[derive(Debug, Clone)]
pub(crate) struct ConsoleSettings {
    /// Serve `/console`.
    pub(crate) enabled: bool,
    /// The public origin for absolute links, without a trailing slash.
    pub(crate) public_url: Option<String>,
    /// Origins that may frame the console.
    pub(crate) frame_ancestors: Vec<String>,
    /// A session's lifetime.
    pub(crate) session_ttl: Duration,
    /// A magic link's default lifetime.
    pub(crate) link_ttl: Duration,
    /// The cookie's `Secure` rule.
    pub(crate) secure_cookies: SecureCookies,
}

/// The longest a magic link may live: a week.
pub(crate) const MAX_LINK_TTL: Duration = Duration::from_secs(7 * 86_400);

impl ConsoleSettings {
    /// `[console]`.
    pub(super) fn validate(c: RawConsole) -> Result<Self, ConfigError> {
        let public_url = match c.public_url.trim().trim_end_matches('/') {
            "" => None,
            url => {
                let parsed = url::Url::parse(url).map_err(|e| {
                    invalid("console.public_url", format!("`{url}` is not a URL ({e})"))
                })?;
                if !matches!(parsed.scheme(), "http" | "https") || parsed.path() != "/" {
                    return Err(invalid(
                        "console.public_url",
                        format!(
                            "`{url}` must be an http(s) origin such as https://hooks.example.com"
                        ),
                    ));
                }
                Some(url.to_string())
            }
        };
        let mut frame_ancestors = Vec::new();
        for origin in c.frame_ancestors {
            let ok = url::Url::parse(&origin)
                .map(|u| matches!(u.scheme(), "http" | "https") && u.path() == "/")
                .unwrap_or(false);
            if !ok || origin.contains(|ch: char| ch.is_whitespace() || ch == ';' || ch == ',') {
                return Err(invalid(
                    "console.frame_ancestors",
                    format!("`{origin}` is not an origin such as https://app.example.com"),
                ));
            }
            frame_ancestors.push(origin.trim_end_matches('/').to_string());
        }
        if c.session_hours == 0 || c.session_hours > 24 * 30 {
            return Err(invalid(
                "console.session_hours",
                "must be between 1 and 720",
            ));
        }
        let link_ttl = Duration::from_secs(c.link_ttl_secs);
        if c.link_ttl_secs == 0 || link_ttl > MAX_LINK_TTL {
            return Err(invalid(
                "console.link_ttl_secs",
                "must be between 1 and 604800 (a week)",
            ));
        }
        let secure_cookies = match c.secure_cookies.as_str() {
            "auto" => SecureCookies::Auto,
            "always" => SecureCookies::Always,
            "never" => SecureCookies::Never,
            other => {
                return Err(invalid(
                    "console.secure_cookies",
                    format!("`{other}` is not `auto`, `always` or `never`"),
                ));
            }
        };
        Ok(ConsoleSettings {
            enabled: c.enabled,
            public_url,
            frame_ancestors,
            session_ttl: Duration::from_secs(c.session_hours * 3600),
            link_ttl,
            secure_cookies,
        })
    }
}

/// `[operational]`, validated.
#[derive(Debug, Clone)]
pub(crate) struct OperationalSettings {
    /// The failed attempt of one delivery that sends `delivery.failing`.
    pub(crate) failing_after_attempts: u32,
    /// How old the oldest unimported change may get before `capture.lagging`.
    pub(crate) capture_lag: Duration,
    /// At most one event per type and receiver in this window.
    pub(crate) coalesce: Duration,
}

impl OperationalSettings {
    /// `[operational]`.
    pub(super) fn validate(o: RawOperational) -> Result<Self, ConfigError> {
        if o.failing_after_attempts == 0 {
            return Err(invalid(
                "operational.failing_after_attempts",
                "must be at least 1",
            ));
        }
        if o.capture_lag_secs == 0 {
            return Err(invalid(
                "operational.capture_lag_secs",
                "must be at least 1",
            ));
        }
        Ok(OperationalSettings {
            failing_after_attempts: o.failing_after_attempts,
            capture_lag: Duration::from_secs(o.capture_lag_secs),
            coalesce: Duration::from_secs(o.coalesce_secs),
        })
    }
}
