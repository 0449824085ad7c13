//! Plugins end to end: each example through a real delivery, every hostile
//! fixture failing only its own delivery, hot swap while deliveries flow.

use std::time::Duration;

use base64::Engine as _;
use changewire_core::{Scheme, VerifyOptions, verify_request};
use changewire_plugin_artifacts as artifacts;
use changewire_test_support::gateway::TestGateway;
use changewire_test_support::receiver::TestReceiver;
use changewire_test_support::{Backend, eventually};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(20);
const ATTACH: &str = "mutation($i: AttachWebhookPluginInput!) { attachWebhookPlugin(input: $i) { plugin { receiverId name sha256 size config } } }";

macro_rules! assert_test_exists {
    ($name:ident) => {
        #[allow(unused_imports)]
        use self::$name as _;
    };
}
changewire_plugin_artifacts::foreach_plugin!(assert_test_exists);

fn wasm(path: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(std::fs::read(path).expect("plugin artifact"))
}

async fn attach(gw: &TestGateway, receiver: &str, path: &str, config: Value) -> Value {
    gw.graphql(ATTACH, json!({"i": {"receiverId": receiver, "wasm": wasm(path), "config": config, "name": "under-test"}})).await
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

async fn statuses(gw: &TestGateway, receiver: &str) -> Vec<(String, Option<String>)> {
    let r: i64 = receiver.parse().unwrap();
    gw.graphql(
        "query($r: Int) { webhookEvents(filters: { receiverId: $r }) { status lastError } }",
        json!({"r": r}),
    )
    .await["webhookEvents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["status"].as_str().unwrap().to_string(),
                e["lastError"].as_str().map(str::to_string),
            )
        })
        .collect()
}

/// The audit trail of a receiver's only event: the body the API shows as
/// sent, and the body the attempt row stores (`None`: rendered again from
/// the change when shown).
async fn audited_body(gw: &TestGateway, receiver: &str) -> (String, Option<String>) {
    let r: i64 = receiver.parse().unwrap();
    let ev = eventually("the attempt is recorded", WAIT, || async {
        let evs = gw
            .graphql(
                "query($r: Int) { webhookEvents(filters: { receiverId: $r }) { id status requestData } }",
                json!({"r": r}),
            )
            .await["webhookEvents"]
            .clone();
        evs.as_array()
            .and_then(|evs| evs.first())
            .filter(|e| e["status"] == "succeeded")
            .cloned()
    })
    .await;
    let id = changewire_gateway::testing::DeliveryId(
        ev["id"]
            .as_str()
            .map_or_else(|| ev["id"].as_i64().unwrap(), |s| s.parse().unwrap()),
    );
    let attempts = gw.gw().store.attempts(id).await.unwrap();
    (
        ev["requestData"].as_str().unwrap().to_string(),
        attempts[0].record.request_body.clone(),
    )
}

fn run(id: i64, status: &str) -> Value {
    json!({"resource": "RUNS", "action": "UPDATE", "id": id, "old": {"status": "in_progress"},
           "new": {"status": status, "email": "ada@example.com", "operator": {"phone": "+1 555"}}})
}

async fn filter_by_field_case(backend: Backend) {
    let gw = TestGateway::start(backend, "").await;
    let sink = TestReceiver::start().await;
    let (rid, _) = gw
        .receiver_with(&sink.url(), &[("RUNS", "UPDATE")], json!({}))
        .await;
    let attached = attach(
        &gw,
        &rid,
        artifacts::FILTER_BY_FIELD,
        json!({"path": "data.new.status", "equals": "complete"}),
    )
    .await;
    assert_eq!(
        attached["attachWebhookPlugin"]["plugin"]["name"],
        "under-test"
    );
    gw.publish(run(1, "kitted")).await;
    gw.publish(run(2, "complete")).await;
    let got = sink.wait_for(1, WAIT).await;
    assert_eq!(
        got[0].json()["data"]["id"],
        2,
        "only the run that became complete"
    );
    let s = eventually("one filtered", WAIT, || async {
        let s = statuses(&gw, &rid).await;
        (s.len() == 2 && s.iter().all(|(st, _)| st != "pending")).then_some(s)
    })
    .await;
    let filtered = s
        .iter()
        .find(|(st, _)| st == "filtered")
        .expect("a filtered event, not lost");
    assert!(
        filtered
            .1
            .as_deref()
            .unwrap_or("")
            .contains("data.new.status is \"kitted\""),
        "{s:?}"
    );
    assert_eq!(sink.count(), 1);
}

