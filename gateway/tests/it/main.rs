//! Integration tests of the gateway: one binary, one module per scenario,
//! each scenario run on SQLite and on PostgreSQL (`both_backends!`).

#![allow(clippy::unwrap_used)] // in tests a failed unwrap is a failed test, with its location

use changewire_test_support::Backend;

/// Defines `mod $name { sqlite(), postgres() }` running `$f(backend)`.
macro_rules! both_backends {
    ($($name:ident => $f:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$f(crate::Backend::Sqlite).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$f(crate::Backend::Postgres).await
                }
            }
        )*
    };
}

mod api_auth;
mod api_bad_input;
mod api_destinations;
mod api_http_bodies;
mod api_ion_docs;
mod api_limits;
mod api_receivers;
mod api_router;
mod capture_pg;
mod capture_sqlite;
mod cli_start;
mod delivery;
mod handoff;
mod ingest;
mod metrics;
mod plugins;
mod store_integrity;

#[allow(dead_code)]
fn backends() -> [Backend; 2] {
    [Backend::Sqlite, Backend::Postgres]
}
