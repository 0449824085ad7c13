//! # changewire-gateway
//!
//! The server behind the `changewire` binary: it captures committed row
//! changes, fans them out to subscribed receivers and delivers them signed,
//! at least once. See `ARCHITECTURE.md` at the repository root for the map.
//!
//! The crate's public surface is what the binary and the test harness use:
//! [`run`] (the command line), [`Config`], [`RunningGateway`] and
//! [`StartError`]. Everything else is crate-private; the integration tests
//! and benchmarks reach the internals they exercise through the hidden
//! [`testing`] module.

// No unsafe code: the one use that plugins need (loading compiled plugins
// from the on-disk cache) is in `changewire-plugin-host`.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod api;
mod capture;
mod cli;
mod config;
mod console;
mod delivery;
mod destination;
mod egress;
mod envelope;
mod fanout;
mod health;
mod maintenance;
mod model;
mod operational;
mod plugins;
mod redelivery;
mod report;
mod secrets;
mod server;
mod shared;
mod signals;
mod store;
mod telemetry;
mod timefmt;
mod traces;

#[doc(hidden)]
pub mod testing;

pub use cli::run;
pub use config::{Config, ConfigError};
pub use server::{RunningGateway, StartError};
