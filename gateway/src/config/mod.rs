//! Configuration: the embedded defaults, then `--config FILE`, then
//! `CHANGEWIRE_*` environment variables, then flags — merged in `raw`, then
//! validated once into an immutable [`Config`].

pub mod raw;
pub mod resources;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use changewire_core::Secret;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};

pub use raw::{FlagOverrides, RawConfig, RawResources};
pub use resources::{Resource, Resources};

/// The commented defaults, also printed by `changewire config --defaults`.
pub const DEFAULT_TOML: &str = include_str!("config.default.toml");

/// A configuration that cannot be used, with the key and the reason.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Reading or merging the layers failed (bad TOML, wrong type, unknown key).
    #[error(transparent)]
    Load(#[from] Box<figment::Error>),
    /// A value is present but unusable.
    #[error("`{key}`: {reason}")]
    Invalid {
        /// The configuration key.
        key: &'static str,
        /// Why it is refused.
        reason: String,
    },
}

fn invalid(key: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        reason: reason.into(),
    }
}

/// Where the store lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreUrl {
    /// `sqlite://…`.
    Sqlite(String),
    /// `postgres://…` or `postgresql://…`.
    Postgres(String),
}

impl StoreUrl {
    /// Parses a database URL.
    pub fn parse(key: &'static str, url: &str) -> Result<Self, ConfigError> {
        if url.starts_with("sqlite:") {
            Ok(StoreUrl::Sqlite(url.to_string()))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(StoreUrl::Postgres(url.to_string()))
        } else {
            Err(invalid(
                key,
                format!(
                    "`{}` is neither sqlite://… nor postgres://…",
                    redact_url(url)
                ),
            ))
        }
    }

    /// The URL itself.
    pub fn as_str(&self) -> &str {
        match self {
            StoreUrl::Sqlite(u) | StoreUrl::Postgres(u) => u,
        }
    }
}

/// A database URL with any password (`user:password@` or `?password=`)
/// replaced, for logs and errors.
pub fn redact_url(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        return url.to_string();
    };
    let is_password = |key: &str| key.eq_ignore_ascii_case("password");
    let in_query = parsed.query_pairs().any(|(k, _)| is_password(&k));
    if parsed.password().is_none() && !in_query {
        return url.to_string();
    }
    if parsed.password().is_some() {
        let _ = parsed.set_password(Some("***"));
    }
    if in_query {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(k, v)| {
                let v = if is_password(&k) { "***".into() } else { v };
                (k.into_owned(), v.into_owned())
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    parsed.to_string()
}

/// `[log]`, validated.
#[derive(Debug, Clone)]
pub struct LogSettings {
    /// JSON lines instead of text.
    pub json: bool,
    /// The tracing filter.
    pub level: String,
}

/// `[api]`, validated.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// Largest request body, in bytes.
    pub max_body_bytes: usize,
    /// Deepest GraphQL query.
    pub max_query_depth: usize,
    /// Most expensive GraphQL document (see `api::limits` for the cost model).
    pub max_query_complexity: usize,
    /// Most root fields (aliases included) in one GraphQL operation.
    pub max_root_fields: usize,
    /// Largest page.
    pub max_page_size: usize,
}

/// `[delivery]`, validated.
#[derive(Debug, Clone)]
pub struct DeliverySettings {
    /// Deliveries in flight in this process.
    pub max_in_flight: usize,
    /// Default concurrency per receiver.
    pub default_concurrency: u32,
    /// Lease margin beyond the timeout.
    pub lease_margin: Duration,
    /// Poll interval.
    pub poll_interval: Duration,
    /// Default timeout.
    pub default_timeout: Duration,
    /// Largest timeout.
    pub max_timeout: Duration,
    /// Consecutive failures that open the circuit (0: never).
    pub circuit_failure_threshold: u32,
    /// First probe delay.
    pub circuit_probe: Duration,
    /// Longest Retry-After honoured.
    pub max_retry_after: Duration,
    /// Response bytes kept.
    pub response_body_bytes: usize,
    /// Retention of finished deliveries (None: forever).
    pub retention: Option<Duration>,
    /// Shutdown grace.
    pub shutdown_grace: Duration,
}

