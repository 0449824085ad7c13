//! Configuration: the embedded defaults, then `--config FILE`, then
//! `CHANGEWIRE_*` environment variables, then flags — merged in `raw`, then
//! validated once into an immutable [`Config`].

pub(crate) mod raw;
pub(crate) mod resources;
mod sections;
mod urls;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use changewire_core::Secret;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};

pub(crate) use raw::{CaptureOptionFlags, FlagOverrides, RawConfig, RawResources};
pub(crate) use resources::Resources;
pub(crate) use sections::{
    ApiSettings, CaptureMode, CaptureOptions, ConsoleSettings, DeliverySettings, LogSettings,
    MAX_LINK_TTL, OperationalSettings, PluginSettings, SecureCookies, TelemetrySettings,
};
pub use urls::StoreUrl;
pub(crate) use urls::redact_url;

/// The commented defaults, also printed by `changewire config`.
pub(crate) const DEFAULT_TOML: &str = include_str!("config.default.toml");

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
    /// A value read from the environment (`HTTPS_PROXY`…) or a list entry
    /// is unusable.
    #[error("`{setting}`: {reason}")]
    Setting {
        /// The setting or environment variable.
        setting: String,
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

/// The validated, immutable configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// HTTP listen address.
    pub(crate) listen: SocketAddr,
    /// The store.
    pub(crate) store: StoreUrl,
    /// The captured database, if any.
    pub(crate) capture: Option<StoreUrl>,
    pub(crate) resources: Resources,
    /// Delivery to plain http allowed.
    pub(crate) allow_http: bool,
    /// Delivery to private networks allowed.
    pub(crate) allow_private_networks: bool,
    /// Bootstrap admin token.
    pub(crate) admin_token: Option<Secret>,
    /// Key for secrets at rest.
    pub(crate) secret_key: Option<Secret>,
    /// Refuse to start a gateway without `secret_key`.
    pub(crate) require_secret_key: bool,
    pub(crate) log: LogSettings,
    /// API limits.
    pub(crate) api: ApiSettings,
    /// Delivery tuning.
    pub(crate) delivery: DeliverySettings,
    /// Capture tuning.
    pub(crate) capture_options: CaptureOptions,
    pub(crate) plugins: PluginSettings,
    /// `[console]`.
    pub(crate) console: ConsoleSettings,
    /// `[operational]`.
    pub(crate) operational: OperationalSettings,
    /// `[telemetry]`: traces.
    pub(crate) telemetry: TelemetrySettings,
}

impl Config {
    /// Where webhooks may go: `allow_http`, `allow_private_networks` and
    /// `[delivery] allow_networks`.
    pub(crate) fn destination_policy(&self) -> crate::destination::Policy {
        crate::destination::Policy::new(
            self.allow_http,
            self.allow_private_networks,
            &self.delivery.allow_networks,
        )
    }

    /// Merges defaults, the optional file, the environment and the flags.
    pub(crate) fn load(
        file: Option<&Path>,
        flags: &FlagOverrides,
    ) -> Result<Arc<Config>, ConfigError> {
        Self::load_with_env(file, flags, Env::prefixed("CHANGEWIRE_").split("__"))
    }

    /// As [`Config::load`], with an explicit environment provider (tests).
    pub(crate) fn load_with_env(
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
        Ok(Arc::new(Config::validate(raw, &|name| {
            std::env::var(name).ok()
        })?))
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
        Config::validate(raw, &|_| None)
    }

