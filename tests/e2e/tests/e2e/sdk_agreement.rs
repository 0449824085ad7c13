//! Every SDK — Rust, Python, Node native and Node wasm — gives the same answer
//! on real gateway deliveries: every scheme (ION, Standard Webhooks HMAC and
//! Ed25519), a secret rotation's overlap, values that exercise Python's
//! str(), and tampered copies. Python's `cryptography` (OpenSSL), an Ed25519
//! implementation that is not ours, verifies the `v1a` signatures too.
//!
//! The Python and Node SDKs must be built first (`make py node` does; `make
//! e2e` sets CHANGEWIRE_E2E_SDKS=1, which makes their absence a failure).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use base64::Engine as _;
use changewire_core::Scheme;
use changewire_test_support::Backend;
use changewire_test_support::gateway::TestGateway;
use changewire_test_support::receiver::{Received, TestReceiver};
use serde_json::{Value, json};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn sdks_required() -> bool {
    std::env::var("CHANGEWIRE_E2E_SDKS").is_ok_and(|v| v == "1")
}

struct Case {
    secret: String,
    url: String,
    req: Received,
    now: i64,
    scheme: Scheme,
}

fn to_json(cases: &[Case]) -> Value {
    Value::Array(
        cases
            .iter()
            .map(|c| {
                json!({
                    "secret": c.secret, "url": c.url, "now": c.now,
                    "scheme": c.scheme.as_str(),
                    "body_b64": base64::engine::general_purpose::STANDARD.encode(&c.req.body),
                    "headers": c.req.headers.iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>(),
                })
            })
            .collect(),
    )
}

fn rust_answers(cases: &[Case]) -> Vec<String> {
    cases
        .iter()
        .map(|c| {
            let webhook =
                changewire_sdk::Webhook::new(c.secret.clone(), c.url.clone()).require(c.scheme);
            match webhook.verify_at(&c.req.body, &c.req.headers, c.now) {
                Ok(s) => s.as_str().to_string(),
                Err(e) => format!("error:{}", e.code()),
            }
        })
        .collect()
}

fn run_json(cmd: &mut Command) -> Option<Vec<String>> {
    let out = cmd.output().ok()?;
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).ok()
}

