//! No input makes the core panic: every public entry point, fed arbitrary
//! bytes, arbitrary JSON-shaped text and arbitrary header values, returns a
//! result (property test).

#![allow(clippy::unwrap_used)] // in tests a failed unwrap is a failed test, with its location

use changewire_core::{VerifyOptions, diagnose, ion, json::Value, standard, verify_request};
use proptest::prelude::*;

/// Text that looks like JSON: structural characters, escapes, numbers,
/// literals, quotes and arbitrary unicode, in any order.
fn jsonish() -> impl Strategy<Value = String> {
    let atom = prop_oneof![
        Just("{".to_string()),
        Just("}".to_string()),
        Just("[".to_string()),
        Just("]".to_string()),
        Just(",".to_string()),
        Just(":".to_string()),
        Just("\"".to_string()),
        Just("\"data\"".to_string()),
        Just("\\u".to_string()),
        Just("\\ud800".to_string()),
        Just("\\udc00".to_string()),
        Just("\\".to_string()),
        Just("null".to_string()),
        Just("true".to_string()),
        Just("NaN".to_string()),
        Just("-Infinity".to_string()),
        Just("1e400".to_string()),
        Just("-0".to_string()),
        Just("0.1".to_string()),
        "[0-9]{1,30}".prop_map(|s| s),
        any::<String>(),
    ];
    prop::collection::vec(atom, 0..40).prop_map(|parts| parts.concat())
}

/// Structurally valid bodies with an arbitrary `data` object inside.
fn body_with_data() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("null".to_string()),
        any::<bool>().prop_map(|b| b.to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| format!("{f:e}")),
        any::<String>().prop_map(|s| serde_json::to_string(&s).unwrap()),
    ];
    let value = leaf.prop_recursive(6, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(|v| format!("[{}]", v.join(", "))),
            prop::collection::vec((any::<String>(), inner), 0..6).prop_map(|kv| {
                let members: Vec<String> = kv
                    .into_iter()
                    .map(|(k, v)| format!("{}: {v}", serde_json::to_string(&k).unwrap()))
                    .collect();
                format!("{{{}}}", members.join(", "))
            }),
        ]
    });
    prop::collection::vec((any::<String>(), value), 0..8).prop_map(|kv| {
        let members: Vec<String> = kv
            .into_iter()
            .map(|(k, v)| format!("{}: {v}", serde_json::to_string(&k).unwrap()))
            .collect();
        format!("{{\"event_id\": 1, \"data\": {{{}}}}}", members.join(", "))
    })
}

fn exercise(secret: &str, url: &str, body: &[u8], signature: &str, timestamp: &str, id: &str) {
    let _ = Value::parse(body);
    let _ = ion::sign_body(secret, url, body);
    let _ = ion::verify_body(secret, url, body, signature);
    let _ = ion::signed_string_from_body(url, body);
    let _ = diagnose::diagnose(secret, url, body, signature);
    let headers = vec![
        ("x-ion-signature", signature),
        ("x-ion-signature-next", signature),
        ("webhook-id", id),
        ("webhook-timestamp", timestamp),
        ("webhook-signature", signature),
    ];
    let _ = verify_request(
        secret,
        url,
        body,
        &headers,
        1_764_000_000,
        &VerifyOptions::default(),
    );
    let ion_only = VerifyOptions {
        require: Some(changewire_core::Scheme::Ion),
        ..Default::default()
    };
    let _ = verify_request(secret, url, body, &headers, i64::MIN, &ion_only);
    if let Ok(key) = standard::SigningKey::from_secret(secret) {
        let _ = standard::verify(&key, id, timestamp, signature, body, i64::MAX, u64::MAX);
        let _ = key.sign(id, i64::MIN, body);
    }
    if let Ok(key) = standard::Ed25519PublicKey::parse(secret) {
        let _ = key.verify(id, timestamp, signature, body, i64::MAX, u64::MAX);
        let _ = key.verify(id, timestamp, signature, body, i64::MIN, 0);
    }
    if let Ok(key) = standard::Ed25519SigningKey::parse(secret) {
        let _ = key.sign(id, i64::MIN, body);
    }
    // A real public key, so arbitrary `v1a` entries reach the curve arithmetic.
    let public = standard::Ed25519SigningKey::from_seed([5; 32]).public_key();
    let _ = public.verify(id, timestamp, signature, body, 1_764_000_000, u64::MAX);
    let _ = verify_request(
        &public.to_string(),
        url,
        body,
        &headers,
        1_764_000_000,
        &VerifyOptions::default(),
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes(body in prop::collection::vec(any::<u8>(), 0..512), secret in any::<String>(),
                       url in any::<String>(), sig in any::<String>(), ts in any::<String>(), id in any::<String>()) {
        exercise(&secret, &url, &body, &sig, &ts, &id);
    }

    #[test]
    fn json_shaped_text(body in jsonish(), secret in "(whsec_)?[A-Za-z0-9+/=]{0,40}", sig in "(v1,)?[A-Za-z0-9+/=, ]{0,60}",
                        ts in "-?[0-9]{0,25}") {
        exercise(&secret, "https://r.test/h", body.as_bytes(), &sig, &ts, "msg");
    }

    #[test]
    fn ed25519_shaped_text(body in jsonish(), secret in "(whpk_|whsk_)?[A-Za-z0-9+/=]{0,48}",
                           sig in "((v1a|v1),)?[A-Za-z0-9+/=, ]{0,120}", ts in "-?[0-9]{0,25}") {
        exercise(&secret, "https://r.test/h", body.as_bytes(), &sig, &ts, "msg");
    }

    #[test]
    fn structurally_valid_bodies_round_trip(body in body_with_data(), secret in any::<String>()) {
        // A body the core can sign verifies with its own signature.
        if let Ok(sig) = ion::sign_body(&secret, "https://r.test/h", body.as_bytes()) {
            prop_assert!(ion::verify_body(&secret, "https://r.test/h", body.as_bytes(), &sig).is_ok());
        }
        exercise(&secret, "https://r.test/h", body.as_bytes(), "AAAA", "0", "1");
    }
}

#[test]
fn pathological_inputs_are_errors_not_crashes() {
    let deep = "[".repeat(100_000);
    assert!(Value::parse(deep.as_bytes()).is_err());
    let deep_obj = "{\"data\": ".repeat(50_000);
    assert!(ion::sign_body("s", "u", deep_obj.as_bytes()).is_err());
    let long_int = format!("{{\"data\": {{\"n\": {}}}}}", "9".repeat(10_000));
    assert!(ion::sign_body("s", "u", long_int.as_bytes()).is_err());
    assert!(standard::SigningKey::from_secret("whsec_").is_err());
    assert!(standard::Ed25519PublicKey::parse("whpk_").is_err());
    assert!(standard::Ed25519SigningKey::parse("whsk_").is_err());
}