async fn redact_fields_case(backend: Backend) {
    let gw = TestGateway::start(backend, "").await;
    let sink = TestReceiver::start().await;
    let (rid, secret) = gw
        .receiver_with(
            &sink.url(),
            &[("RUNS", "UPDATE")],
            json!({"signatureSchemes": ["ION", "STANDARD"]}),
        )
        .await;
    attach(
        &gw,
        &rid,
        artifacts::REDACT_FIELDS,
        json!({"fields": ["email", "operator.phone"]}),
    )
    .await;
    gw.publish(run(1, "complete")).await;
    let req = &sink.wait_for(1, WAIT).await[0];
    let body = req.json();
    assert_ne!(body["data"]["new"]["email"], "ada@example.com", "{body}");
    assert_ne!(body["data"]["new"]["operator"]["phone"], "+1 555", "{body}");
    assert_eq!(body["data"]["new"]["status"], "complete");
    // The audit trail keeps the body the plugin made: the change cannot render it.
    let (shown, stored) = audited_body(&gw, &rid).await;
    assert_eq!(shown.as_bytes(), &req.body[..]);
    assert_eq!(stored.as_deref().map(str::as_bytes), Some(&req.body[..]));
    // Both signatures cover the body actually sent (after the plugin).
    for scheme in [Scheme::Ion, Scheme::Standard] {
        let opts = VerifyOptions {
            require: Some(scheme),
            ..Default::default()
        };
        verify_request(
            &secret,
            &sink.url(),
            &req.body,
            &req.headers,
            now_secs(),
            &opts,
        )
        .unwrap();
    }
}

async fn slack_format_case(backend: Backend) {
    let gw = TestGateway::start(backend, "").await;
    let sink = TestReceiver::start().await;
    let (rid, secret) = gw
        .receiver_with(
            &sink.url(),
            &[("RUNS", "UPDATE")],
            json!({"signatureSchemes": ["ION", "STANDARD"]}),
        )
        .await;
    attach(
        &gw,
        &rid,
        artifacts::SLACK_FORMAT,
        json!({"prefix": "[ION] "}),
    )
    .await;
    gw.publish(run(42, "complete")).await;
    let req = &sink.wait_for(1, WAIT).await[0];
    let text = req.json()["text"]
        .as_str()
        .expect("a Slack message")
        .to_string();
    assert!(text.starts_with("[ION] runs 42"), "{text}");
    // No `data`: no ION signature; the Standard Webhooks one covers the body.
    assert_eq!(req.header("x-ion-signature"), None);
    let opts = VerifyOptions {
        require: Some(Scheme::Standard),
        ..Default::default()
    };
    verify_request(
        &secret,
        &sink.url(),
        &req.body,
        &req.headers,
        now_secs(),
        &opts,
    )
    .unwrap();
}

