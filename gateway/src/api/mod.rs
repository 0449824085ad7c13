//! The management API: GraphQL compatible with First Resonance ION's webhook
//! API (receivers, subscriptions, headers, events), plus ingest and health.
//! One file per resource; each owns its query and mutation objects, merged in
//! [`schema`].

pub mod auth;
pub mod context;
pub mod error;
pub mod events;
pub mod http;
pub mod ingest;
pub mod limits;
pub mod pagination;
pub mod plugins;
pub mod receivers;
pub mod scalars;
pub mod schema;
pub mod subscriptions;

pub use context::ApiContext;
pub use http::router;
