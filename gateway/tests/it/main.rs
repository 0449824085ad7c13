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
mod capture_logical;
mod capture_pg;
mod capture_sqlite;
mod cli_start;
mod console;
mod delivery;
mod egress;
mod handoff;
mod ingest;
mod metrics;
mod plugins;
mod sender;
mod store_integrity;
mod store_partitions;
mod store_plans;
mod traces;

#[allow(dead_code)]
fn backends() -> [Backend; 2] {
    [Backend::Sqlite, Backend::Postgres]
}

/// A receiver's settings to write straight into the store, past the API's
/// rules (to register a destination the API would refuse, as if DNS had
/// changed since).
fn stored_settings(
    url: String,
    retry_policy: changewire_gateway::testing::RetryPolicy,
    max_attempts: i32,
) -> changewire_gateway::testing::ReceiverSettings {
    changewire_gateway::testing::ReceiverSettings {
        name: "stored directly".into(),
        description: None,
        webhook_uri: url,
        content_type: "json".into(),
        expected_response_code: 200,
        active: true,
        timeout_ms: 1000,
        retry_policy,
        max_attempts,
        retry_interval_secs: if max_attempts > 1 { 60 } else { 1 },
        signature_schemes: Default::default(),
        basic_auth_username: None,
        basic_auth_password: None,
        ordered: false,
        max_concurrency: None,
        plugin_failure_mode: changewire_gateway::testing::PluginFailureMode::Fail,
        rate_limit_per_second: None,
        egress: Default::default(),
    }
}

/// Writes a receiver with `settings` straight into `gw`'s store, subscribed
/// to RUNS UPDATE, and tells the gateway.
async fn stored_receiver(
    gw: &changewire_test_support::gateway::TestGateway,
    settings: changewire_gateway::testing::ReceiverSettings,
) -> changewire_gateway::testing::ReceiverRow {
    use changewire_gateway::testing::{Action, NewReceiver, NewSubscription, SubscriptionSettings};
    let store = &gw.gw().store;
    let new = NewReceiver {
        settings,
        headers: Vec::new(),
        signing_key: None,
    };
    let row = store
        .create_receiver(&new, "whsec_c2VjcmV0", &Default::default())
        .await
        .unwrap();
    let subscription = NewSubscription {
        receiver_id: row.id,
        resource: "RUNS".into(),
        action: Action::Update,
        settings: SubscriptionSettings {
            active: true,
            include_full_record: false,
            expand: Vec::new(),
        },
    };
    store
        .insert_subscription(&subscription, &Default::default())
        .await
        .unwrap();
    gw.gw().receivers_changed();
    row
}

/// An operator's receiver subscribed to `types`; returns (id, secret).
pub(crate) async fn operator(
    gw: &changewire_test_support::gateway::TestGateway,
    sink: &changewire_test_support::receiver::TestReceiver,
    types: &[&str],
) -> (String, String) {
    let (id, secret) = gw
        .receiver_with(
            &sink.url(),
            &[],
            serde_json::json!({"name": "on-call", "signatureSchemes": ["STANDARD"]}),
        )
        .await;
    let data = gw
        .graphql(
            &format!(
                "mutation($r: ID!) {{ createOperationalSubscription(input: {{ receiverId: $r, eventTypes: [{}] }}) \
                 {{ operationalSubscription {{ id receiverId eventTypes }} }} }}",
                types.join(", ")
            ),
            serde_json::json!({"r": id}),
        )
        .await;
    let sub = &data["createOperationalSubscription"]["operationalSubscription"];
    assert_eq!(sub["receiverId"], id.as_str());
    assert_eq!(
        sub["eventTypes"].as_array().map(Vec::len),
        Some(types.len())
    );
    (id, secret)
}

/// Operational events of `kind` that reached `sink`.
pub(crate) fn of_type(
    sink: &changewire_test_support::receiver::TestReceiver,
    kind: &str,
) -> Vec<changewire_test_support::receiver::Received> {
    sink.received()
        .into_iter()
        .filter(|r| r.json()["type"] == kind)
        .collect()
}
