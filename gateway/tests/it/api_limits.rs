//! A GraphQL document's cost (page sizes times what they select, plus
//! counts) and its root fields are bounded. A document over either limit is
//! refused before anything runs, with the numbers and the configuration
//! key in the error; documents within them run.

use changewire_test_support::Backend;
use changewire_test_support::gateway::TestGateway;
use serde_json::{Value, json};

/// The refusals of a response, asserting it is one: no data, every error
/// a `BAD_USER_INPUT`.
fn refusals(response: &Value) -> Vec<Value> {
    assert!(
        response.get("data").is_none_or(Value::is_null),
        "nothing may run: {response}"
    );
    let errors = response["errors"].as_array().cloned().unwrap_or_default();
    assert!(!errors.is_empty(), "refused: {response}");
    for e in &errors {
        assert_eq!(e["extensions"]["code"], "BAD_USER_INPUT", "{e}");
    }
    errors
}

fn aliases(n: usize, field: &str) -> String {
    let body: Vec<String> = (0..n).map(|i| format!("a{i}: {field}")).collect();
    body.join(" ")
}

async fn over_cost_documents_are_refused_with_their_cost(backend: Backend) {
    let gw = TestGateway::start(backend, "").await;

    // 300 aliases of a full page of events with their attempts: each costs
    // 500 × (id + 50 attempts × 3 fields) = 75,500.
    let doc = format!(
        "{{ {} }}",
        aliases(
            300,
            "webhookEvents(first: 500) { id attempts { attempt outcome requestBody } }"
        )
    );
    let (status, response) = gw
        .graphql_as(
            Some(changewire_test_support::gateway::ADMIN_TOKEN),
            &doc,
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{response}");
    let errors = refusals(&response);
    let cost = &errors[0];
    assert_eq!(cost["extensions"]["cost"], 300 * 75_500, "{cost}");
    assert_eq!(cost["extensions"]["limit"], 50_000, "{cost}");
    let message = cost["message"].as_str().unwrap();
    assert!(
        message.starts_with("query cost 22650000 exceeds the limit of 50000")
            && message.contains("api.max_query_complexity"),
        "{message}"
    );
    // It has too many root fields as well, and says so.
    let roots = &errors[1];
    assert_eq!(roots["extensions"]["rootFields"], 300, "{roots}");
    assert_eq!(roots["extensions"]["limit"], 64, "{roots}");

    // Nothing runs: three receivers created with a costly selection each
    // are not created.
    let input = "input: { name: \"x\", webhookUri: \"https://hooks.example.com/h\" }";
    let doc = format!(
        "mutation {{ {} }}",
        aliases(
            3,
            &format!(
                "createWebhookReceiver({input}) {{ webhookReceiver {{ events(first: 500) {{ id attempts {{ outcome }} }} }} }}"
            )
        )
    );
    let errors = refusals(&gw.graphql_raw(&doc, json!({})).await);
    // Per alias: the mutation field (1), webhookReceiver (1), events (500 × 51).
    assert_eq!(errors[0]["extensions"]["cost"], 3 * (2 + 500 * 51));
    assert_eq!(errors.len(), 1, "3 root fields are within the limit");
    assert_eq!(gw.gw().store.receiver_count().await.unwrap(), 0);
}

async fn too_many_root_fields_are_refused_naming_the_cap(backend: Backend) {
    let gw = TestGateway::start(backend, "").await;
    let input = "input: { name: \"x\", webhookUri: \"https://hooks.example.com/h\" }";
    let create = format!("createWebhookReceiver({input}) {{ webhookReceiver {{ id }} }}");

    // 65 cheap creations: refused on their number alone, none created.
    let errors = refusals(
        &gw.graphql_raw(
            &format!("mutation {{ {} }}", aliases(65, &create)),
            json!({}),
        )
        .await,
    );
    assert_eq!(errors.len(), 1, "{errors:?}");
    let message = errors[0]["message"].as_str().unwrap();
    assert!(
        message.starts_with("the operation has 65 root fields")
            && message.contains("the limit is 64 (`api.max_root_fields`)"),
        "{message}"
    );
    assert_eq!(errors[0]["extensions"]["rootFields"], 65);
    assert_eq!(gw.gw().store.receiver_count().await.unwrap(), 0);

    // Fields brought in by fragments count too.
    let doc = format!(
        "{{ ...F resources {{ name }} }} fragment F on QueryRoot {{ {} }}",
        aliases(64, "resources { name }")
    );
    let errors = refusals(&gw.graphql_raw(&doc, json!({})).await);
    assert_eq!(errors[0]["extensions"]["rootFields"], 65);

    // 64 run.
    let data = gw
        .graphql(
            &format!("mutation {{ {} }}", aliases(64, &create)),
            json!({}),
        )
        .await;
    assert_eq!(data.as_object().unwrap().len(), 64);
    assert_eq!(gw.gw().store.receiver_count().await.unwrap(), 64);

    // The cap is the configured one.
    let small = TestGateway::start(backend, "[api]\nmax_root_fields = 2").await;
    let errors = refusals(
        &small
            .graphql_raw(
                "{ a: resources { name } b: resources { name } c: resources { name } }",
                json!({}),
            )
            .await,
    );
    assert!(
        errors[0]["message"]
            .as_str()
            .unwrap()
            .contains("3 root fields (each alias counts); the limit is 2"),
        "{errors:?}"
    );
}

async fn documents_within_the_budget_run(backend: Backend) {
    let gw = TestGateway::start(backend, "").await;
    for i in 0..3 {
        gw.receiver_with(
            &format!("https://hooks.example.com/{i}"),
            &[("RUNS", "CREATE")],
            json!({}),
        )
        .await;
    }
    // Paging through receivers two at a time, with counts and subscriptions.
    let q = "query($after: String) { webhookReceivers(first: 2, after: $after) { totalCount \
             pageInfo { hasNextPage endCursor } edges { node { id name subscriptions { resource action } } } } }";
    let first = gw.graphql(q, json!({})).await;
    let page = &first["webhookReceivers"];
    assert_eq!(page["totalCount"], 3);
    assert_eq!(page["edges"].as_array().unwrap().len(), 2);
    assert_eq!(
        page["edges"][0]["node"]["subscriptions"][0]["resource"],
        "RUNS"
    );
    let after = page["pageInfo"]["endCursor"].clone();
    let second = gw.graphql(q, json!({ "after": after })).await;
    assert_eq!(
        second["webhookReceivers"]["edges"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(second["webhookReceivers"]["pageInfo"]["hasNextPage"], false);

    // The plugin list is paged too (it had no page size, so no bound).
    let plugins = gw
        .graphql("{ webhookPlugins(first: 10) { name } }", json!({}))
        .await;
    assert_eq!(plugins["webhookPlugins"], json!([]));

    // A full page of events with every field, and 100 events with their attempts.
    let every_field = "{ webhookEvents(first: 500) { id status occurredAt requestData responseStatus \
                       responseData subscriptionId receiverId resource action rowId transactionId \
                       attemptCount nextAttemptAt lastError createdAt completedAt } }";
    assert_eq!(
        gw.graphql(every_field, json!({})).await["webhookEvents"],
        json!([])
    );
    let with_attempts = "{ webhookEvents { id status attempts { attempt responseStatus errorClass error \
                         requestHeaders outcome } } }";
    assert_eq!(
        gw.graphql(with_attempts, json!({})).await["webhookEvents"],
        json!([])
    );
}

async fn cost_grows_with_first(backend: Backend) {
    // A limit of 1,000: 19 events with their attempts (19 × 51 = 969) fit, 20 do not.
    let gw = TestGateway::start(backend, "[api]\nmax_query_complexity = 1000").await;
    let q = "query($n: Int!) { webhookEvents(first: $n) { id attempts { outcome } } }";
    let ok = gw.graphql_raw(q, json!({ "n": 19 })).await;
    assert!(ok.get("errors").is_none(), "{ok}");
    for (n, cost) in [(20, 1020), (40, 2040), (400, 20400)] {
        let errors = refusals(&gw.graphql_raw(q, json!({ "n": n })).await);
        assert_eq!(errors[0]["extensions"]["cost"], cost, "first: {n}");
        let message = errors[0]["message"].as_str().unwrap();
        assert!(
            message.starts_with(&format!("query cost {cost} exceeds the limit of 1000")),
            "{message}"
        );
    }
}

both_backends! {
    over_cost => over_cost_documents_are_refused_with_their_cost,
    root_fields => too_many_root_fields_are_refused_naming_the_cap,
    within_budget => documents_within_the_budget_run,
    cost_and_first => cost_grows_with_first,
}