async fn add_header_case(backend: Backend) {
    let gw = TestGateway::start(backend, "").await;
    let sink = TestReceiver::start().await;
    let (rid, secret) = gw
        .receiver_with(
            &sink.url(),
            &[("RUNS", "UPDATE")],
            json!({"headers": [{"key": "X-Team", "value": "custom"}]}),
        )
        .await;
    attach(
        &gw,
        &rid,
        artifacts::ADD_HEADER,
        json!({"headers": {"x-team": "payments", "x-source": "changewire"}}),
    )
    .await;
    gw.publish(run(1, "complete")).await;
    let req = &sink.wait_for(1, WAIT).await[0];
    assert_eq!(req.header("x-source"), Some("changewire"));
    let teams: Vec<&str> = req
        .headers
        .iter()
        .filter(|(k, _)| k == "x-team")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(
        teams,
        ["payments"],
        "the plugin's header wins over the custom one"
    );
    // Headers only: the body sent is the one the change renders, so the
    // audit trail shows it without storing it a second time.
    let (shown, stored) = audited_body(&gw, &rid).await;
    assert_eq!(shown.as_bytes(), &req.body[..]);
    assert_eq!(stored, None);
    verify_request(
        &secret,
        &sink.url(),
        &req.body,
        &req.headers,
        now_secs(),
        &VerifyOptions::default(),
    )
    .unwrap();
}

/// A hostile plugin fails its own deliveries with a recorded reason; another
/// receiver, and the gateway, keep working.
async fn hostile(backend: Backend, path: &str, config: Value, expect_in_reason: &str) {
    let gw = TestGateway::start(
        backend,
        "[plugins]\ntime_limit_ms = 200\nmemory_limit_bytes = 16777216",
    )
    .await;
    let bad_sink = TestReceiver::start().await;
    let good_sink = TestReceiver::start().await;
    let (bad, _) = gw
        .receiver_with(&bad_sink.url(), &[("RUNS", "UPDATE")], json!({}))
        .await;
    gw.receiver_with(&good_sink.url(), &[("RUNS", "UPDATE")], json!({}))
        .await;
    attach(&gw, &bad, path, config).await;
    for i in 0..3 {
        gw.publish(run(i, "complete")).await;
    }
    good_sink.wait_for(3, WAIT).await;
    let s = eventually("hostile deliveries finished", WAIT, || async {
        let s = statuses(&gw, &bad).await;
        (s.len() == 3 && s.iter().all(|(st, _)| st == "plugin_error")).then_some(s)
    })
    .await;
    assert!(
        s[0].1.as_deref().unwrap_or("").contains(expect_in_reason),
        "{expect_in_reason} not in {s:?}"
    );
    assert_eq!(bad_sink.count(), 0);
    // Metrics count it.
    let metrics =
        changewire_test_support::http::request("GET", &format!("{}/metrics", gw.base()), &[], None)
            .await
            .body;
    assert!(
        metrics.contains("changewire_plugin_calls_total"),
        "plugin calls are counted"
    );
}

/// A plugin failing on a delivery, and one that does not load, are
/// reported to operators (`plugin.failed`).
async fn failing_plugins_are_reported(backend: Backend) {
    let gw = TestGateway::start(backend, "[plugins]\ntime_limit_ms = 100").await;
    let ops = TestReceiver::start().await;
    crate::operator(&gw, &ops, &["PLUGIN_FAILED"]).await;
    let sink = TestReceiver::start().await;
    let (rid, _) = gw
        .receiver_with(&sink.url(), &[("RUNS", "UPDATE")], json!({"name": "erp"}))
        .await;
    attach(&gw, &rid, artifacts::HOSTILE_PANIC, json!({})).await;
    gw.publish(run(5, "complete")).await;
    let event = eventually("plugin.failed", WAIT, || async {
        crate::of_type(&ops, "plugin.failed").into_iter().next()
    })
    .await;
    let body = event.json();
    assert_eq!(body["data"]["receiverId"], rid.as_str(), "{body}");
    assert_eq!(body["data"]["receiverName"], "erp");
    assert!(body["data"]["lastError"].as_str().is_some(), "{body}");
    assert_eq!(sink.count(), 0);
}