/// `[capture_options]`, validated.
#[derive(Debug, Clone)]
pub struct CaptureOptions {
    /// Schema for capture objects (PostgreSQL).
    pub schema: String,
    /// NOTIFY from the trigger and LISTEN (else poll).
    pub notify: bool,
    /// Polling interval without NOTIFY, once no change arrived for a second.
    pub poll_interval: Duration,
    /// Polling interval while changes arrived within the last second.
    pub busy_poll_interval: Duration,
    /// Sweep interval.
    pub sweep_interval: Duration,
    /// Changes per batch.
    pub batch_size: usize,
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
pub struct PluginSettings {
    /// Run the plugin host.
    pub enabled: bool,
    /// Disk cache directory.
    pub cache_dir: Option<std::path::PathBuf>,
    /// Limits of every call.
    pub limits: changewire_plugin_host::PluginLimits,
    /// Plugins attached from the configuration file: (receiver, path, config JSON).
    pub attach: Vec<(i64, std::path::PathBuf, String)>,
}

/// The validated, immutable configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// HTTP listen address.
    pub listen: SocketAddr,
    /// The store.
    pub store: StoreUrl,
    /// The captured database, if any.
    pub capture: Option<StoreUrl>,
    /// Resources.
    pub resources: Resources,
    /// Delivery to plain http allowed.
    pub allow_http: bool,
    /// Delivery to private networks allowed.
    pub allow_private_networks: bool,
    /// Bootstrap admin token.
    pub admin_token: Option<Secret>,
    /// Key for secrets at rest.
    pub secret_key: Option<Secret>,
    /// Refuse to start a gateway without `secret_key`.
    pub require_secret_key: bool,
    /// Logging.
    pub log: LogSettings,
    /// API limits.
    pub api: ApiSettings,
    /// Delivery tuning.
    pub delivery: DeliverySettings,
    /// Capture tuning.
    pub capture_options: CaptureOptions,
    /// Plugins.
    pub plugins: PluginSettings,
}

impl Config {
    /// Merges defaults, the optional file, the environment and the flags.
    pub fn load(file: Option<&Path>, flags: &FlagOverrides) -> Result<Arc<Config>, ConfigError> {
        Self::load_with_env(file, flags, Env::prefixed("CHANGEWIRE_").split("__"))
    }

    /// As [`Config::load`], with an explicit environment provider (tests).
    pub fn load_with_env(
        file: Option<&Path>,
        flags: &FlagOverrides,
        env: Env,
    ) -> Result<Arc<Config>, ConfigError> {
        let mut figment = Figment::from(Toml::string(DEFAULT_TOML));
        if let Some(path) = file {
            if !path.exists() {
                return Err(invalid(
                    "--config",
                    format!("{} does not exist", path.display()),
                ));
            }
            figment = figment.merge(Toml::file(path));
        }
        let figment = figment.merge(env).merge(Serialized::defaults(flags));
        let raw: RawConfig = figment.extract().map_err(Box::new)?;
        Ok(Arc::new(Config::validate(raw)?))
    }

    /// A configuration for tests and embedding: defaults plus `patch`.
    pub fn from_toml(patch: &str) -> Result<Config, ConfigError> {
        Self::from_toml_layers(&[patch])
    }

    /// Defaults, then each TOML layer in order (later layers win, key by key).
    pub fn from_toml_layers(layers: &[&str]) -> Result<Config, ConfigError> {
        let mut figment = Figment::from(Toml::string(DEFAULT_TOML));
        for layer in layers {
            figment = figment.merge(Toml::string(layer));
        }
        let raw: RawConfig = figment.extract().map_err(Box::new)?;
        Config::validate(raw)
    }