async fn public_key(gw: &TestGateway, rid: &str) -> String {
    gw.graphql(
        "query($id: ID!) { webhookReceiver(id: $id) { publicKey } }",
        json!({"id": rid}),
    )
    .await["webhookReceiver"]["publicKey"]
        .as_str()
        .expect("a public key")
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_sdks_agree_on_gateway_deliveries() {
    let gw = TestGateway::start(Backend::Sqlite, "").await;
    let sink = TestReceiver::start().await;
    let (rid, old_secret) = gw
        .receiver_with(
            &sink.url(),
            &[("RUNS", "UPDATE"), ("RUNS", "CREATE")],
            json!({"signatureSchemes": ["ION", "STANDARD", "ED25519"]}),
        )
        .await;
    let old_public = public_key(&gw, &rid).await;
    let awkward = [
        json!({"status": "complete", "note": null}),
        json!({"title": "it's \"quoted\" — ✓ ü 😀", "tags": ["a", null, true, 1.0, -0.0, 1e-7, 12345678901234567890u64]}),
        json!({"nested": {"10": "ten", "2": "two", "z": {"deep": [[], {}]}}, "ratio": 0.1, "big": 9007199254740993u64}),
        json!({"ctrl": "tab\tnewline\nbell\u{7}", "nbsp": "a\u{a0}b", "private": "\u{e000}"}),
    ];
    for (i, new) in awkward.iter().enumerate() {
        gw.publish(json!({"resource": "RUNS", "action": "UPDATE", "id": i, "old": {"status": "x"}, "new": new})).await;
    }
    sink.wait_for(awkward.len(), Duration::from_secs(20)).await;
    // Rotate with an overlap: deliveries carry signatures for both secrets.
    let etag = gw
        .graphql(
            "query($id: ID!) { webhookReceiver(id: $id) { _etag } }",
            json!({"id": rid}),
        )
        .await["webhookReceiver"]["_etag"]
        .clone();
    let new_secret = gw
        .graphql(
            "mutation($i: RotateWebhookReceiverSecretInput!) { rotateWebhookReceiverSecret(input: $i) { webhookReceiver { sharedSecret } } }",
            json!({"i": {"id": rid, "etag": etag, "overlapSeconds": 600}}),
        )
        .await["rotateWebhookReceiverSecret"]["webhookReceiver"]["sharedSecret"]
        .as_str()
        .unwrap()
        .to_string();
    let new_public = public_key(&gw, &rid).await;
    assert_ne!(old_public, new_public);
    tokio::time::sleep(Duration::from_millis(100)).await;
    gw.publish(json!({"resource": "RUNS", "action": "CREATE", "id": "run-α", "new": {"a": 1}}))
        .await;
    let received = sink
        .wait_for(awkward.len() + 1, Duration::from_secs(20))
        .await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;

    let mut cases = Vec::new();
    let mut expected = Vec::new();
    for (i, req) in received.iter().enumerate() {
        let rotated = i == received.len() - 1;
        let secrets: Vec<(&String, &String)> = if rotated {
            vec![(&old_secret, &old_public), (&new_secret, &new_public)]
        } else {
            vec![(&old_secret, &old_public)]
        };
        for (secret, public) in secrets {
            for scheme in [Scheme::Ion, Scheme::Standard, Scheme::Ed25519] {
                // Ed25519 is verified with the public key: no secret at all.
                let secret = if scheme == Scheme::Ed25519 {
                    public
                } else {
                    secret
                };
                cases.push(Case {
                    secret: secret.clone(),
                    url: sink.url(),
                    req: req.clone(),
                    now,
                    scheme,
                });
                expected.push(scheme.as_str().to_string());
                // A tampered copy: a field slipped into `data` (still valid JSON).
                let mut tampered = req.clone();
                let text = String::from_utf8(req.body.to_vec()).unwrap();
                assert!(text.contains("\"data\": {"), "{text}");
                tampered.body = text
                    .replacen("\"data\": {", "\"data\": {\"tampered\": 1, ", 1)
                    .into_bytes()
                    .into();
                cases.push(Case {
                    secret: secret.clone(),
                    url: sink.url(),
                    req: tampered,
                    now,
                    scheme,
                });
                expected.push("error:signature_mismatch".to_string());
            }
        }
    }
    let rust = rust_answers(&cases);
    assert_eq!(rust, expected, "the Rust SDK on gateway deliveries");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("deliveries.json");
    std::fs::write(&file, to_json(&cases).to_string()).unwrap();

    let python = root().join("sdk-python/.venv/bin/python");
    let node_addon = root().join("sdk-node/changewire.linux-x64-gnu.node");
    let wasm_pkg = root().join("sdk-node/wasm/pkg");
    if !(python.exists() && node_addon.exists() && wasm_pkg.exists()) {
        assert!(
            !sdks_required(),
            "CHANGEWIRE_E2E_SDKS=1 but the Python venv, the Node addon or the wasm build is missing; run `make py node`"
        );
        eprintln!("skipping the Python/Node comparison: SDKs not built (run `make py node`)");
        return;
    }
    let py = run_json(
        Command::new(&python)
            .arg(root().join("tests/e2e/sdk/verify_deliveries.py"))
            .arg(&file),
    )
    .expect("python answers");
    let py_schemes: Vec<String> = py
        .iter()
        .map(|r| r.split('|').next().unwrap_or("").to_string())
        .collect();
    assert_eq!(py_schemes, expected, "the Python SDK");
    for (r, c) in py.iter().zip(&cases) {
        if c.scheme == Scheme::Ion && !r.starts_with("error") {
            assert!(
                r.ends_with("|dict:ok"),
                "verify_signature on the parsed data agrees: {r}"
            );
        }
    }
    for flavour in ["native", "wasm"] {
        let script = root().join("tests/e2e/sdk/verify_deliveries.mjs");
        let node = run_json(Command::new("node").arg(&script).arg(&file).arg(flavour))
            .expect("node answers");
        assert_eq!(node, expected, "the Node SDK ({flavour})");
    }
    // Python's `cryptography` (OpenSSL's Ed25519) on the same v1a cases.
    let independent = run_json(
        Command::new(&python)
            .arg(root().join("tests/e2e/sdk/verify_ed25519_cryptography.py"))
            .arg(&file),
    )
    .expect("cryptography answers");
    let ed25519_expected: Vec<String> = cases
        .iter()
        .zip(&expected)
        .filter(|(c, _)| c.scheme == Scheme::Ed25519)
        .map(|(_, e)| if e == "ed25519" { "ok" } else { "no" }.to_string())
        .collect();
    assert!(ed25519_expected.iter().any(|e| e == "ok"));
    assert_eq!(independent, ed25519_expected, "cryptography's Ed25519");
}