async fn deliver_original_on_failure(backend: Backend) {
    let gw = TestGateway::start(backend, "[plugins]\ntime_limit_ms = 100").await;
    let sink = TestReceiver::start().await;
    let (rid, secret) = gw
        .receiver_with(
            &sink.url(),
            &[("RUNS", "UPDATE")],
            json!({"pluginFailureMode": "DELIVER_ORIGINAL"}),
        )
        .await;
    attach(&gw, &rid, artifacts::HOSTILE_PANIC, json!({})).await;
    gw.publish(run(5, "complete")).await;
    let req = &sink.wait_for(1, WAIT).await[0];
    assert_eq!(req.json()["data"]["id"], 5, "the untransformed body");
    verify_request(
        &secret,
        &sink.url(),
        &req.body,
        &req.headers,
        now_secs(),
        &VerifyOptions::default(),
    )
    .unwrap();
}

async fn hot_swap_while_flowing(backend: Backend) {
    let gw = TestGateway::start(backend, "").await;
    let sink = TestReceiver::start().await;
    let (rid, _) = gw
        .receiver_with(
            &sink.url(),
            &[("RUNS", "UPDATE")],
            json!({"maxConcurrency": 8}),
        )
        .await;
    attach(
        &gw,
        &rid,
        artifacts::ADD_HEADER,
        json!({"headers": {"x-version": "a"}}),
    )
    .await;
    let publisher = async {
        for i in 0..200 {
            gw.publish(run(i, "complete")).await;
        }
    };
    let swapper = async {
        tokio::time::sleep(Duration::from_millis(150)).await;
        attach(
            &gw,
            &rid,
            artifacts::ADD_HEADER,
            json!({"headers": {"x-version": "b"}}),
        )
        .await;
    };
    tokio::join!(publisher, swapper);
    let got = sink.wait_for(200, WAIT).await;
    let versions: Vec<Vec<&str>> = got
        .iter()
        .map(|r| {
            r.headers
                .iter()
                .filter(|(k, _)| k == "x-version")
                .map(|(_, v)| v.as_str())
                .collect()
        })
        .collect();
    assert!(
        versions
            .iter()
            .all(|v| v.len() == 1 && (v[0] == "a" || v[0] == "b")),
        "each delivery saw exactly one plugin: {versions:?}"
    );
    let mut ids: Vec<i64> = got
        .iter()
        .map(|r| r.json()["data"]["id"].as_i64().unwrap())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 200, "none lost");
    assert!(
        versions.iter().any(|v| v[0] == "b"),
        "the new plugin took over"
    );
    gw.publish(run(999, "complete")).await;
    let last = sink.wait_for(201, WAIT).await;
    assert_eq!(
        last.iter()
            .find(|r| r.json()["data"]["id"] == 999)
            .unwrap()
            .header("x-version"),
        Some("b")
    );
    // Detach: untransformed again.
    gw.graphql(
        "mutation($r: ID!) { detachWebhookPlugin(input: { receiverId: $r }) { detached } }",
        json!({"r": rid}),
    )
    .await;
    gw.publish(run(1000, "complete")).await;
    let after = sink.wait_for(202, WAIT).await;
    assert_eq!(
        after
            .iter()
            .find(|r| r.json()["data"]["id"] == 1000)
            .unwrap()
            .header("x-version"),
        None
    );
}

