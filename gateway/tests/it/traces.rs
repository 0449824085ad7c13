//! OpenTelemetry: one trace per change, from capture through fan-out to
//! each attempt and the plugin call inside it, received by an OTLP
//! collector on loopback; `traceparent` names the attempt's span.

use std::str::FromStr;
use std::time::Duration;

use base64::Engine as _;
use changewire_plugin_artifacts as artifacts;
use changewire_test_support::Backend;
use changewire_test_support::gateway::TestGateway;
use changewire_test_support::otlp::OtlpCollector;
use changewire_test_support::receiver::TestReceiver;
use serde_json::json;
use sqlx::ConnectOptions;
use sqlx::sqlite::SqliteConnectOptions;

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_captured_change_is_one_trace_down_to_each_attempt_and_plugin_call() {
    let collector = OtlpCollector::start().await;
    let dir = tempfile::tempdir().unwrap();
    let app_path = dir.path().join("app.db");
    let mut app = SqliteConnectOptions::from_str(&format!("sqlite://{}", app_path.display()))
        .unwrap()
        .create_if_missing(true)
        .connect()
        .await
        .unwrap();
    sqlx::raw_sql("CREATE TABLE runs (id INTEGER PRIMARY KEY, status TEXT NOT NULL)")
        .execute(&mut app)
        .await
        .unwrap();
    let gw = TestGateway::start(
        Backend::Sqlite,
        &format!(
            "capture = \"sqlite://{}\"\n[resources]\nRUNS = \"runs\"\n[telemetry]\notlp_endpoint = \"{}\"\nservice_name = \"gw-under-test\"\n",
            app_path.display(),
            collector.url()
        ),
    )
    .await;
    // Two receivers: one with a plugin and `traceparent`, one failing.
    let traced = TestReceiver::start().await;
    let (traced_id, _) = gw
        .receiver_with(
            &traced.url(),
            &[("RUNS", "CREATE")],
            json!({"sendTraceparent": true}),
        )
        .await;
    let wasm = base64::engine::general_purpose::STANDARD
        .encode(std::fs::read(artifacts::ADD_HEADER).expect("plugin artifact"));
    gw.graphql(
        "mutation($i: AttachWebhookPluginInput!) { attachWebhookPlugin(input: $i) { plugin { sha256 } } }",
        json!({"i": {"receiverId": traced_id, "wasm": wasm, "config": {"headers": {"x-team": "ops"}}, "name": "hdr"}}),
    )
    .await;
    let failing = TestReceiver::start().await;
    failing.set_status(500);
    gw.receiver_with(
        &failing.url(),
        &[("RUNS", "CREATE")],
        json!({"maxAttempts": 1}),
    )
    .await;

    sqlx::raw_sql("INSERT INTO runs (id, status) VALUES (1, 'queued')")
        .execute(&mut app)
        .await
        .unwrap();
    let sent = traced.wait_for(1, WAIT).await;
    failing.wait_for(1, WAIT).await;

    let spans = collector
        .wait_until(WAIT, |s| {
            s.iter().filter(|s| s.name == "POST").count() >= 2
                && s.iter().any(|s| s.name == "plugin")
                && s.iter().any(|s| s.name == "change")
        })
        .await;
    let changes: Vec<_> = spans.iter().filter(|s| s.name == "change").collect();
    assert_eq!(changes.len(), 1, "one change, one root span: {spans:#?}");
    let change = changes[0];
    assert_eq!(change.parent_span_id, "", "the change span is the root");
    assert_eq!(change.kind, "SPAN_KIND_CONSUMER");
    assert_eq!(change.service_name, "gw-under-test");
    assert_eq!(change.attr("changewire.resource"), Some("RUNS"));
    assert_eq!(change.attr("changewire.action"), Some("create"));
    assert_eq!(change.attr("changewire.row_id"), Some("1"));
    assert_eq!(change.attr("changewire.deliveries"), Some("2"));
    let txid: i64 = change.attr("db.transaction_id").unwrap().parse().unwrap();
    let body = sent[0].json();
    assert_eq!(
        body["transaction_id"].as_i64(),
        Some(txid),
        "the database transaction: {body}"
    );

    // Each attempt is a child of the change, with its URL, status and duration.
    let attempts: Vec<_> = spans.iter().filter(|s| s.name == "POST").collect();
    assert_eq!(attempts.len(), 2, "{attempts:#?}");
    for a in &attempts {
        assert_eq!(a.trace_id, change.trace_id);
        assert_eq!(a.parent_span_id, change.span_id);
        assert!(a.attr("changewire.request_ms").is_some());
        assert!(a.start_end.0 <= a.start_end.1);
    }
    let ok = attempts
        .iter()
        .find(|a| a.attr("url.full") == Some(traced.url().as_str()))
        .expect("the traced receiver's attempt");
    assert_eq!(ok.attr("http.response.status_code"), Some("200"));
    assert_eq!(ok.attr("changewire.outcome"), Some("succeeded"));
    assert_eq!(ok.kind, "SPAN_KIND_CLIENT");
    assert_eq!(ok.status, ("STATUS_CODE_OK".into(), String::new()));
    let bad = attempts
        .iter()
        .find(|a| a.attr("url.full") == Some(failing.url().as_str()))
        .expect("the failing receiver's attempt");
    assert_eq!(bad.attr("http.response.status_code"), Some("500"));
    assert!(
        bad.attr("error.message").unwrap().contains("HTTP 500"),
        "{bad:?}"
    );
    assert_eq!(bad.status.0, "STATUS_CODE_ERROR");
    assert_eq!(Some(bad.status.1.as_str()), bad.attr("error.message"));

    // The plugin call is a child of its attempt.
    let plugin = spans.iter().find(|s| s.name == "plugin").unwrap();
    assert_eq!(plugin.trace_id, change.trace_id);
    assert_eq!(plugin.parent_span_id, ok.span_id);
    assert_eq!(plugin.attr("changewire.plugin.result"), Some("sent"));
    assert_eq!(plugin.kind, "SPAN_KIND_INTERNAL");

    // The receiver was told which span its request is.
    assert_eq!(
        sent[0].header("traceparent"),
        Some(format!("00-{}-{}-01", change.trace_id, ok.span_id).as_str())
    );
    assert_eq!(sent[0].header("x-team"), Some("ops"));
    assert_eq!(
        failing.received()[0].header("traceparent"),
        None,
        "only where enabled"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traceparent_without_exporting_is_not_sampled_and_nothing_is_exported() {
    let collector = OtlpCollector::start().await;
    let gw = TestGateway::start(Backend::Sqlite, "").await;
    let sink = TestReceiver::start().await;
    gw.receiver_with(
        &sink.url(),
        &[("RUNS", "UPDATE")],
        json!({"sendTraceparent": true}),
    )
    .await;
    gw.publish(json!({"resource": "RUNS", "action": "UPDATE", "id": 1, "old": {"s": "a"}, "new": {"s": "b"}}))
        .await;
    let got = sink.wait_for(1, WAIT).await;
    let header = got[0]
        .header("traceparent")
        .expect("traceparent")
        .to_string();
    assert!(
        header.starts_with("00-") && header.ends_with("-00"),
        "{header}"
    );
    assert_eq!(header.len(), 55, "{header}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(collector.spans().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_that_is_not_an_http_url_is_refused_naming_the_setting() {
    let err = changewire_gateway::Config::from_toml(
        "[telemetry]\notlp_endpoint = \"grpc://collector:4317\"\n",
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("telemetry.otlp_endpoint") && err.contains("http://"),
        "{err}"
    );
}
