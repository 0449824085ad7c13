//! Every shared vector in `tests/vectors/`, through the core API.
//!
//! The expected values were computed by Python (`tests/vectors/generate.py`)
//! and are frozen: a failure here is a bug in the core, never a reason to
//! regenerate the vectors.

#![allow(clippy::unwrap_used)] // in tests a failed unwrap is a failed test, with its location

use std::path::PathBuf;

use changewire_core::{Error, ion, standard};
use serde::Deserialize;

fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors")
}

#[derive(Deserialize)]
struct File<T> {
    tests: Vec<T>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct IonCase {
    tc_id: u64,
    comment: String,
    flags: Vec<String>,
    secret: String,
    url: String,
    body: String,
    canonical: Option<String>,
    signature: String,
    result: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StandardCase {
    tc_id: u64,
    comment: String,
    secret: String,
    msg_id: String,
    timestamp: i64,
    now: i64,
    body: String,
    signature_header: String,
    expected_signature: String,
    result: String,
}

fn load<T: for<'de> Deserialize<'de>>(name: &str) -> Vec<T> {
    let path = vectors_dir().join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str::<File<T>>(&text).unwrap().tests
}

#[test]
fn ion_vectors() {
    let cases: Vec<IonCase> = load("ion_signature.json");
    assert!(
        cases.len() >= 1000,
        "expected at least 1000 ION vectors, found {}",
        cases.len()
    );
    let mut failures = Vec::new();
    for case in &cases {
        let body = case.body.as_bytes();
        let canonical = ion::signed_string_from_body(&case.url, body);
        match (&case.canonical, &canonical) {
            (Some(expected), Ok(got)) if expected != got => {
                failures.push(format!(
                    "tcId {} ({}): canonical differs\n  want {expected:?}\n  got  {got:?}",
                    case.tc_id, case.comment
                ));
                continue;
            }
            (Some(_), Err(err)) => {
                failures.push(format!(
                    "tcId {} ({}): cannot sign: {err}",
                    case.tc_id, case.comment
                ));
                continue;
            }
            (None, Ok(got)) => {
                failures.push(format!(
                    "tcId {} ({}): Python cannot sign this, we gave {got:?}",
                    case.tc_id, case.comment
                ));
                continue;
            }
            _ => {}
        }
        let verdict = ion::verify_body(&case.secret, &case.url, body, &case.signature);
        let ok = match case.result.as_str() {
            "valid" => verdict.is_ok(),
            "invalid" => verdict.is_err(),
            other => panic!("tcId {}: unknown result {other}", case.tc_id),
        };
        if !ok {
            failures.push(format!(
                "tcId {} ({}) {:?}: expected {}, got {verdict:?}",
                case.tc_id, case.comment, case.flags, case.result
            ));
        }
        if case.result == "valid" {
            let signed = ion::sign_body(&case.secret, &case.url, body).unwrap();
            assert_eq!(signed, case.signature, "tcId {}", case.tc_id);
        }
        if case.flags.iter().any(|f| f == "Unencodable") {
            assert!(
                matches!(verdict, Err(Error::Unencodable { .. })),
                "tcId {}: {verdict:?}",
                case.tc_id
            );
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} ION vectors failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn standard_webhooks_vectors() {
    let cases: Vec<StandardCase> = load("standard_webhooks.json");
    assert!(
        cases.len() >= 200,
        "expected at least 200 Standard Webhooks vectors, found {}",
        cases.len()
    );
    let mut failures = Vec::new();
    for case in &cases {
        let verdict = standard::SigningKey::from_secret(&case.secret).and_then(|key| {
            standard::verify(
                &key,
                &case.msg_id,
                &case.timestamp.to_string(),
                &case.signature_header,
                case.body.as_bytes(),
                case.now,
                standard::DEFAULT_TOLERANCE_SECS,
            )
        });
        let ok = if case.result == "valid" {
            verdict.is_ok()
        } else {
            verdict.is_err()
        };
        if !ok {
            failures.push(format!(
                "tcId {} ({}): expected {}, got {verdict:?}",
                case.tc_id, case.comment, case.result
            ));
        }
        if let Ok(key) = standard::SigningKey::from_secret(&case.secret) {
            let ours = key.sign(&case.msg_id, case.timestamp, case.body.as_bytes());
            if ours != case.expected_signature {
                failures.push(format!(
                    "tcId {} ({}): signature {ours} != {}",
                    case.tc_id, case.comment, case.expected_signature
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} Standard Webhooks vectors failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Ed25519Case {
    tc_id: u64,
    comment: String,
    flags: Vec<String>,
    signing_key: String,
    public_key: String,
    msg_id: String,
    timestamp: i64,
    now: i64,
    body: String,
    signature_header: String,
    expected_signature: String,
    result: String,
}

/// The error an invalid Ed25519 vector must give, from its flags.
fn ed25519_error_matches(case: &Ed25519Case, err: &Error) -> bool {
    let has = |flag: &str| case.flags.iter().any(|f| f == flag);
    if has("MalformedPublicKey") {
        matches!(err, Error::InvalidSecret(_))
    } else if has("StaleTimestamp") {
        matches!(err, Error::TimestampTooOld { .. })
    } else if has("FutureTimestamp") {
        matches!(err, Error::TimestampTooNew { .. })
    } else if has("MissingV1a") || has("MalformedSignature") || has("MalformedHeader") {
        matches!(err, Error::MalformedHeader { header, .. } if *header == standard::HEADER_SIGNATURE)
    } else {
        *err == Error::SignatureMismatch
    }
}

#[test]
fn standard_webhooks_ed25519_vectors() {
    let cases: Vec<Ed25519Case> = load("standard_webhooks_ed25519.json");
    assert!(
        cases.len() >= 100,
        "expected at least 100 Ed25519 vectors, found {}",
        cases.len()
    );
    let mut failures = Vec::new();
    for case in &cases {
        let id = format!("tcId {} ({})", case.tc_id, case.comment);
        let verdict = standard::Ed25519PublicKey::parse(&case.public_key).and_then(|key| {
            key.verify(
                &case.msg_id,
                &case.timestamp.to_string(),
                &case.signature_header,
                case.body.as_bytes(),
                case.now,
                standard::DEFAULT_TOLERANCE_SECS,
            )
        });
        let ok = match (&verdict, case.result.as_str()) {
            (Ok(()), "valid") => true,
            (Err(err), "invalid") => ed25519_error_matches(case, err),
            _ => false,
        };
        if !ok {
            failures.push(format!(
                "{id} {:?}: expected {}, got {verdict:?}",
                case.flags, case.result
            ));
        }
        // Signing: our signature of this message is the RFC 8032 one.
        match standard::Ed25519SigningKey::parse(&case.signing_key) {
            Ok(key) => {
                let ours = key.sign(&case.msg_id, case.timestamp, case.body.as_bytes());
                if ours != case.expected_signature {
                    failures.push(format!(
                        "{id}: signature {ours} != {}",
                        case.expected_signature
                    ));
                }
                if key.to_secret_string() != case.signing_key {
                    failures.push(format!("{id}: the signing key does not round-trip"));
                }
                let public = key.public_key().to_string();
                let paired = !case
                    .flags
                    .iter()
                    .any(|f| f == "MalformedPublicKey" || f == "WrongKey");
                if paired && public != case.public_key {
                    failures.push(format!("{id}: public key {public} != {}", case.public_key));
                }
            }
            Err(err) => failures.push(format!("{id}: signing key refused: {err}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} Ed25519 vectors failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