async fn refused(backend: Backend, path: &str, needle: &str) {
    let gw = TestGateway::start(backend, "").await;
    let (rid, _) = gw
        .receiver_with("https://hooks.example.com/h", &[], json!({}))
        .await;
    let r = gw
        .graphql_raw(
            ATTACH,
            json!({"i": {"receiverId": rid, "wasm": wasm(path)}}),
        )
        .await;
    assert_eq!(
        r["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{r}"
    );
    assert_eq!(r["errors"][0]["extensions"]["field"], "input.wasm");
    assert!(
        r["errors"][0]["message"].as_str().unwrap().contains(needle),
        "{needle}: {r}"
    );
    let listed = gw
        .graphql("{ webhookPlugins { receiverId } }", json!({}))
        .await;
    assert_eq!(listed["webhookPlugins"], json!([]), "nothing was attached");
}
async fn core_module(backend: Backend) {
    refused(backend, artifacts::HOSTILE_CORE_MODULE, "component").await;
}
async fn no_transformer(backend: Backend) {
    refused(backend, artifacts::HOSTILE_NO_TRANSFORMER, "transformer").await;
}
async fn forbidden_import(backend: Backend) {
    refused(backend, artifacts::HOSTILE_FORBIDDEN_IMPORT, "wasi:clocks").await;
}
async fn future_version(backend: Backend) {
    // Built against a later minor version of the interface: it loads and runs.
    let gw = TestGateway::start(backend, "").await;
    let sink = TestReceiver::start().await;
    let (rid, _) = gw
        .receiver_with(&sink.url(), &[("RUNS", "UPDATE")], json!({}))
        .await;
    attach(&gw, &rid, artifacts::HOSTILE_FUTURE_VERSION, json!({})).await;
    gw.publish(run(1, "complete")).await;
    sink.wait_for(1, WAIT).await;
}
async fn loop_forever(backend: Backend) {
    hostile(
        backend,
        artifacts::HOSTILE_LOOP_FOREVER,
        json!({}),
        "time limit",
    )
    .await;
}
async fn alloc_unbounded(backend: Backend) {
    hostile(
        backend,
        artifacts::HOSTILE_ALLOC_UNBOUNDED,
        json!({}),
        "memory",
    )
    .await;
}
async fn two_memories(backend: Backend) {
    // The gateway's cap is 16 MiB (256 pages): two memories of 155 pages
    // each are over it together, though each is under it.
    hostile(
        backend,
        artifacts::HOSTILE_TWO_MEMORIES,
        json!({"grow": [154, 2]}),
        "memory limit",
    )
    .await;
}
async fn stack_overflow(backend: Backend) {
    hostile(
        backend,
        artifacts::HOSTILE_STACK_OVERFLOW,
        json!({}),
        "trapped",
    )
    .await;
}
async fn panic(backend: Backend) {
    hostile(backend, artifacts::HOSTILE_PANIC, json!({}), "panicked").await;
}
async fn unreachable(backend: Backend) {
    hostile(
        backend,
        artifacts::HOSTILE_UNREACHABLE,
        json!({}),
        "unreachable",
    )
    .await;
}
async fn huge_output(backend: Backend) {
    // 8 MB fits the 16 MiB memory cap but not the 4 MiB output cap.
    hostile(
        backend,
        artifacts::HOSTILE_HUGE_OUTPUT,
        json!({"bytes": 8_000_000}),
        "output",
    )
    .await;
    // 100 MB runs out of memory first.
    hostile(
        backend,
        artifacts::HOSTILE_HUGE_OUTPUT,
        json!({}),
        "memory limit",
    )
    .await;
}
async fn garbage_output(backend: Backend) {
    for kind in [
        "not-json",
        "crlf-value",
        "bad-name",
        "content-type",
        "signature",
    ] {
        hostile(
            backend,
            artifacts::HOSTILE_GARBAGE_OUTPUT,
            json!({"kind": kind}),
            "",
        )
        .await;
    }
}
async fn print_stdout(backend: Backend) {
    hostile(
        backend,
        artifacts::HOSTILE_PRINT_STDOUT,
        json!({}),
        "wasi:cli/stdout",
    )
    .await;
}
async fn stateful_counter(backend: Backend) {
    // Instances are reused: the counter the plugin keeps grows across calls.
    let gw = TestGateway::start(backend, "").await;
    let sink = TestReceiver::start().await;
    let (rid, _) = gw
        .receiver_with(
            &sink.url(),
            &[("RUNS", "UPDATE")],
            json!({"maxConcurrency": 1}),
        )
        .await;
    attach(&gw, &rid, artifacts::HOSTILE_STATEFUL_COUNTER, json!({})).await;
    for i in 0..5 {
        gw.publish(run(i, "complete")).await;
    }
    let got = sink.wait_for(5, WAIT).await;
    let counts: Vec<String> = got
        .iter()
        .filter_map(|r| r.header("x-call-count").map(str::to_string))
        .collect();
    assert_eq!(counts.len(), 5);
    assert!(
        counts.iter().any(|c| c != "1"),
        "a warm instance was reused: {counts:?}"
    );
}

/// Another gateway on the same store, with `extra` configuration.
async fn beside(gw: &TestGateway, extra: &str) -> TestGateway {
    TestGateway::start_with_store(
        gw.store_url.clone(),
        None,
        tempfile::tempdir().unwrap(),
        extra,
    )
    .await
}

async fn plugin_states(gw: &TestGateway) -> Vec<Value> {
    gw.graphql(
        "{ webhookPlugins { receiverId revision status error } }",
        json!({}),
    )
    .await["webhookPlugins"]
        .as_array()
        .unwrap()
        .clone()
}

async fn readyz(gw: &TestGateway) -> (u16, Value) {
    let r =
        changewire_test_support::http::request("GET", &format!("{}/readyz", gw.base()), &[], None)
            .await;
    (r.status, r.json())
}

/// A gateway with plugins disabled holds a receiver's deliveries when the
/// store says it has a plugin (it never sends them untransformed), reports
/// why in the API and `/readyz` (degraded, still serving), and a gateway
/// that loads the plugin sends them transformed.
async fn a_plugin_that_is_not_loaded_here_is_never_bypassed(backend: Backend) {
    let mut first = TestGateway::start(backend, "").await;
    let sink = TestReceiver::start().await;
    let (rid, _) = first
        .receiver_with(&sink.url(), &[("RUNS", "UPDATE")], json!({}))
        .await;
    attach(
        &first,
        &rid,
        artifacts::REDACT_FIELDS,
        json!({"fields": ["email"]}),
    )
    .await;
    first.stop().await;

    let mut off = beside(&first, "[plugins]\nenabled = false").await;
    off.publish(run(1, "complete")).await;
    let states = eventually("the plugin reported disabled", WAIT, || async {
        let s = plugin_states(&off).await;
        (s.len() == 1 && s[0]["status"] == "DISABLED").then_some(s)
    })
    .await;
    assert!(
        states[0]["error"]
            .as_str()
            .unwrap()
            .contains("enabled = false"),
        "{states:?}"
    );
    let (status, ready) = readyz(&off).await;
    assert_eq!(
        status, 200,
        "a plugin problem does not take the API out of service: {ready}"
    );
    assert_eq!(ready["degraded"], true, "{ready}");
    let plugins = &ready["components"]["plugins"];
    assert_eq!(plugins["ready"], false, "{ready}");
    assert!(
        plugins["error"]
            .as_str()
            .unwrap()
            .contains(&format!("receivers {rid}")),
        "{ready}"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(sink.count(), 0, "never sent untransformed");
    assert_eq!(
        statuses(&off, &rid).await[0].0,
        "pending",
        "held, not failed"
    );
    off.stop().await;

    let on = beside(&first, "").await;
    let body = sink.wait_for(1, WAIT).await[0].json();
    assert_eq!(body["data"]["id"], 1);
    assert_ne!(
        body["data"]["new"]["email"], "ada@example.com",
        "transformed: {body}"
    );
    drop(on);
}

/// A plugin attached through one gateway applies at once to deliveries
/// sent by another gateway that has not loaded it yet: they wait for it
/// instead of going out untransformed.
async fn an_attach_on_another_gateway_applies_to_the_next_delivery(backend: Backend) {
    let mut a = TestGateway::start(backend, "").await;
    let b = beside(&a, "").await;
    let sink = TestReceiver::start().await;
    let (rid, _) = a
        .receiver_with(
            &sink.url(),
            &[("RUNS", "UPDATE")],
            json!({"maxConcurrency": 4}),
        )
        .await;
    // `b` reloads receivers every 2 s: after this it sends to the receiver.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    attach(
        &a,
        &rid,
        artifacts::REDACT_FIELDS,
        json!({"fields": ["email"]}),
    )
    .await;
    // From here only `b` sends, and it has not loaded the plugin yet.
    a.stop().await;
    for i in 1..=20 {
        b.publish(run(i, "complete")).await;
    }
    let got = sink.wait_for(20, WAIT).await;
    for req in &got {
        let body = req.json();
        assert_ne!(
            body["data"]["new"]["email"], "ada@example.com",
            "a delivery went out without the plugin attached before it: {body}"
        );
    }
}

/// A stored plugin that does not compile on this gateway holds the
/// receiver's deliveries (FAILED, with the compiler's reason, retried with
/// backoff), or sends the original body to a receiver that chose
/// DELIVER_ORIGINAL.
async fn a_plugin_that_does_not_compile_holds_or_sends_the_original_as_chosen(backend: Backend) {
    let gw = TestGateway::start(backend, "").await;
    let held_sink = TestReceiver::start().await;
    let original_sink = TestReceiver::start().await;
    let (held, _) = gw
        .receiver_with(&held_sink.url(), &[("RUNS", "UPDATE")], json!({}))
        .await;
    let (original, _) = gw
        .receiver_with(
            &original_sink.url(),
            &[("RUNS", "UPDATE")],
            json!({"pluginFailureMode": "DELIVER_ORIGINAL"}),
        )
        .await;
    // As if stored by a gateway whose engine accepted it (an older version,
    // other limits): this one cannot compile it.
    let store = &gw.gw().store;
    for rid in [&held, &original] {
        store
            .attach_plugin(
                rid.parse().unwrap(),
                "broken",
                "00",
                b"\0asm\x01\0\0\0garbage",
                "{}",
            )
            .await
            .unwrap();
    }
    let states = eventually("both plugins reported failing", WAIT, || async {
        let s = plugin_states(&gw).await;
        (s.len() == 2 && s.iter().all(|p| p["status"] == "FAILED")).then_some(s)
    })
    .await;
    assert!(
        states[0]["error"]
            .as_str()
            .unwrap()
            .contains("compiled again at"),
        "{states:?}"
    );
    let (status, ready) = readyz(&gw).await;
    assert_eq!(status, 200, "{ready}");
    assert!(
        ready["components"]["plugins"]["error"]
            .as_str()
            .unwrap()
            .contains("does not load"),
        "{ready}"
    );
    gw.publish(run(7, "complete")).await;
    let body = original_sink.wait_for(1, WAIT).await[0].json();
    assert_eq!(
        body["data"]["new"]["email"], "ada@example.com",
        "the original body, as chosen"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(held_sink.count(), 0, "never sent untransformed");
    assert_eq!(statuses(&gw, &held).await[0].0, "pending");
    // Detaching the plugin releases the held delivery, as it is.
    gw.graphql(
        "mutation($r: ID!) { detachWebhookPlugin(input: { receiverId: $r }) { detached } }",
        json!({"r": held}),
    )
    .await;
    assert_eq!(held_sink.wait_for(1, WAIT).await[0].json()["data"]["id"], 7);
}

/// A second gateway on `store_url` whose configuration file attaches the
/// plugin at `path` to `receiver`; the error, as the CLI reports it.
async fn start_attaching(
    store_url: &str,
    receiver: &str,
    path: &str,
) -> Result<changewire_gateway::RunningGateway, String> {
    let toml = format!(
        "listen = \"127.0.0.1:0\"\nstore = \"{store_url}\"\n[[plugins.attach]]\nreceiver = {receiver}\n\
         path = {path:?}\nconfig = {{ headers = {{ x-team = \"payments\" }} }}\n"
    );
    let config = std::sync::Arc::new(changewire_gateway::Config::from_toml(&toml).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    changewire_gateway::RunningGateway::start_on(config, listener)
        .await
        .map_err(|e| changewire_gateway::testing::Report(&e).to_string())
}

/// `[[plugins.attach]]`: a plugin that cannot be attached stops the start,
/// saying which file, which receiver and why, each once; one that can is
/// attached at start, named after its file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugins_named_in_the_config_file_are_attached_at_start_or_stop_it() {
    let gw = TestGateway::start(Backend::Sqlite, "").await;
    let (rid, _) = gw
        .receiver_with("https://hooks.example.com/h", &[], json!({}))
        .await;
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.wasm");
    let missing = missing.to_str().unwrap();

    let err = start_attaching(&gw.store_url, &rid, missing)
        .await
        .err()
        .expect("a missing file stops the start");
    assert!(
        err.starts_with(&format!("plugins: cannot read {missing}: ")),
        "{err}"
    );
    assert_eq!(err.matches(missing).count(), 1, "{err}");

    let err = start_attaching(&gw.store_url, "999999", artifacts::ADD_HEADER)
        .await
        .err()
        .expect("an unknown receiver stops the start");
    assert_eq!(
        err,
        format!(
            "plugins: cannot attach {} to receiver 999999: receiver 999999 does not exist",
            artifacts::ADD_HEADER
        )
    );

    let err = start_attaching(&gw.store_url, &rid, artifacts::HOSTILE_CORE_MODULE)
        .await
        .err()
        .expect("a module that is not a plugin stops the start");
    assert!(
        err.starts_with(&format!(
            "plugins: cannot attach {} to receiver {rid}: not a WebAssembly component: this is a \
             core WebAssembly module",
            artifacts::HOSTILE_CORE_MODULE
        )),
        "{err}"
    );

    let second = start_attaching(&gw.store_url, &rid, artifacts::ADD_HEADER)
        .await
        .expect("attaches and starts");
    let listed = gw
        .graphql("{ webhookPlugins { receiverId name config } }", json!({}))
        .await;
    let stem = std::path::Path::new(artifacts::ADD_HEADER)
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap();
    assert_eq!(
        listed["webhookPlugins"],
        json!([{"receiverId": rid, "name": stem, "config": {"headers": {"x-team": "payments"}}}])
    );
    second.shutdown().await;
}

both_backends! {
    not_loaded_never_bypassed => a_plugin_that_is_not_loaded_here_is_never_bypassed,
    attach_elsewhere_applies_at_once => an_attach_on_another_gateway_applies_to_the_next_delivery,
    not_compiling_holds_or_sends_original => a_plugin_that_does_not_compile_holds_or_sends_the_original_as_chosen,
    filter_by_field => filter_by_field_case,
    redact_fields => redact_fields_case,
    slack_format => slack_format_case,
    add_header => add_header_case,
    hostile_loop_forever => loop_forever,
    hostile_alloc_unbounded => alloc_unbounded,
    hostile_two_memories => two_memories,
    hostile_stack_overflow => stack_overflow,
    hostile_panic => panic,
    hostile_unreachable => unreachable,
    hostile_huge_output => huge_output,
    hostile_garbage_output => garbage_output,
    hostile_print_stdout => print_stdout,
    hostile_stateful_counter => stateful_counter,
    hostile_core_module => core_module,
    hostile_no_transformer => no_transformer,
    hostile_forbidden_import => forbidden_import,
    hostile_future_version => future_version,
    deliver_original => deliver_original_on_failure,
    failing_plugins_reported => failing_plugins_are_reported,
    hot_swap => hot_swap_while_flowing,
}
