//! Every shared vector in `tests/vectors/`, through the SDK's API: the
//! request-level [`Webhook`] with header lists and `http::HeaderMap`, the
//! rotation header, the error kinds, and event parsing.
//!
//! Expected values come from Python and are frozen; a failure here is a bug
//! in the SDK or core, never a reason to change a vector.

use std::path::PathBuf;

use changewire_sdk::{Error, HttpHeaders, Scheme, Webhook, ion, parse_event};
use http::{HeaderMap, HeaderName, HeaderValue};
use serde::Deserialize;

fn load<T: for<'de> Deserialize<'de>>(name: &str) -> Vec<T> {
    #[derive(Deserialize)]
    struct File<T> {
        tests: Vec<T>,
    }
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/vectors")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str::<File<T>>(&text)
        .expect("vector file")
        .tests
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
    flags: Vec<String>,
    secret: String,
    msg_id: String,
    timestamp: i64,
    now: i64,
    body: String,
    signature_header: String,
    result: String,
}

fn header_map(pairs: &[(&str, &str)]) -> Option<HeaderMap> {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        let value = HeaderValue::from_bytes(value.as_bytes()).ok()?;
        map.append(HeaderName::from_bytes(name.as_bytes()).ok()?, value);
    }
    Some(map)
}

/// The error kinds a failing ION vector may give, from its flags.
fn ion_codes(flags: &[String]) -> &'static [&'static str] {
    if flags.iter().any(|f| f == "Unencodable") {
        &["unencodable"]
    } else if flags.iter().any(|f| f == "BadData") {
        &["invalid_json", "missing_data", "not_an_object"]
    } else {
        &["signature_mismatch"]
    }
}

