//! The management API: GraphQL compatible with First Resonance ION's webhook
//! API (receivers, subscriptions, headers, events), plus ingest and health.
//! One file per resource; each owns its query and mutation objects, merged in
//! [`schema`].

pub(crate) mod auth;
pub(crate) mod console;
pub(crate) mod context;
pub(crate) mod error;
pub(crate) mod events;
pub(crate) mod graphiql;
pub(crate) mod http;
pub(crate) mod ingest;
pub(crate) mod limits;
pub(crate) mod operational;
pub(crate) mod pagination;
pub(crate) mod plugins;
pub(crate) mod receivers;
pub(crate) mod redelivery;
pub(crate) mod scalars;
pub(crate) mod schema;
pub(crate) mod subscriptions;

pub(crate) use context::ApiContext;
pub(crate) use http::router;
