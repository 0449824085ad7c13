//! `changewire.<platform>.node`: the native half of the `changewire` npm
//! package. The JavaScript half (`lib/api.js`) normalises headers, bodies
//! and parsed `data` objects, then calls these functions; the WebAssembly
//! build (`wasm/`) exports the same functions with the same semantics.
//!
//! Errors are thrown as `Error`s whose `code` is core's stable error code
//! (`signature_mismatch`, …) and whose message is core's `Display`.

use changewire_core::json::Value;
use changewire_core::{
    Error, Event, Scheme, VerifyOptions, diagnose as core_diagnose, ion, standard,
};
use napi::bindgen_prelude::Uint8ArraySlice;
use napi_derive::napi;

type Result<T> = std::result::Result<T, napi::Error<String>>;

fn fail(err: &Error) -> napi::Error<String> {
    napi::Error::new(err.code().to_string(), err.to_string())
}

fn fail_with(code: &str, message: String) -> napi::Error<String> {
    napi::Error::new(code.to_string(), message)
}

/// Verifies a request: the URL exactly as registered, the raw body, and the
/// headers as a flat `[name, value, name, value, …]` list. Returns the scheme
/// that verified (`"ion"`, `"standard"` or `"ed25519"`; a `whpk_` public key
/// in place of the secret verifies the Standard Webhooks `v1a` signature).
#[napi]
pub fn verify_request(
    secret: String,
    url: String,
    body: Uint8ArraySlice<'_>,
    headers: Vec<String>,
    now: i64,
    tolerance: u32,
    require: Option<String>,
) -> Result<String> {
    let require = require
        .as_deref()
        .map(str::parse::<Scheme>)
        .transpose()
        .map_err(|err| fail_with("invalid_option", format!("require: {err}")))?;
    let pairs: Vec<(&str, &str)> = headers
        .chunks_exact(2)
        .map(|pair| (pair[0].as_str(), pair[1].as_str()))
        .collect();
    let options = VerifyOptions {
        require,
        tolerance_secs: u64::from(tolerance),
    };
    changewire_core::verify_request(&secret, &url, &body, &pairs, now, &options)
        .map(|scheme| scheme.as_str().to_string())
        .map_err(|e| fail(&e))
}

/// Verifies an `x-ion-signature` over a `data` object given as JSON text
/// (written by `lib/api.js` from the JavaScript object). `false` on a
/// mismatch; throws for data that cannot be signed.
#[napi]
pub fn verify_data(
    secret: String,
    url: String,
    data_json: String,
    signature: String,
) -> Result<bool> {
    let value = Value::parse(data_json.as_bytes()).map_err(|e| fail(&e.into()))?;
    let Value::Object(data) = &value else {
        return Err(fail(&Error::NotAnObject {
            field: "data",
            found: value.type_name(),
        }));
    };
    match ion::verify_data(&secret, &url, data, &signature) {
        Ok(()) => Ok(true),
        Err(Error::SignatureMismatch) => Ok(false),
        Err(e) => Err(fail(&e)),
    }
}

/// The `x-ion-signature` value for a raw body.
#[napi]
pub fn sign_body(secret: String, url: String, body: Uint8ArraySlice<'_>) -> Result<String> {
    ion::sign_body(&secret, &url, &body).map_err(|e| fail(&e))
}

/// The Standard Webhooks `webhook-signature` value (`v1,<base64>`).
#[napi]
pub fn sign_standard(
    secret: String,
    msg_id: String,
    timestamp: i64,
    body: Uint8ArraySlice<'_>,
) -> Result<String> {
    let key = standard::SigningKey::from_secret(&secret).map_err(|e| fail(&e))?;
    Ok(key.sign(&msg_id, timestamp, &body))
}

/// The exact string the ION scheme signs for this URL and raw body.
#[napi]
pub fn explain(url: String, body: Uint8ArraySlice<'_>) -> Result<String> {
    ion::signed_string_from_body(&url, &body).map_err(|e| fail(&e))
}

/// What `diagnose` found.
#[napi(object)]
pub struct Diagnosis {
    /// The exact string the ION scheme signs.
    pub signed_string: String,
    /// The signature this secret gives.
    pub expected_signature: String,
    /// Whether the given signature matches.
    pub matches: bool,
    /// On a mismatch, the most likely cause, in words.
    pub cause: Option<String>,
}

/// Recomputes the ION signature of a raw body and explains a mismatch.
#[napi]
pub fn diagnose(
    secret: String,
    url: String,
    body: Uint8ArraySlice<'_>,
    signature: String,
) -> Result<Diagnosis> {
    let d = core_diagnose::diagnose(&secret, &url, &body, &signature).map_err(|e| fail(&e))?;
    Ok(Diagnosis {
        signed_string: d.signed_string,
        expected_signature: d.expected_signature,
        matches: d.matches,
        cause: d.cause.map(|c| c.to_string()),
    })
}

/// Checks that a raw body is an event envelope (the JavaScript side then
/// returns `JSON.parse` of it); throws `invalid_event` saying what is wrong.
#[napi]
pub fn check_event(body: Uint8ArraySlice<'_>) -> Result<()> {
    serde_json::from_slice::<Event>(&body)
        .map(drop)
        .map_err(|e| {
            fail_with(
                "invalid_event",
                format!("body is not a changewire event: {e}"),
            )
        })
}

/// This package's version: the crate's, which is also the npm package's.
#[napi]
pub fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

/// The Unicode version whose notion of "printable" the canonical form uses.
#[napi]
pub fn unicode_version() -> &'static str {
    changewire_core::canonical::PYTHON_UNICODE_VERSION
}
