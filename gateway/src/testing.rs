//! Internals the integration tests and benchmarks exercise directly (the
//! store, capture's install, the model's types). Not a stable API: hidden
//! from the documentation, and changed with the code it exposes.

pub use crate::capture::Error as CaptureError;
pub use crate::capture::postgres::PgCapture;
pub use crate::capture::uninstall as uninstall_capture;
pub use crate::config::StoreUrl;
pub use crate::destination::Policy;
pub use crate::egress::GuardedResolver;
pub use crate::envelope::{Action, ChangePayload, SubscriptionView};
pub use crate::model::{
    ChangeId, DeliveryId, DeliveryStatus, NewReceiver, NewSubscription, PluginFailureMode,
    ReceiverEgressSettings, ReceiverId, ReceiverSettings, RetryPolicy, SignatureSchemes,
    SubscriptionId, SubscriptionSettings,
};
pub use crate::report::Report;
pub use crate::secrets::{generate_api_token, hash_token};
pub use crate::store::api_keys::ApiKeyRow;
pub use crate::store::attempts::AttemptRow;
pub use crate::store::changes::{Claim, Claims, FanoutOutcome, NeedsSeen, NewChange};
pub use crate::store::deliveries::{
    AttemptRecord, Completion, EventRow, Finished, LeaseRequest, LeasedDelivery,
};
pub use crate::store::partitions::{Dropped, Partition};
pub use crate::store::plugins::PluginRow;
pub use crate::store::receiver_headers::HeaderRow;
pub use crate::store::receivers::{Actor, ReceiverRow};
pub use crate::store::subscriptions::{SubscriptionFilter, SubscriptionRow};
pub use crate::store::{Backend, Error as StoreError, Store, now_ms};
pub use crate::telemetry::metric_families;
pub use crate::timefmt::format_ms;

use std::sync::Arc;

/// The API's router (and the console's) on `config`'s store, with no delivery engine and no
/// capture: what an in-process test sends requests to with
/// `tower::ServiceExt::oneshot`, without a socket.
pub async fn api_router(config: Arc<crate::Config>) -> Result<axum::Router, crate::StartError> {
    let store = Store::connect(&config.store).await?;
    let plugins = Arc::new(crate::plugins::PluginRuntime::new(&config.plugins));
    let api = crate::api::ApiContext::new(
        store,
        config,
        Arc::new(crate::signals::Signals::default()),
        plugins,
        None,
        crate::traces::Traces::off(),
    );
    Ok(crate::server::http_routes(api, Arc::default()))
}

/// `on_pool!(store, |pool| …)`: runs the same statement tokens on whichever
/// pool a [`Store`] holds (both arms must have the same type).
#[macro_export]
#[doc(hidden)]
macro_rules! __testing_on_pool {
    ($store:expr, |$pool:ident| $body:expr) => {
        match $store.backend() {
            $crate::testing::Backend::Postgres($pool) => $body,
            $crate::testing::Backend::Sqlite($pool) => $body,
        }
    };
}
pub use crate::__testing_on_pool as on_pool;

/// The plan PostgreSQL picks for the lease of `requests` at `now` (with
/// the store's lease floor), as `EXPLAIN` prints it; None on SQLite.
pub async fn explain_lease(
    store: &Store,
    now: i64,
    requests: &[LeaseRequest],
) -> Option<Result<String, StoreError>> {
    match store.backend() {
        Backend::Postgres(main) => Some(
            crate::store::deliveries::explain_lease(
                store.lease_pool().unwrap_or(main),
                now,
                store.lease_floor(),
                requests,
            )
            .await,
        ),
        Backend::Sqlite(_) => None,
    }
}

/// The plan PostgreSQL picks for the recorder's statement (update and
/// attempts) with a batch of deliveries (id and `created_at`), as `EXPLAIN`
/// prints it; None on SQLite.
pub async fn explain_recorder(
    store: &Store,
    ids: &[(DeliveryId, i64)],
) -> Option<Result<String, StoreError>> {
    match store.backend() {
        Backend::Postgres(pool) => {
            Some(crate::store::deliveries::explain_finish(store, pool, ids).await)
        }
        Backend::Sqlite(_) => None,
    }
}

/// The plan PostgreSQL picks for the fan-out of `n` updates of `resource`,
/// `claimed` receivers taking theirs leased, as `EXPLAIN` prints it; None
/// on SQLite.
pub async fn explain_fan_out(
    store: &Store,
    resource: &str,
    n: usize,
    claimed: &[ReceiverId],
) -> Option<Result<String, StoreError>> {
    match store.backend() {
        Backend::Postgres(main) => {
            let pool = store.fan_out_pool().unwrap_or(main);
            Some(crate::store::plans::explain_fan_out(pool, resource, n, claimed).await)
        }
        Backend::Sqlite(_) => None,
    }
}

/// Makes a finished delivery pending again, due now, as the API's and the
/// console's retry do.
pub async fn retry_delivery(store: &Store, id: DeliveryId) -> Result<(), StoreError> {
    store.retry_delivery(id).await.map(|_| ())
}
