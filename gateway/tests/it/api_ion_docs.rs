//! Every GraphQL document in `../shared/reference/` that uses the
//! `CreateWebhookReceiverInput` family of names runs unchanged and gets the
//! answer the docs describe. The documents are read from the reference files
//! at test time (nothing is copied into this repository).

use changewire_test_support::Backend;
use changewire_test_support::gateway::TestGateway;
use serde_json::{Value, json};

fn reference_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/reference")
}

/// A document and the JSON input that follows it in the docs, if any.
#[derive(Debug, Clone)]
struct Doc {
    text: String,
    input: Option<Value>,
}

/// Extracts `{…}` blocks (balanced) that start a line with `mutation`,
/// `query` or `{`; JSON blocks (starting with `"input"`) become the input of
/// the document before them.
fn extract(text: &str) -> Vec<Doc> {
    let bytes = text.as_bytes();
    let mut docs: Vec<Doc> = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if !text.is_char_boundary(i) {
            i += 1;
            continue;
        }
        let line_start = i == 0 || bytes[i - 1] == b'\n';
        let rest = &text[i..];
        let starts_doc = line_start
            && (rest.starts_with("mutation") || rest.starts_with("query") || rest.starts_with('{'));
        if !starts_doc {
            i += 1;
            continue;
        }
        let Some(open) = rest.find('{') else { break };
        let mut depth = 0usize;
        let mut end = None;
        for (j, c) in rest[open..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = Some(open + j + 1);
                        break;
                    }
                }
                _ => {}
            }
        }
        let Some(end) = end else { break };
        let block = &rest[..end];
        let is_json = block.trim_start_matches('{').trim_start().starts_with('"');
        if is_json {
            if let (Ok(v), Some(last)) = (serde_json::from_str::<Value>(block), docs.last_mut()) {
                last.input = Some(v);
            }
        } else {
            docs.push(Doc {
                text: block.to_string(),
                input: None,
            });
        }
        i += end;
    }
    docs
}

fn load_reference() -> Option<Vec<Doc>> {
    let dir = reference_dir();
    if !dir.exists() {
        eprintln!(
            "skipping: {} not found (CI provides ../shared)",
            dir.display()
        );
        return None;
    }
    let mut docs = Vec::new();
    for name in [
        "ion-webhooks-guide.txt",
        "violet-ion-webhook-setup.md",
        "ion-webhooks-reference.txt",
    ] {
        let text = std::fs::read_to_string(dir.join(name)).expect("reference file");
        docs.extend(extract(&text));
    }
    // Only the CreateWebhookReceiverInput family of names (the reference page's
    // first two examples use other input type names; see README).
    docs.retain(|d| {
        !d.text.contains("WebhookReceiverInput!")
            || d.text.contains("CreateWebhookReceiverInput!")
            || d.text.contains("UpdateWebhookReceiverInput!")
    });
    docs.retain(|d| !d.text.contains("($input: WebhookSubscriptionInput!)"));
    Some(docs)
}

fn find<'a>(docs: &'a [Doc], needle: &str) -> &'a Doc {
    docs.iter()
        .find(|d| d.text.contains(needle))
        .unwrap_or_else(|| panic!("no reference document contains `{needle}`"))
}

fn code(response: &Value) -> Option<&str> {
    response["errors"][0]["extensions"]["code"].as_str()
}

