//! `changewire/wasm`: changewire's signing core for browsers, Deno, edge
//! runtimes and Node without native addons. It exports the functions of the
//! native addon (`sdk-node/src/lib.rs`) under the same names and with the
//! same semantics; `sdk-node/lib/api.js` builds the public API over either.
//!
//! Errors are thrown as `Error`s whose `code` is core's stable error code and
//! whose message is core's `Display`.

use changewire_core::json::Value;
use changewire_core::{
    Error, Event, Scheme, VerifyOptions, diagnose as core_diagnose, ion, standard,
};
use wasm_bindgen::prelude::*;

fn error_with(code: &str, message: &str) -> JsValue {
    let err = js_sys::Error::new(message);
    // Setting a property on a fresh Error object cannot fail.
    let _ = js_sys::Reflect::set(&err, &JsValue::from_str("code"), &JsValue::from_str(code));
    err.into()
}

fn fail(err: &Error) -> JsValue {
    error_with(err.code(), &err.to_string())
}

/// Unix seconds from a JavaScript number (`as` saturates; NaN becomes 0).
fn seconds(value: f64) -> i64 {
    value.floor() as i64
}

/// Verifies a request: the URL exactly as registered, the raw body, and the
/// headers as a flat `[name, value, …]` list. Returns `"ion"`, `"standard"` or
/// `"ed25519"` (a `whpk_` public key in place of the secret verifies the
/// Standard Webhooks `v1a` signature).
#[wasm_bindgen(js_name = verifyRequest)]
pub fn verify_request(
    secret: &str,
    url: &str,
    body: &[u8],
    headers: Vec<String>,
    now: f64,
    tolerance: u32,
    require: Option<String>,
) -> Result<String, JsValue> {
    let require = require
        .as_deref()
        .map(str::parse::<Scheme>)
        .transpose()
        .map_err(|err| error_with("invalid_option", &format!("require: {err}")))?;
    let pairs: Vec<(&str, &str)> = headers
        .chunks_exact(2)
        .map(|pair| (pair[0].as_str(), pair[1].as_str()))
        .collect();
    let options = VerifyOptions {
        require,
        tolerance_secs: u64::from(tolerance),
    };
    changewire_core::verify_request(secret, url, body, &pairs, seconds(now), &options)
        .map(|scheme| scheme.as_str().to_string())
        .map_err(|e| fail(&e))
}

/// Verifies an `x-ion-signature` over a `data` object given as JSON text.
/// `false` on a mismatch; throws for data that cannot be signed.
#[wasm_bindgen(js_name = verifyData)]
pub fn verify_data(
    secret: &str,
    url: &str,
    data_json: &str,
    signature: &str,
) -> Result<bool, JsValue> {
    let value = Value::parse(data_json.as_bytes()).map_err(|e| fail(&e.into()))?;
    let Value::Object(data) = &value else {
        return Err(fail(&Error::NotAnObject {
            field: "data",
            found: value.type_name(),
        }));
    };
    match ion::verify_data(secret, url, data, signature) {
        Ok(()) => Ok(true),
        Err(Error::SignatureMismatch) => Ok(false),
        Err(e) => Err(fail(&e)),
    }
}

/// The `x-ion-signature` value for a raw body.
#[wasm_bindgen(js_name = signBody)]
pub fn sign_body(secret: &str, url: &str, body: &[u8]) -> Result<String, JsValue> {
    ion::sign_body(secret, url, body).map_err(|e| fail(&e))
}

/// The Standard Webhooks `webhook-signature` value (`v1,<base64>`).
#[wasm_bindgen(js_name = signStandard)]
pub fn sign_standard(
    secret: &str,
    msg_id: &str,
    timestamp: f64,
    body: &[u8],
) -> Result<String, JsValue> {
    let key = standard::SigningKey::from_secret(secret).map_err(|e| fail(&e))?;
    Ok(key.sign(msg_id, seconds(timestamp), body))
}

/// The exact string the ION scheme signs for this URL and raw body.
#[wasm_bindgen]
pub fn explain(url: &str, body: &[u8]) -> Result<String, JsValue> {
    ion::signed_string_from_body(url, body).map_err(|e| fail(&e))
}

/// Recomputes the ION signature of a raw body and explains a mismatch:
/// `{ signedString, expectedSignature, matches, cause }`.
#[wasm_bindgen]
pub fn diagnose(secret: &str, url: &str, body: &[u8], signature: &str) -> Result<JsValue, JsValue> {
    let d = core_diagnose::diagnose(secret, url, body, signature).map_err(|e| fail(&e))?;
    let out = js_sys::Object::new();
    let set =
        |key: &str, value: JsValue| js_sys::Reflect::set(&out, &JsValue::from_str(key), &value);
    set("signedString", JsValue::from_str(&d.signed_string))?;
    set(
        "expectedSignature",
        JsValue::from_str(&d.expected_signature),
    )?;
    set("matches", JsValue::from_bool(d.matches))?;
    if let Some(cause) = d.cause {
        set("cause", JsValue::from_str(&cause.to_string()))?;
    }
    Ok(out.into())
}

/// Checks that a raw body is an event envelope; throws `invalid_event`
/// saying what is wrong.
#[wasm_bindgen(js_name = checkEvent)]
pub fn check_event(body: &[u8]) -> Result<(), JsValue> {
    serde_json::from_slice::<Event>(body)
        .map(drop)
        .map_err(|e| {
            error_with(
                "invalid_event",
                &format!("body is not a changewire event: {e}"),
            )
        })
}

/// This package's version: the crate's, which is also the npm package's.
#[wasm_bindgen]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}

/// The Unicode version whose notion of "printable" the canonical form uses.
#[wasm_bindgen(js_name = unicodeVersion)]
pub fn unicode_version() -> String {
    changewire_core::canonical::PYTHON_UNICODE_VERSION.to_string()
}
