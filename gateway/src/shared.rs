//! What every long-running part of a gateway (delivery engine, capture,
//! operational events) is started with.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::health::Health;
use crate::signals::Signals;
use crate::store::Store;
use crate::traces::Traces;

/// The gateway's shared pieces, cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Shared {
    /// The validated configuration.
    pub(crate) config: Arc<Config>,
    /// The store.
    pub(crate) store: Store,
    /// In-process wake-ups.
    pub(crate) signals: Arc<Signals>,
    /// Readiness components.
    pub(crate) health: Arc<Health>,
    /// Cancelled when the gateway stops.
    pub(crate) shutdown: CancellationToken,
    /// Where spans go (when traces are exported).
    pub(crate) traces: Traces,
}
