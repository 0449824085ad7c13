//! A gateway for tests: its own store, a port of its own, an admin token,
//! loopback delivery allowed and short polling intervals.

use std::sync::Arc;

use changewire_gateway::Config;
use changewire_gateway::RunningGateway;
use serde_json::{Value, json};

use crate::Backend;
use crate::pg::TestDatabase;

/// The admin token every test gateway accepts.
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

/// A running gateway and what keeps its store alive.
pub struct TestGateway {
    /// The gateway.
    pub gateway: Option<RunningGateway>,
    /// The store URL.
    pub store_url: String,
    /// The configuration used.
    pub config: Arc<Config>,
    _db: Option<TestDatabase>,
    _dir: tempfile::TempDir,
}

/// A store for a backend (kept alive by the returned guards).
pub async fn store_for(backend: Backend) -> (String, Option<TestDatabase>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    match backend {
        Backend::Sqlite => (
            format!("sqlite://{}", dir.path().join("store.db").display()),
            None,
            dir,
        ),
        Backend::Postgres => {
            let db = TestDatabase::create().await;
            (db.url.clone(), Some(db), dir)
        }
    }
}

impl TestGateway {
    /// Starts a gateway on `backend`; `extra` is TOML merged over the test defaults.
    pub async fn start(backend: Backend, extra: &str) -> TestGateway {
        let (store_url, db, dir) = store_for(backend).await;
        Self::start_with_store(store_url, db, dir, extra).await
    }

    /// Starts a gateway on a given store URL.
    pub async fn start_with_store(
        store_url: String,
        db: Option<TestDatabase>,
        dir: tempfile::TempDir,
        extra: &str,
    ) -> TestGateway {
        let defaults = format!(
            "listen = \"127.0.0.1:0\"\nstore = \"{store_url}\"\nallow_http = true\nallow_private_networks = true\n\
             admin_token = \"{ADMIN_TOKEN}\"\n[delivery]\npoll_interval_ms = 20\nshutdown_grace_secs = 2\n"
        );
        let config = Arc::new(
            Config::from_toml_layers(&[&defaults, extra])
                .unwrap_or_else(|e| panic!("test config: {e}")),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let gateway = RunningGateway::start_on(config.clone(), listener)
            .await
            .unwrap_or_else(|e| {
                panic!("gateway start: {}", changewire_gateway::testing::Report(&e))
            });
        TestGateway {
            gateway: Some(gateway),
            store_url,
            config,
            _db: db,
            _dir: dir,
        }
    }

    /// The running gateway.
    pub fn gw(&self) -> &RunningGateway {
        self.gateway.as_ref().expect("gateway running")
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base(&self) -> String {
        format!("http://{}", self.gw().addr)
    }

    /// Runs a GraphQL document with the admin token; returns the whole response.
    pub async fn graphql_as(
        &self,
        token: Option<&str>,
        query: &str,
        variables: Value,
    ) -> (u16, Value) {
        let body = json!({ "query": query, "variables": variables }).to_string();
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut headers = vec![("content-type", "application/json")];
        if let Some(a) = &auth {
            headers.push(("authorization", a.as_str()));
        }
        let r = crate::http::request(
            "POST",
            &format!("{}/graphql", self.base()),
            &headers,
            Some(body.into_bytes()),
        )
        .await;
        (r.status, r.json())
    }

    /// Runs a GraphQL document as admin; returns the whole response.
    pub async fn graphql_raw(&self, query: &str, variables: Value) -> Value {
        self.graphql_as(Some(ADMIN_TOKEN), query, variables).await.1
    }

    /// Runs a GraphQL document as admin and returns `data`, failing on errors.
    pub async fn graphql(&self, query: &str, variables: Value) -> Value {
        let response = self.graphql_raw(query, variables).await;
        assert!(
            response.get("errors").is_none(),
            "GraphQL errors: {response:#}"
        );
        response["data"].clone()
    }

    /// Creates a receiver for `url` and subscribes it to (resource, action)
    /// pairs; returns (receiver id, shared secret).
    pub async fn receiver_with(
        &self,
        url: &str,
        subscriptions: &[(&str, &str)],
        extra_input: Value,
    ) -> (String, String) {
        let mut input = json!({ "name": "test receiver", "webhookUri": url });
        if let (Some(obj), Some(extra)) = (input.as_object_mut(), extra_input.as_object()) {
            for (k, v) in extra {
                obj.insert(k.clone(), v.clone());
            }
        }
        let data = self
            .graphql(
                "mutation($input: CreateWebhookReceiverInput!) { createWebhookReceiver(input: $input) { webhookReceiver { id sharedSecret } } }",
                json!({ "input": input }),
            )
            .await;
        let id = data["createWebhookReceiver"]["webhookReceiver"]["id"]
            .as_str()
            .expect("id")
            .to_string();
        let secret = data["createWebhookReceiver"]["webhookReceiver"]["sharedSecret"]
            .as_str()
            .expect("secret")
            .to_string();
        for (resource, action) in subscriptions {
            self.graphql(
                &format!(
                    "mutation {{ createWebhookSubscription(input: {{ receiverId: \"{id}\", resource: {resource}, action: {action} }}) {{ webhookSubscription {{ id }} }} }}"
                ),
                json!({}),
            )
            .await;
        }
        (id, secret)
    }

    /// Publishes an event through `POST /v1/events`.
    pub async fn publish(&self, event: Value) -> crate::http::Response {
        let auth = format!("Bearer {ADMIN_TOKEN}");
        crate::http::request(
            "POST",
            &format!("{}/v1/events", self.base()),
            &[
                ("content-type", "application/json"),
                ("authorization", &auth),
            ],
            Some(event.to_string().into_bytes()),
        )
        .await
    }

    /// Stops the gateway (graceful).
    pub async fn stop(&mut self) {
        if let Some(gw) = self.gateway.take() {
            gw.shutdown().await;
        }
    }
}