async fn ion_documents_run_unchanged(backend: Backend) {
    let Some(docs) = load_reference() else { return };
    assert!(
        docs.len() >= 7,
        "expected the guide's and Violet's documents, found {}",
        docs.len()
    );
    let gw = TestGateway::start(backend, "").await;

    // 1. Create a receiver exactly as the guide shows it.
    let create = find(
        &docs,
        "mutation CreateWebhookReceiver($input: CreateWebhookReceiverInput!)",
    );
    let input = create.input.clone().expect("the guide gives an input");
    let r1 = gw.graphql(&create.text, input.clone()).await;
    let receiver = &r1["createWebhookReceiver"]["webhookReceiver"];
    assert_eq!(receiver["id"], "1");
    assert_eq!(receiver["name"], input["input"]["name"]);
    assert_eq!(receiver["webhookUri"], input["input"]["webhookUri"]);
    assert_eq!(receiver["contentType"], "json");
    assert_eq!(receiver["expectedResponseCode"], 200);
    assert_eq!(receiver["active"], true);
    assert_eq!(receiver["subscriptions"], json!([]));
    assert_eq!(receiver["headers"], json!([]));
    let secret = receiver["sharedSecret"].as_str().unwrap();
    assert!(
        secret.starts_with("whsec_") && secret.len() > 40,
        "full secret at creation: {secret}"
    );

    // Violet's copy of the same document, with its placeholder URL: refused, naming the field.
    let violet_create = docs
        .iter()
        .filter(|d| d.text.contains("CreateWebhookReceiver("))
        .find(|d| {
            d.input
                .as_ref()
                .is_some_and(|i| i["input"]["name"] == "Violet")
        })
        .expect("Violet's create document");
    let refused = gw
        .graphql_raw(&violet_create.text, violet_create.input.clone().unwrap())
        .await;
    assert_eq!(code(&refused), Some("BAD_USER_INPUT"), "{refused}");
    assert_eq!(
        refused["errors"][0]["extensions"]["field"],
        "input.webhookUri"
    );
    // ...and with a real URL, it creates receiver 2 (the id Violet's bulk mutation uses).
    let mut violet_input = violet_create.input.clone().unwrap();
    violet_input["input"]["webhookUri"] = json!("https://hooks.violet.example/ion/abc");
    let r2 = gw.graphql(&violet_create.text, violet_input).await;
    assert_eq!(r2["createWebhookReceiver"]["webhookReceiver"]["id"], "2");

    // 2. Subscribe receiver 1 to new runs (receiverId given as a number).
    let subscribe = find(
        &docs,
        "mutation CreateWebhookSubscription($input: CreateWebhookSubscriptionInput!)",
    );
    let s = gw
        .graphql(&subscribe.text, subscribe.input.clone().expect("input"))
        .await;
    let sub = &s["createWebhookSubscription"]["webhookSubscription"];
    assert_eq!(sub["resource"], "RUNS");
    assert_eq!(sub["action"], "CREATE");
    assert_eq!(sub["active"], true);
    assert_eq!(sub["receiverId"], "1");
    assert_eq!(sub["events"], json!([]));

    // 3. Violet's aliased bulk mutation (receiverId as a string literal): every alias succeeds.
    let bulk = find(&docs, "abomUpdate: createWebhookSubscription");
    let b = gw.graphql(&bulk.text, json!({})).await;
    let aliases = b.as_object().unwrap();
    assert!(aliases.len() >= 30, "{} aliases", aliases.len());
    for (alias, value) in aliases {
        let node = &value["webhookSubscription"];
        assert!(
            node["id"].as_str().is_some() && node["_etag"].as_str().is_some(),
            "{alias}: {value}"
        );
    }

    // 4. List receivers: secrets are masked after creation.
    let list = find(&docs, "webhookReceivers {");
    let l = gw.graphql(&list.text, json!({})).await;
    let edges = l["webhookReceivers"]["edges"].as_array().unwrap();
    assert_eq!(edges.len(), 2);
    for e in edges {
        let masked = e["node"]["sharedSecret"].as_str().unwrap();
        assert!(
            masked.contains("********") && !masked.contains(&secret[6..20]),
            "{masked}"
        );
        assert!(e["node"]["_etag"].as_str().is_some());
    }

    // 5. List subscriptions with their receivers and creators.
    let subs = find(&docs, "webhookSubscriptions {");
    let sl = gw.graphql(&subs.text, json!({})).await;
    let sedges = sl["webhookSubscriptions"]["edges"].as_array().unwrap();
    assert_eq!(sedges.len(), 1 + aliases.len());
    let first = &sedges[0]["node"];
    assert_eq!(first["createdBy"], json!({"id": "admin", "name": "admin"}));
    assert_eq!(first["receiver"]["id"], "1");
    assert_eq!(
        first["receiver"]["webhookUri"],
        input["input"]["webhookUri"]
    );

    // 6. Disable the receiver with the docs' own input: receiver 12 does not exist.
    let disable = find(
        &docs,
        "mutation UpdateWebhookReceiver($input: UpdateWebhookReceiverInput!)",
    );
    let missing = gw
        .graphql_raw(&disable.text, disable.input.clone().unwrap())
        .await;
    assert_eq!(code(&missing), Some("NOT_FOUND"), "{missing}");
    // With receiver 1 and a stale etag: CONFLICT, nothing changed.
    let mut stale = disable.input.clone().unwrap();
    stale["input"]["id"] = json!(1);
    let conflict = gw.graphql_raw(&disable.text, stale.clone()).await;
    assert_eq!(code(&conflict), Some("CONFLICT"), "{conflict}");
    // With the current etag: disabled.
    let etag = edges[0]["node"]["_etag"].as_str().unwrap();
    stale["input"]["etag"] = json!(etag);
    let d = gw.graphql(&disable.text, stale).await;
    let updated = &d["updateWebhookReceiver"]["webhookReceiver"];
    assert_eq!(updated["active"], false);
    assert_ne!(updated["_etag"], etag);
    assert_eq!(updated["subscriptions"][0]["resource"], "RUNS");

    // 7. Disable a subscription the same way (by its real id and etag).
    let disable_sub = find(
        &docs,
        "mutation UpdateWebhookSubscription($input: UpdateWebhookSubscriptionInput!)",
    );
    let mut sub_input = disable_sub.input.clone().unwrap();
    sub_input["input"]["id"] = first["id"].clone();
    sub_input["input"]["etag"] = first["_etag"].clone();
    let ds = gw.graphql(&disable_sub.text, sub_input).await;
    assert_eq!(
        ds["updateWebhookSubscription"]["webhookSubscription"]["active"],
        false
    );
    assert_eq!(
        ds["updateWebhookSubscription"]["webhookSubscription"]["receiver"]["id"],
        "1"
    );

    // 8. The failed-events query with an `Int!` subscription id.
    let failed = find(&docs, "query FailedEvents($subscriptionId: Int!)");
    let f = gw.graphql(&failed.text, json!({"subscriptionId": 1})).await;
    assert_eq!(f["webhookEvents"], json!([]));
}

both_backends! {
    ion_documents => ion_documents_run_unchanged,
}

#[test]
fn extraction_finds_the_documents_and_their_inputs() {
    let text = "intro\nmutation A($input: X!) {\n  a(input: $input) { b }\n}\n\n# Input\n{\n  \"input\": {\"k\": 1}\n}\n{\n  q { r }\n}\n";
    let docs = extract(text);
    assert_eq!(docs.len(), 2);
    assert_eq!(docs[0].input, Some(json!({"input": {"k": 1}})));
    assert!(docs[1].text.contains("q { r }"));
}