    /// Checks every value once: the top-level keys here, each section by
    /// its own validator. `env` reads the proxy variables (`HTTPS_PROXY`…).
    pub(crate) fn validate(
        raw: RawConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
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
        let resources = validate_resources(&raw.resources, capture.is_some())?;
        let capture_options = CaptureOptions::validate(raw.capture_options)?;
        if capture_options.mode == CaptureMode::Logical
            && matches!(capture, Some(StoreUrl::Sqlite(_)))
        {
            return Err(invalid(
                "capture_options.mode",
                "\"logical\" reads PostgreSQL's replication stream; a SQLite capture database has triggers only",
            ));
        }
        Ok(Config {
            listen,
            store,
            capture,
            resources,
            allow_http: raw.allow_http,
            allow_private_networks: raw.allow_private_networks,
            admin_token: long_secret("admin_token", raw.admin_token)?,
            secret_key: long_secret("secret_key", raw.secret_key)?,
            require_secret_key: raw.require_secret_key,
            log: LogSettings::validate(raw.log)?,
            api: ApiSettings::validate(raw.api)?,
            delivery: DeliverySettings::validate(raw.delivery, env)?,
            capture_options,
            plugins: PluginSettings::validate(raw.plugins)?,
            console: ConsoleSettings::validate(raw.console)?,
            operational: OperationalSettings::validate(raw.operational)?,
            telemetry: telemetry(raw.telemetry)?,
        })
    }
}

/// `resources`: every mapping parses, names are unique, and a captured
/// database has at least one table to capture.
fn validate_resources(raw: &RawResources, capturing: bool) -> Result<Resources, ConfigError> {
    let mappings = raw
        .specs()
        .iter()
        .map(|s| resources::parse_mapping(s))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid("resources", e.0))?;
    let resources = Resources::new(mappings).map_err(|e| invalid("resources", e.0))?;
    if capturing && resources.captured().count() == 0 {
        return Err(invalid(
            "resources",
            "a capture database is set but no resource is mapped to a table; add --resource NAME=TABLE",
        ));
    }
    Ok(resources)
}

/// `[telemetry]`: the collector must be an http(s) URL.
fn telemetry(raw: raw::RawTelemetry) -> Result<TelemetrySettings, ConfigError> {
    let endpoint = raw.otlp_endpoint.trim();
    let otlp_endpoint = if endpoint.is_empty() {
        None
    } else {
        let url = url::Url::parse(endpoint).map_err(|e| {
            invalid(
                "telemetry.otlp_endpoint",
                format!("`{endpoint}` is not a URL ({e})"),
            )
        })?;
        if url.scheme() != "http" {
            return Err(invalid(
                "telemetry.otlp_endpoint",
                format!(
                    "`{endpoint}` must be an http:// URL of an OTLP/HTTP collector (e.g. http://127.0.0.1:4318; a local collector or agent forwards with TLS)"
                ),
            ));
        }
        Some(endpoint.trim_end_matches('/').to_string())
    };
    Ok(TelemetrySettings {
        otlp_endpoint,
        service_name: raw.service_name,
    })
}

/// A token or key: absent when empty, refused when shorter than 16.
fn long_secret(key: &'static str, value: Option<String>) -> Result<Option<Secret>, ConfigError> {
    match value.filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) if v.len() < 16 => Err(invalid(key, "must be at least 16 characters")),
        Some(v) => Ok(Some(Secret::new(v))),
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
    fn egress_and_telemetry_settings_name_their_key() {
        for (toml, key) in [
            ("[delivery]\nproxy = \"ftp://proxy:21\"", "`delivery.proxy`"),
            (
                "[delivery]\nno_proxy = [\"not a host\"]",
                "`delivery.no_proxy`",
            ),
            (
                "[delivery]\nallow_networks = [\"10.0.0.0/33\"]",
                "`delivery.allow_networks`",
            ),
            (
                "[telemetry]\notlp_endpoint = \"collector:4318\"",
                "`telemetry.otlp_endpoint`",
            ),
        ] {
            let err = Config::from_toml(toml).unwrap_err().to_string();
            assert!(err.starts_with(key), "{toml}: {err}");
        }
        let cfg = Config::from_toml(
            "[delivery]\nproxy = \"socks5h://p:1080\"\nallow_networks = [\"10.20.0.0/16\"]\n[telemetry]\notlp_endpoint = \"http://127.0.0.1:4318/\"",
        )
        .unwrap();
        assert!(
            cfg.delivery
                .proxies
                .route("https", "hooks.example.com")
                .is_some()
        );
        assert!(
            cfg.destination_policy()
                .check_ip("10.20.1.1".parse().unwrap())
                .is_ok()
        );
        assert_eq!(
            cfg.telemetry.otlp_endpoint.as_deref(),
            Some("http://127.0.0.1:4318")
        );
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
