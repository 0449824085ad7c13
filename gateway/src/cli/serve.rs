//! `changewire serve`: run the gateway.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;

use super::advice::Advised;
use crate::config::{Config, FlagOverrides, RawResources};
use crate::server::RunningGateway;

/// Arguments of `changewire serve`. Each flag is also a `CHANGEWIRE_*`
/// environment variable and a key of the `--config` file; see
/// `changewire config` for every key and its default.
#[derive(Debug, Args, Default)]
pub(crate) struct ServeArgs {
    /// A TOML configuration file (keys as in `changewire config`).
    #[arg(long, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// Address of the HTTP API [env: CHANGEWIRE_LISTEN] [default: 127.0.0.1:8080].
    #[arg(long, value_name = "ADDR")]
    pub(crate) listen: Option<String>,
    /// The store: `sqlite://PATH` or `postgres://…` [env: CHANGEWIRE_STORE]
    /// [default: sqlite://changewire.db].
    #[arg(long, value_name = "URL")]
    pub(crate) store: Option<String>,
    /// A database to capture changes from (`postgres://…` or `sqlite://PATH`)
    /// [env: CHANGEWIRE_CAPTURE] [default: none].
    #[arg(long, value_name = "URL")]
    pub(crate) capture: Option<String>,
    /// Which table is which resource, e.g. `RUNS=runs` (repeatable)
    /// [env: CHANGEWIRE_RESOURCES="RUNS=runs,PARTS=parts"].
    #[arg(long = "resource", value_name = "NAME=TABLE")]
    pub(crate) resources: Vec<String>,
    /// How a PostgreSQL capture database is read: `triggers` (audit triggers
    /// and a log table) or `logical` (a replication slot; needs
    /// wal_level = logical) [env: CHANGEWIRE_CAPTURE_OPTIONS__MODE]
    /// [default: triggers].
    #[arg(long, value_name = "MODE", value_parser = ["triggers", "logical"])]
    pub(crate) capture_mode: Option<String>,
    /// Allow delivery to plain-http URLs [env: CHANGEWIRE_ALLOW_HTTP].
    #[arg(long)]
    pub(crate) allow_http: bool,
    /// Allow delivery to loopback, private, link-local and metadata addresses
    /// [env: CHANGEWIRE_ALLOW_PRIVATE_NETWORKS].
    #[arg(long)]
    pub(crate) allow_private_networks: bool,
    /// Refuse to start without a secret key (CHANGEWIRE_SECRET_KEY), so that
    /// receivers' shared secrets and Basic-auth passwords are never stored in
    /// clear [env: CHANGEWIRE_REQUIRE_SECRET_KEY].
    #[arg(long)]
    pub(crate) require_secret_key: bool,
}

impl ServeArgs {
    /// The flags that were given, as configuration overrides.
    pub(crate) fn overrides(&self) -> FlagOverrides {
        FlagOverrides {
            listen: self.listen.clone(),
            store: self.store.clone(),
            capture: self.capture.clone(),
            resources: (!self.resources.is_empty())
                .then(|| RawResources::List(self.resources.clone())),
            allow_http: self.allow_http.then_some(true),
            allow_private_networks: self.allow_private_networks.then_some(true),
            require_secret_key: self.require_secret_key.then_some(true),
            capture_options: self
                .capture_mode
                .clone()
                .map(|mode| crate::config::CaptureOptionFlags { mode }),
        }
    }
}

/// What `serve` says at start without a secret key.
const SECRET_KEY_WARNING: &str = "CHANGEWIRE_SECRET_KEY is not set: receivers' shared secrets, \
     Basic-auth passwords and custom header values are stored in clear in the store. Set \
     CHANGEWIRE_SECRET_KEY to 16+ characters (e.g. `openssl rand -hex 32`) to encrypt them (values \
     already stored are encrypted at the next start); --require-secret-key \
     (CHANGEWIRE_REQUIRE_SECRET_KEY=true) refuses to start without it";

/// Loads the configuration, starts the gateway, and runs until SIGINT/SIGTERM.
pub(super) fn run(args: &ServeArgs) -> anyhow::Result<ExitCode> {
    let config =
        Config::load(args.config.as_deref(), &args.overrides()).context("configuration")?;
    crate::telemetry::init_logging(&config.log);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        if config.secret_key.is_none() && !config.require_secret_key {
            tracing::warn!("{SECRET_KEY_WARNING}");
        }
        if config.admin_token.is_none() {
            tracing::warn!(
                "CHANGEWIRE_ADMIN_TOKEN is not set: only API keys from `changewire keys create` can use the API"
            );
        }
        let gateway = RunningGateway::start(config.clone())
            .await
            .map_err(|err| {
                let advice = super::advice::for_start(&err, &config);
                Advised::wrap(err, "starting changewire", advice)
            })?;
        let token = gateway.shutdown_token();
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("shutting down: finishing in-flight deliveries");
            token.cancel();
        });
        gateway.run_until_cancelled().await;
        Ok(ExitCode::SUCCESS)
    })
}

/// Resolves on SIGINT or SIGTERM.
pub(crate) async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
