//! Bearer tokens: no token → 401; a viewer key reads but cannot write;
//! `createdBy` names the key; revoked keys stop working.

use changewire_gateway::testing::{generate_api_token, hash_token};
use changewire_test_support::Backend;
use changewire_test_support::gateway::TestGateway;
use serde_json::json;

async fn key(gw: &TestGateway, name: &str, role: &str) -> (i64, String) {
    let token = generate_api_token();
    let row = gw
        .gw()
        .store
        .insert_api_key(name, role, &hash_token(token.expose()), "cw_")
        .await
        .unwrap();
    (row.id, token.expose().to_string())
}

const CREATE: &str = "mutation($i: CreateWebhookReceiverInput!) { createWebhookReceiver(input: $i) { webhookReceiver { id createdBy { id name } } } }";

async fn tokens_and_roles(backend: Backend) {
    let gw = TestGateway::start(backend, "").await;
    let list = "{ webhookReceivers { edges { node { id } } } }";

    let (status, body) = gw.graphql_as(None, list, json!({})).await;
    assert_eq!(status, 401);
    assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
    let (status, _) = gw.graphql_as(Some("wrong-token"), list, json!({})).await;
    assert_eq!(status, 401);

    let (_, viewer) = key(&gw, "dashboards", "viewer").await;
    let (status, body) = gw.graphql_as(Some(&viewer), list, json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("errors").is_none());
    let input = json!({"i": {"name": "x", "webhookUri": "https://hooks.example.com/h"}});
    let (_, body) = gw.graphql_as(Some(&viewer), CREATE, input.clone()).await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{body}"
    );
    assert_eq!(
        gw.gw().store.receiver_count().await.unwrap(),
        0,
        "nothing changed"
    );

    let (admin_id, admin) = key(&gw, "ci-pipeline", "admin").await;
    let (_, body) = gw.graphql_as(Some(&admin), CREATE, input).await;
    assert_eq!(
        body["data"]["createWebhookReceiver"]["webhookReceiver"]["createdBy"],
        json!({"id": format!("key:{admin_id}"), "name": "ci-pipeline"})
    );

    assert!(gw.gw().store.revoke_api_key(admin_id).await.unwrap());
    let (status, _) = gw.graphql_as(Some(&admin), list, json!({})).await;
    assert_eq!(status, 401);

    // Ingest needs an admin token too.
    let r = changewire_test_support::http::request(
        "POST",
        &format!("{}/v1/events", gw.base()),
        &[
            ("authorization", &format!("Bearer {viewer}")),
            ("content-type", "application/json"),
        ],
        Some(br#"{"resource":"RUNS","action":"CREATE","id":1,"new":{"a":1}}"#.to_vec()),
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.body);
}

both_backends! {
    tokens => tokens_and_roles,
}
