//! Assembles a running gateway: store, HTTP API, capture importers, delivery
//! engine and maintenance, with one shutdown switch. Used by `changewire
//! serve`, the quick start and the tests.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::api::{self, ApiContext};
use crate::config::Config;
use crate::health::Health;
use crate::plugins::PluginRuntime;
use crate::signals::Signals;
use crate::store::Store;

/// Why a gateway could not start. Print it with its causes (each cause is
/// said once, by the outermost error that knows it).
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct StartError(#[from] StartErrorKind);

impl StartError {
    /// What went wrong, for the command line's advice.
    pub(crate) fn kind(&self) -> &StartErrorKind {
        &self.0
    }
}

macro_rules! start_error_from {
    ($($source:ty),* $(,)?) => {$(
        impl From<$source> for StartError {
            fn from(err: $source) -> Self {
                StartError(err.into())
            }
        }
    )*};
}

start_error_from!(
    crate::store::Error,
    crate::capture::Error,
    crate::plugins::Error,
    crate::delivery::Error,
);

/// The kinds of [`StartError`].
#[derive(Debug, thiserror::Error)]
pub(crate) enum StartErrorKind {
    /// `require_secret_key` is set and no secret key is configured; nothing
    /// was opened or changed.
    #[error(
        "a secret key is required (`require_secret_key`, --require-secret-key, \
         CHANGEWIRE_REQUIRE_SECRET_KEY) but none is set: set CHANGEWIRE_SECRET_KEY (or \
         `secret_key` in the config file) to 16+ characters, e.g. `openssl rand -hex 32`"
    )]
    SecretKeyRequired,
    /// The store is unreachable or its migrations failed.
    #[error("store")]
    Store(#[from] crate::store::Error),
    /// The listen address is unavailable.
    #[error("cannot listen on {addr}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        source: std::io::Error,
    },
    /// Capture could not be set up (missing table, no primary key…).
    #[error("capture")]
    Capture(#[from] crate::capture::Error),
    /// A plugin named in the configuration file cannot be attached.
    #[error("plugins")]
    Plugin(#[from] crate::plugins::Error),
    /// The delivery engine could not start.
    #[error("delivery")]
    Delivery(#[from] crate::delivery::Error),
}

/// Refuses a configuration that requires a secret key and has none.
fn check_secret_key(config: &Config) -> Result<(), StartError> {
    if config.require_secret_key && config.secret_key.is_none() {
        return Err(StartErrorKind::SecretKeyRequired.into());
    }
    Ok(())
}

/// A gateway that is running.
pub struct RunningGateway {
    /// The address the API listens on.
    pub addr: SocketAddr,
    /// The store.
    pub store: Store,
    pub(crate) signals: Arc<Signals>,
    /// The configuration.
    pub(crate) config: Arc<Config>,
    shutdown: CancellationToken,
    tasks: JoinSet<()>,
}

impl RunningGateway {
    /// Starts everything on an already bound listener (tests bind port 0).
    ///
    /// Refuses, before opening anything, when `require_secret_key` is set
    /// and no secret key is: that gateway would store secrets in clear.
    pub async fn start_on(
        config: Arc<Config>,
        listener: TcpListener,
    ) -> Result<RunningGateway, StartError> {
        check_secret_key(&config)?;
        let addr = listener
            .local_addr()
            .map_err(|source| StartErrorKind::Listen {
                addr: config.listen,
                source,
            })?;
        let store = Store::connect(&config.store).await?;
        // Secrets written before a key was configured are sealed now.
        let sealed = store
            .seal_plain_secrets(&crate::secrets::SecretBox::new(config.secret_key.as_ref()))
            .await?;
        if sealed > 0 {
            tracing::info!(sealed, "encrypted secrets that were stored in clear");
        }
        let keyed = store
            .add_missing_signing_keys(&crate::secrets::SecretBox::new(config.secret_key.as_ref()))
            .await?;
        if keyed > 0 {
            tracing::info!(
                receivers = keyed,
                "made Ed25519 signing keys for receivers that had none"
            );
        }
        let signals = Arc::new(Signals::default());
        let health = Arc::new(Health::default());
        let shutdown = CancellationToken::new();
        let mut tasks = JoinSet::new();
        let _ = crate::telemetry::metrics_handle();
        crate::telemetry::register_start_series(&config, &store).await;
        let plugins = Arc::new(PluginRuntime::new(&config.plugins));
        crate::plugins::attach_from_config(&config, &store, &plugins).await?;
        plugins.sync(&store, &health).await?;
        let capture_progress = Arc::new(crate::operational::CaptureProgress::default());
        let operational = crate::operational::start(
            &config,
            &store,
            &signals,
            &capture_progress,
            &shutdown,
            &mut tasks,
        );

        // The delivery engine first: capture and the API hand it the new
        // deliveries it may send at once, through its hand-off.
        let traces = crate::traces::Traces::start(&config.telemetry, config.store.as_str());
        let shared = crate::shared::Shared {
            config: config.clone(),
            store: store.clone(),
            signals: signals.clone(),
            health: health.clone(),
            shutdown: shutdown.clone(),
            traces: traces.clone(),
        };
        let handoff =
            crate::delivery::start(&shared, &mut tasks, plugins.clone(), operational).await?;
        crate::capture::start(&shared, &mut tasks, Some(handoff.clone()), capture_progress).await?;
        crate::maintenance::start(&config, &store, &signals, &shutdown, &mut tasks);

        // The API goes up last: once `/healthz` answers, capture triggers are
        // installed, so everything committed from then on is captured.
        let api_state = ApiContext::new(
            store.clone(),
            config.clone(),
            signals.clone(),
            plugins.clone(),
            Some(handoff),
            traces,
        );
        let router = http_routes(api_state, health.clone());
        let http_shutdown = shutdown.clone();
        tasks.spawn(async move {
            let served = axum::serve(listener, router)
                .with_graceful_shutdown(async move { http_shutdown.cancelled().await })
                .await;
            if let Err(err) = served {
                tracing::error!(error = %err, "HTTP server stopped");
            }
        });

        tracing::info!(%addr, "changewire is listening");
        Ok(RunningGateway {
            addr,
            store,
            signals,
            config,
            shutdown,
            tasks,
        })
    }

    /// Binds `config.listen` and starts.
    pub async fn start(config: Arc<Config>) -> Result<RunningGateway, StartError> {
        check_secret_key(&config)?;
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| StartErrorKind::Listen {
                    addr: config.listen,
                    source,
                })?;
        Self::start_on(config, listener).await
    }

    /// Tells this gateway that receivers changed in the store behind its
    /// back (a tool or test wrote them directly): its caches reload now
    /// instead of at the next periodic check.
    pub fn receivers_changed(&self) {
        self.signals.receivers_changed();
    }

    /// The token that stops everything when cancelled.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Stops accepting work, lets in-flight attempts finish within the
    /// configured grace period, and returns when every task has ended.
    pub async fn shutdown(mut self) {
        self.shutdown.cancel();
        let grace = self.config.delivery.shutdown_grace + std::time::Duration::from_secs(2);
        let drained = tokio::time::timeout(grace, async {
            while self.tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                "some tasks did not stop within the shutdown grace period; aborting them"
            );
            self.tasks.abort_all();
            while self.tasks.join_next().await.is_some() {}
        }
        self.store.close().await;
    }

    /// Runs until the token is cancelled (e.g. by a signal), then shuts down.
    pub async fn run_until_cancelled(self) {
        self.shutdown.cancelled().await;
        self.shutdown().await;
    }
}

/// Everything served on the listen address: the API and, unless
/// `[console] enabled = false`, the web console.
pub(crate) fn http_routes(api: ApiContext, health: Arc<crate::health::Health>) -> axum::Router {
    let console = api
        .config
        .console
        .enabled
        .then(|| crate::console::router(api.clone()));
    let router = api::router(api, health);
    match console {
        Some(console) => router.merge(console),
        None => router,
    }
}
