//! # changewire-gateway
//!
//! The server behind the `changewire` binary: it captures committed row
//! changes, fans them out to subscribed receivers and delivers them signed,
//! at least once. See `ARCHITECTURE.md` at the repository root for the map.

// No unsafe code: the one use that plugins need (loading compiled plugins
// from the on-disk cache) is in `changewire-plugin-host`.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod api;
pub mod capture;
pub mod cli;
pub mod config;
pub mod delivery;
pub mod destination;
pub mod envelope;
pub mod fanout;
pub mod health;
pub mod maintenance;
pub mod model;
pub mod plugins;
pub mod redelivery;
pub mod report;
pub mod secrets;
pub mod server;
pub mod signals;
pub mod store;
pub mod telemetry;
pub mod timefmt;