    /// Checks every value once.
    pub fn validate(raw: RawConfig) -> Result<Config, ConfigError> {
        let listen: SocketAddr = raw.listen.parse().map_err(|e| {
            invalid(
                "listen",
                format!(
                    "`{}` is not an address like 127.0.0.1:8080 ({e})",
                    raw.listen
                ),
            )
        })?;
        let store = StoreUrl::parse("store", &raw.store)?;
        let capture = raw
            .capture
            .as_deref()
            .map(|u| StoreUrl::parse("capture", u))
            .transpose()?;
        let mappings = raw
            .resources
            .specs()
            .iter()
            .map(|s| resources::parse_mapping(s))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| invalid("resources", e.0))?;
        let resources = Resources::new(mappings).map_err(|e| invalid("resources", e.0))?;
        let admin_token = raw.admin_token.filter(|t| !t.is_empty());
        if let Some(token) = &admin_token
            && token.len() < 16
        {
            return Err(invalid("admin_token", "must be at least 16 characters"));
        }
        let secret_key = raw.secret_key.filter(|k| !k.is_empty());
        if let Some(key) = &secret_key
            && key.len() < 16
        {
            return Err(invalid("secret_key", "must be at least 16 characters"));
        }
        let json = match raw.log.format.as_str() {
            "json" => true,
            "text" => false,
            other => {
                return Err(invalid(
                    "log.format",
                    format!("`{other}` is not `text` or `json`"),
                ));
            }
        };
        let api = raw.api;
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
        let d = raw.delivery;
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
        let c = raw.capture_options;
        resources::check_table(&c.schema).map_err(|e| invalid("capture_options.schema", e.0))?;
        if c.batch_size == 0 || c.batch_size > 10_000 {
            return Err(invalid(
                "capture_options.batch_size",
                "must be between 1 and 10000",
            ));
        }
        if capture.is_some() && resources.captured().count() == 0 {
            return Err(invalid(
                "resources",
                "a capture database is set but no resource is mapped to a table; add --resource NAME=TABLE",
            ));
        }
        let p = raw.plugins;
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
        let plugins = PluginSettings {
            enabled: p.enabled,
            cache_dir: match p.cache_dir.trim() {
                "" => None,
                "auto" => default_cache_dir(),
                dir => Some(std::path::PathBuf::from(dir)),
            },
            limits,
            attach,
        };
        Ok(Config {
            listen,
            store,
            capture,
            resources,
            allow_http: raw.allow_http,
            allow_private_networks: raw.allow_private_networks,
            admin_token: admin_token.map(Secret::new),
            secret_key: secret_key.map(Secret::new),
            require_secret_key: raw.require_secret_key,
            log: LogSettings {
                json,
                level: raw.log.level,
            },
            api: ApiSettings {
                max_body_bytes: api.max_body_bytes,
                max_query_depth: api.max_query_depth,
                max_query_complexity: api.max_query_complexity,
                max_root_fields: api.max_root_fields,
                max_page_size: api.max_page_size,
            },
            delivery: DeliverySettings {
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
            },
            capture_options: CaptureOptions {
                schema: c.schema,
                notify: c.notify,
                poll_interval: Duration::from_millis(c.poll_interval_ms.max(1)),
                busy_poll_interval: Duration::from_millis(
                    c.busy_poll_interval_ms.clamp(1, c.poll_interval_ms.max(1)),
                ),
                sweep_interval: Duration::from_millis(c.sweep_interval_ms.max(10)),
                batch_size: c.batch_size,
            },
            plugins,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        let cfg = Config::from_toml("").unwrap();
        assert_eq!(cfg.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(cfg.store, StoreUrl::Sqlite("sqlite://changewire.db".into()));
        assert!(!cfg.allow_http && !cfg.allow_private_networks);
        assert_eq!(cfg.resources.names().len(), 18);
    }

    #[test]
    fn errors_name_the_key() {
        let err = Config::from_toml("listen = \"nowhere\"")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("`listen`"), "{err}");
        let err = Config::from_toml("store = \"mysql://x\"")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("`store`"), "{err}");
        let err = Config::from_toml("capture = \"postgres://x/y\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("no resource is mapped"), "{err}");
        let err = Config::from_toml("bogus = 1").unwrap_err().to_string();
        assert!(err.contains("bogus"), "{err}");
        for key in ["max_root_fields", "max_query_complexity"] {
            let err = Config::from_toml(&format!("[api]\n{key} = 0"))
                .unwrap_err()
                .to_string();
            assert!(err.starts_with(&format!("`api.{key}`")), "{err}");
        }
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail closure returns its own error type
    fn layers_merge_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:9000\"\n[resources]\nRUNS = \"runs\"\n",
        )
        .unwrap();
        let flags = FlagOverrides {
            store: Some("postgres://db/x".into()),
            ..Default::default()
        };
        figment::Jail::expect_with(|jail| {
            jail.set_env("CHANGEWIRE_LISTEN", "127.0.0.1:9001");
            jail.set_env("CHANGEWIRE_DELIVERY__MAX_IN_FLIGHT", "7");
            let cfg = Config::load(Some(&file), &flags).map_err(|e| e.to_string())?;
            assert_eq!(cfg.listen.to_string(), "127.0.0.1:9001");
            assert_eq!(cfg.store, StoreUrl::Postgres("postgres://db/x".into()));
            assert_eq!(cfg.delivery.max_in_flight, 7);
            assert_eq!(cfg.resources.names(), vec!["RUNS".to_string()]);
            jail.set_env("CHANGEWIRE_RESOURCES", "A=a, B=b");
            let cfg = Config::load(None, &FlagOverrides::default()).map_err(|e| e.to_string())?;
            assert_eq!(
                cfg.resources.names(),
                vec!["A".to_string(), "B".to_string()]
            );
            Ok(())
        });
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact_url("postgres://u:pw@h/db"), "postgres://u:***@h/db");
        assert_eq!(
            redact_url("postgres://u@h/db?sslmode=require&password=pw"),
            "postgres://u@h/db?sslmode=require&password=***"
        );
        assert_eq!(redact_url("sqlite://x.db"), "sqlite://x.db");
    }
}