#[test]
fn ion_vectors_through_the_sdk() {
    let cases: Vec<IonCase> = load("ion_signature.json");
    assert!(cases.len() >= 1000, "only {} ION vectors", cases.len());
    let mut failures = Vec::new();
    let mut realistic = 0;
    for case in &cases {
        let id = format!("tcId {} ({})", case.tc_id, case.comment);
        let body = case.body.as_bytes();
        let webhook = Webhook::new(case.secret.as_str(), case.url.as_str());
        let valid = case.result == "valid";

        // HTTP strips whitespace around header values, and so does
        // verify_request; the raw comparison (the reference function's) is
        // `ion::verify_body`, which must follow the vector exactly.
        let raw = ion::verify_body(&case.secret, &case.url, body, &case.signature);
        if raw.is_ok() != valid {
            failures.push(format!(
                "{id}: verify_body gave {raw:?}, want {}",
                case.result
            ));
        }
        let trimmed = case.signature.trim();
        let expect_ok = if trimmed == case.signature {
            valid
        } else {
            ion::verify_body(&case.secret, &case.url, body, trimmed).is_ok()
        };

        let headers = vec![("X-Ion-Signature", case.signature.as_str())];
        let verdict = webhook.verify_at(body, &headers, 0);
        match (&verdict, expect_ok) {
            (Ok(Scheme::Ion), true) => {}
            (Err(err), false) if ion_codes(&case.flags).contains(&err.code()) => {}
            _ => failures.push(format!(
                "{id}: verify gave {verdict:?}, want {}",
                case.result
            )),
        }
        if let Some(map) = header_map(&[("x-ion-signature", &case.signature)]) {
            let via_map = webhook.verify_at(body, &HttpHeaders(&map), 0);
            if via_map != verdict {
                failures.push(format!(
                    "{id}: HeaderMap gave {via_map:?}, list gave {verdict:?}"
                ));
            }
        }

        // During a rotation the right signature may come in the -next header.
        let rotated = vec![
            ("x-ion-signature", "AAAAAAAAAAAAAAAAAAAAAAAAAAA="),
            ("x-ion-signature-next", case.signature.as_str()),
        ];
        let via_next = webhook.verify_at(body, &rotated, 0);
        if via_next.is_ok() != expect_ok {
            failures.push(format!("{id}: x-ion-signature-next gave {via_next:?}"));
        }

        if valid {
            match ion::sign_body(&case.secret, &case.url, body) {
                Ok(sig) if sig == case.signature => {}
                other => failures.push(format!("{id}: sign_body gave {other:?}")),
            }
            let canonical = ion::signed_string_from_body(&case.url, body).ok();
            if canonical != case.canonical {
                failures.push(format!(
                    "{id}: canonical {canonical:?} != {:?}",
                    case.canonical
                ));
            }
        }
        if valid && case.flags.iter().any(|f| f == "Realistic") {
            realistic += 1;
            match parse_event(body) {
                Ok(event) => {
                    let parsed: serde_json::Value = serde_json::from_slice(body).unwrap();
                    if parsed["event_id"] != event.event_id || parsed["data"]["id"] != event.data.id
                    {
                        failures.push(format!("{id}: parse_event misread the envelope"));
                    }
                }
                Err(err) => failures.push(format!("{id}: parse_event: {err}")),
            }
        }
    }
    assert!(realistic >= 40, "only {realistic} realistic vectors");
    assert!(
        failures.is_empty(),
        "{} of {} ION vectors failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn standard_webhooks_vectors_through_the_sdk() {
    let cases: Vec<StandardCase> = load("standard_webhooks.json");
    assert!(cases.len() >= 200, "only {} vectors", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let id = format!("tcId {} ({})", case.tc_id, case.comment);
        let has = |flag: &str| case.flags.iter().any(|f| f == flag);
        let timestamp = case.timestamp.to_string();
        let pairs = [
            ("webhook-id", case.msg_id.as_str()),
            ("Webhook-Timestamp", timestamp.as_str()),
            ("webhook-signature", case.signature_header.as_str()),
            // Present but ignored: Standard Webhooks headers take precedence.
            ("x-ion-signature", "bogus"),
        ];
        let webhook = Webhook::new(case.secret.as_str(), "https://r.test/unused");
        let verdict = webhook.verify_at(case.body.as_bytes(), &pairs[..], case.now);
        let ok = match (&verdict, case.result.as_str()) {
            (Ok(Scheme::Standard), "valid") => true,
            (Err(err), "invalid") => {
                let age = case.now - case.timestamp;
                if has("StaleTimestamp") {
                    err.to_string()
                        == format!("timestamp is {age}s old, beyond the 300s tolerance (replay?)")
                } else if has("FutureTimestamp") {
                    err.to_string()
                        == format!(
                            "timestamp is {}s in the future, beyond the 300s tolerance (clock skew?)",
                            -age
                        )
                } else if has("MalformedHeader") {
                    matches!(
                        err,
                        Error::MalformedHeader { .. } | Error::SignatureMismatch
                    )
                } else if has("OtherVersion") {
                    err.to_string() == "malformed `webhook-signature` header: no `v1,` signature"
                } else {
                    *err == Error::SignatureMismatch
                }
            }
            _ => false,
        };
        if !ok {
            failures.push(format!(
                "{id} {:?}: gave {verdict:?}, want {}",
                case.flags, case.result
            ));
        }
        if let Some(map) = header_map(&pairs) {
            let via_map = webhook.verify_at(case.body.as_bytes(), &HttpHeaders(&map), case.now);
            if via_map != verdict {
                failures.push(format!(
                    "{id}: HeaderMap gave {via_map:?}, list gave {verdict:?}"
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
    public_key: String,
    msg_id: String,
    timestamp: i64,
    now: i64,
    body: String,
    signature_header: String,
    result: String,
}

/// Whether `err` is what an invalid Ed25519 vector must give (from its flags).
fn ed25519_error_expected(case: &Ed25519Case, err: &Error) -> bool {
    let has = |flag: &str| case.flags.iter().any(|f| f == flag);
    let age = case.now - case.timestamp;
    let text = err.to_string();
    if has("MalformedPublicKey") {
        if case.public_key.starts_with("whpk_") {
            matches!(err, Error::InvalidSecret(_))
        } else {
            // Not a public key, so read as a `whsec_` secret: refused, or no `v1,` entry.
            matches!(err, Error::InvalidSecret(_))
                || text == "malformed `webhook-signature` header: no `v1,` signature"
        }
    } else if has("StaleTimestamp") {
        text == format!("timestamp is {age}s old, beyond the 300s tolerance (replay?)")
    } else if has("FutureTimestamp") {
        text == format!(
            "timestamp is {}s in the future, beyond the 300s tolerance (clock skew?)",
            -age
        )
    } else if has("MissingV1a") {
        text.starts_with("malformed `webhook-signature` header: no `v1a,` signature")
    } else if has("MalformedSignature") {
        text == "malformed `webhook-signature` header: a `v1a,` signature is not base64 of 64 bytes"
    } else if has("MalformedHeader") {
        matches!(err, Error::MalformedHeader { .. })
    } else {
        *err == Error::SignatureMismatch
    }
}

#[test]
fn standard_webhooks_ed25519_vectors_through_the_sdk() {
    let cases: Vec<Ed25519Case> = load("standard_webhooks_ed25519.json");
    assert!(cases.len() >= 100, "only {} vectors", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let id = format!("tcId {} ({})", case.tc_id, case.comment);
        let timestamp = case.timestamp.to_string();
        let pairs = [
            ("Webhook-Id", case.msg_id.as_str()),
            ("webhook-timestamp", timestamp.as_str()),
            ("webhook-signature", case.signature_header.as_str()),
            // Present but ignored: a public key verifies Standard Webhooks headers.
            ("x-ion-signature", "bogus"),
        ];
        // The same entry point as a `whsec_` secret: the key selects Ed25519.
        let webhook = Webhook::new(case.public_key.as_str(), "https://r.test/unused");
        let verdict = webhook.verify_at(case.body.as_bytes(), &pairs[..], case.now);
        let ok = match (&verdict, case.result.as_str()) {
            (Ok(Scheme::Ed25519), "valid") => true,
            (Err(err), "invalid") => ed25519_error_expected(case, err),
            _ => false,
        };
        if !ok {
            failures.push(format!(
                "{id} {:?}: gave {verdict:?}, want {}",
                case.flags, case.result
            ));
        }
        if case.public_key.starts_with("whpk_") {
            let strict = webhook.require(Scheme::Ed25519);
            let required = strict.verify_at(case.body.as_bytes(), &pairs[..], case.now);
            if required != verdict {
                failures.push(format!(
                    "{id}: require(Ed25519) gave {required:?}, default gave {verdict:?}"
                ));
            }
        }
        if let Some(map) = header_map(&pairs) {
            let via_map = webhook.verify_at(case.body.as_bytes(), &HttpHeaders(&map), case.now);
            if via_map != verdict {
                failures.push(format!(
                    "{id}: HeaderMap gave {via_map:?}, list gave {verdict:?}"
                ));
            }
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
