//! The plugin registry: which receiver has which WebAssembly plugin on this
//! gateway, attaching one, and the hook that runs it just before signing.
//! The host that compiles and runs plugins is the `changewire-plugin-host`
//! crate; this module decides which plugin applies to which delivery.
//!
//! ```text
//! attachWebhookPlugin ─┐                                   ┌─ sync (every 2 s, or when a delivery
//! [[plugins.attach]] ──┴▶ attach: compile ▶ store ▶ install │   asks for a revision not loaded here):
//!                                               │           │   store index ▶ compile ▶ install
//!                                               ▼           ▼
//!                              PluginRuntime: receiver → (revision, loaded plugin | failed | disabled)
//!                                               │
//!            dispatcher / hand-off: ready_for ──┤── attempt: transform ▶ Transform
//! ```
//!
//! [`PluginRuntime`] owns the host and the registry of compiled plugins by
//! receiver. Replacing a plugin swaps an `Arc`: calls in flight finish with
//! the plugin they started with, the next call uses the new one, so no
//! delivery ever sees half of one.
//!
//! **A plugin is never bypassed.** The store is the truth: every attach
//! gives the plugin a new revision, and every lease reads the revision
//! attached at that moment
//! ([`LeasedDelivery::plugin_revision`](crate::store::deliveries::LeasedDelivery::plugin_revision)).
//! A delivery is sent only once transformed by exactly that revision. When
//! this gateway has not loaded it (plugins disabled here, a module that no
//! longer compiles, the seconds before [`PluginRuntime::sync`] sees an
//! attach made by another gateway) the delivery is held: released
//! unattempted with the reason as its last error, and the receiver is not
//! leased for until the plugin loads. Only a receiver that chose
//! `DELIVER_ORIGINAL` gets the original body when its plugin cannot load.
//!
//! Files: `runtime` (the registry: load states, revisions, `ready_for`,
//! `sync`, `transform`), `transform` (what a plugin decided, as
//! [`Transform`]), `attach` (compile, store, install; and the start-up
//! attach of `[[plugins.attach]]`).

mod attach;
mod runtime;
mod transform;

use std::path::PathBuf;

use crate::model::ReceiverId;

pub(crate) use attach::{attach, attach_from_config};
pub(crate) use runtime::{LoadState, PluginRuntime};
pub(crate) use transform::PluginEvent;
pub(crate) use transform::Transform;

/// Why a plugin cannot be attached.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    /// Plugins are off on this gateway (by configuration, or the host could
    /// not start).
    #[error("plugins are disabled on this gateway: {reason}")]
    Disabled {
        /// Why they are off, e.g. `[plugins] enabled = false`.
        reason: String,
    },
    /// The module is not a plugin this gateway can run: not a component,
    /// does not compile, imports something not provided, lacks the
    /// transformer export.
    #[error("{reason}")]
    Invalid {
        /// The host's reason (the compiler's words, the refused imports…).
        reason: String,
    },
    /// The receiver does not exist.
    #[error("receiver {receiver_id} does not exist")]
    NotFound {
        /// The receiver asked for.
        receiver_id: ReceiverId,
    },
    /// A module named in the configuration file cannot be read.
    #[error("cannot read {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        source: std::io::Error,
    },
    /// A plugin named in the configuration file (`[[plugins.attach]]`)
    /// cannot be attached; the source says why.
    #[error("cannot attach {} to receiver {receiver_id}", path.display())]
    FromConfig {
        /// The module's file.
        path: PathBuf,
        /// The receiver it is for.
        receiver_id: i64,
        source: Box<Error>,
    },
    /// Reading or writing the store failed.
    #[error("store")]
    Store(#[from] crate::store::Error),
}
