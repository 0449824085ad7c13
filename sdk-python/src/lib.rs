//! `changewire._changewire`: the Python bindings of `changewire-core`.
//!
//! Python objects are converted to core's `json::Value` exactly as the ION
//! reference function sees them: dict order kept, `bool` before `int`, ints
//! with all their digits (`str(int)`), floats as f64, strings in generalized
//! UTF-8 (`encode("utf-8", "surrogatepass")`, so lone surrogates survive),
//! `None`. A top-level value of any other type (a tuple, a `Decimal`, a dict
//! subclass, a container holding one) is formatted by Python itself, with
//! `format(value, "")` as the reference's f-string does, so the result is
//! still the reference's.

use std::borrow::Cow;

mod fast;

use changewire_core::json::{MAX_DEPTH, Object, Text, Value};
use changewire_core::{
    Error, Headers as _, Scheme, UnknownScheme, VerifyOptions, diagnose as core_diagnose, ion,
    standard,
};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedStr;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyByteArray, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString};
use pyo3::{create_exception, intern};

create_exception!(
    changewire,
    WebhookVerificationError,
    PyValueError,
    "A webhook failed verification. `str(err)` says why; `err.code` names the kind \
     (`signature_mismatch`, `missing_header`, `malformed_header`, `timestamp_too_old`, \
     `timestamp_too_new`, `invalid_json`, `missing_data`, `not_an_object`, `unencodable`, \
     `invalid_secret`)."
);

create_exception!(
    changewire,
    InvalidEventError,
    PyValueError,
    "A body is not a changewire event envelope (a missing or mistyped field)."
);

/// Bodies above this size are verified with the GIL released.
const DETACH_ABOVE: usize = 64 * 1024;

fn verification_error(py: Python<'_>, err: &Error) -> PyErr {
    let exc = WebhookVerificationError::new_err(err.to_string());
    // Setting an attribute on a fresh exception instance cannot fail in practice;
    // if it did, the exception without `code` is still the right one to raise.
    let _ = exc.value(py).setattr(intern!(py, "code"), err.code());
    exc
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map_or_else(|_| "object".to_string(), |n| n.to_string())
}

/// The text of a `str`, and whether it is plain UTF-8 (no lone surrogate).
fn text_of(s: &Bound<'_, PyString>) -> PyResult<(Text<'static>, bool)> {
    if let Ok(bytes) = s.encode_utf8() {
        let utf8 = std::str::from_utf8(bytes.as_bytes())
            .map_err(|_| PyValueError::new_err("str.encode returned invalid UTF-8"))?;
        return Ok((Text::from(utf8.to_owned()), true));
    }
    // Lone surrogates: read them the way the reference's repr() sees them.
    let py = s.py();
    let bytes = s.call_method1(intern!(py, "encode"), ("utf-8", "surrogatepass"))?;
    let bytes = bytes.cast::<PyBytes>()?;
    let text = Text::from_surrogatepass_bytes(bytes.as_bytes())
        .ok_or_else(|| PyValueError::new_err("surrogatepass encoding is not generalized UTF-8"))?
        .into_owned();
    Ok((text, false))
}

/// A `str` argument, formatted as an f-string formats it when it is not one.
fn str_arg<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Cow<'static, str>> {
    let py = obj.py();
    let s = match obj.cast_exact::<PyString>() {
        Ok(s) => s.clone(),
        Err(_) => format_fn(py)?.call1((obj, ""))?.cast_into::<PyString>()?,
    };
    Ok(Cow::Owned(s.to_cow()?.into_owned()))
}

fn format_fn(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    static FORMAT: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    FORMAT.import(py, "builtins", "format")
}

fn int_digits(i: &Bound<'_, PyInt>) -> PyResult<String> {
    match i.extract::<i64>() {
        Ok(n) => Ok(n.to_string()),
        // Beyond i64: Python's own str(), which also enforces int_max_str_digits.
        Err(_) => Ok(i.str()?.to_cow()?.into_owned()),
    }
}

/// Converts a value built only of JSON types (exact types, not subclasses);
/// `None` when something else is inside, so the caller falls back to Python.
fn convert(v: &Bound<'_, PyAny>, depth: usize) -> PyResult<Option<Value<'static>>> {
    if depth > MAX_DEPTH {
        return Ok(None);
    }
    if v.is_none() {
        return Ok(Some(Value::Null));
    }
    if let Ok(s) = v.cast_exact::<PyString>() {
        return Ok(Some(Value::Str(text_of(s)?.0)));
    }
    if let Ok(b) = v.cast_exact::<PyBool>() {
        return Ok(Some(Value::Bool(b.is_true())));
    }
    if let Ok(i) = v.cast_exact::<PyInt>() {
        return Ok(Some(Value::Int(Cow::Owned(int_digits(i)?))));
    }
    if let Ok(f) = v.cast_exact::<PyFloat>() {
        return Ok(Some(Value::Float(f.value())));
    }
    if let Ok(d) = v.cast_exact::<PyDict>() {
        let mut members: Object<'static> = Vec::with_capacity(d.len());
        for (k, item) in d.iter() {
            let Ok(key) = k.cast_exact::<PyString>() else {
                return Ok(None);
            };
            let Some(value) = convert(&item, depth + 1)? else {
                return Ok(None);
            };
            members.push((text_of(key)?.0, value));
        }
        return Ok(Some(Value::Object(members)));
    }
    if let Ok(l) = v.cast_exact::<PyList>() {
        let mut items = Vec::with_capacity(l.len());
        for item in l.iter() {
            let Some(value) = convert(&item, depth + 1)? else {
                return Ok(None);
            };
            items.push(value);
        }
        return Ok(Some(Value::Array(items)));
    }
    Ok(None)
}

/// The top level of `data`, and the first `str` the reference could not encode.
struct Data<'py> {
    members: Object<'static>,
    unencodable: Option<Bound<'py, PyString>>,
}

impl<'py> Data<'py> {
    fn push(&mut self, k: &Bound<'py, PyAny>, v: &Bound<'py, PyAny>) -> PyResult<()> {
        let key = k.cast_exact::<PyString>().map_err(|_| {
            PyTypeError::new_err(format!("data keys must be str, not {}", type_name(k)))
        })?;
        let (key_text, key_ok) = text_of(key)?;
        if v.is_none() {
            // Left out of the signed string, as the reference leaves it out.
            self.members.push((key_text, Value::Null));
            return Ok(());
        }
        if !key_ok {
            self.unencodable.get_or_insert_with(|| key.clone());
        }
        let formatted;
        let text = if let Ok(s) = v.cast_exact::<PyString>() {
            s
        } else if let Some(value) = convert(v, 1)? {
            self.members.push((key_text, value));
            return Ok(());
        } else {
            formatted = format_fn(v.py())?.call1((v, ""))?.cast_into::<PyString>()?;
            &formatted
        };
        let (value_text, value_ok) = text_of(text)?;
        if !value_ok {
            self.unencodable.get_or_insert_with(|| text.clone());
        }
        self.members.push((key_text, Value::Str(value_text)));
        Ok(())
    }

    fn from_py(data: &Bound<'py, PyAny>) -> PyResult<Self> {
        let mut out = Data {
            members: Vec::new(),
            unencodable: None,
        };
        if let Ok(d) = data.cast_exact::<PyDict>() {
            out.members.reserve(d.len());
            for (k, v) in d.iter() {
                out.push(&k, &v)?;
            }
        } else {
            // Any mapping: the reference only calls `data.items()`.
            let items = data.call_method0(intern!(data.py(), "items"))?;
            for item in items.try_iter()? {
                let (k, v): (Bound<'py, PyAny>, Bound<'py, PyAny>) = item?.extract()?;
                out.push(&k, &v)?;
            }
        }
        Ok(out)
    }
}

/// An argument's conversion error, worded as pyo3 words it for typed arguments.
fn argument_error(py: Python<'_>, name: &str, err: PyErr) -> PyErr {
    if err.get_type(py).is(py.get_type::<PyTypeError>()) {
        let wrapped = PyTypeError::new_err(format!("argument '{name}': {}", err.value(py)));
        wrapped.set_cause(py, Some(err));
        wrapped
    } else {
        err
    }
}

/// The signature argument, accepted as `hmac.compare_digest` accepts it
/// next to a `str`.
fn signature_arg(signature: &Bound<'_, PyAny>) -> PyResult<String> {
    let s = signature.cast::<PyString>().map_err(|_| {
        PyTypeError::new_err(format!(
            "signature must be a str (the x-ion-signature header value), not {}",
            type_name(signature)
        ))
    })?;
    let text = s.to_string_lossy();
    if !text.is_ascii() {
        return Err(PyTypeError::new_err(
            "comparing strings with non-ASCII characters is not supported",
        ));
    }
    Ok(text.into_owned())
}

/// Verifies an ION `x-ion-signature` over a `data` dict, exactly as ION's
/// reference `verify_signature(secret, url, data, header_signature)` does:
/// same arguments, same result, same exceptions.
///
/// `data` must be the `data` member of the body as `json.loads` built it.
/// Returns `True` or `False`.
#[pyfunction]
fn verify_signature(
    py: Python<'_>,
    secret: &Bound<'_, PyAny>,
    url: &Bound<'_, PyAny>,
    data: &Bound<'_, PyAny>,
    signature: &Bound<'_, PyAny>,
) -> PyResult<bool> {
    // Plain JSON data and `str` arguments: formatted straight from the objects.
    if let Some(result) = fast::verify_signature(secret, url, data, signature) {
        return Ok(result);
    }
    let secret: PyBackedStr = secret
        .extract()
        .map_err(|err| argument_error(py, "secret", err))?;
    let url = str_arg(url)?;
    let data = Data::from_py(data)?;
    if let Some(text) = &data.unencodable {
        // Raise the UnicodeEncodeError the reference raises.
        text.encode_utf8()?;
    }
    let signature = signature_arg(signature)?;
    match ion::verify_data(&secret, &url, &data.members, &signature) {
        Ok(()) => Ok(true),
        Err(Error::SignatureMismatch) => Ok(false),
        Err(err) => Err(verification_error(py, &err)),
    }
}

/// Raw body bytes, borrowed from a `bytes` object when possible.
enum Body<'py> {
    Bytes(Bound<'py, PyBytes>),
    Owned(Vec<u8>),
}

impl Body<'_> {
    fn as_slice(&self) -> &[u8] {
        match self {
            Body::Bytes(b) => b.as_bytes(),
            Body::Owned(v) => v,
        }
    }
}

fn body_arg<'py>(body: &Bound<'py, PyAny>) -> PyResult<Body<'py>> {
    if let Ok(b) = body.cast::<PyBytes>() {
        return Ok(Body::Bytes(b.clone()));
    }
    if let Ok(b) = body.cast::<PyByteArray>() {
        return Ok(Body::Owned(b.to_vec()));
    }
    if let Ok(s) = body.cast::<PyString>() {
        return Ok(Body::Owned(s.to_cow()?.into_owned().into_bytes()));
    }
    // memoryview and other buffers with `tobytes()`.
    if let Ok(view) = body.call_method0(intern!(body.py(), "tobytes"))
        && let Ok(b) = view.cast_into::<PyBytes>()
    {
        return Ok(Body::Bytes(b));
    }
    Err(PyTypeError::new_err(format!(
        "body must be the raw request body (bytes), not {}; \
         to check an already-parsed `data` dict use verify_signature()",
        type_name(body)
    )))
}

/// Whether a header name can be one verification reads, judged by its length
/// alone (cheap: no encoding), so most other headers are skipped unread.
fn may_be_read(name: &Bound<'_, PyAny>) -> bool {
    let len = if let Ok(s) = name.cast::<PyString>() {
        s.code_point_len().ok()
    } else if let Ok(b) = name.cast::<PyBytes>() {
        Some(b.as_bytes().len())
    } else {
        None
    };
    // Names of another type reach header_text, which says what is wrong.
    len.is_none_or(|len| HEADERS_READ.iter().any(|h| h.len() == len))
}

fn header_text(obj: &Bound<'_, PyAny>) -> PyResult<String> {
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(s.to_string_lossy().into_owned());
    }
    if let Ok(b) = obj.cast::<PyBytes>() {
        // ASGI servers hand raw header bytes; HTTP header values are ASCII.
        return Ok(String::from_utf8_lossy(b.as_bytes()).into_owned());
    }
    Err(PyTypeError::new_err(format!(
        "header names and values must be str or bytes, not {}",
        type_name(obj)
    )))
}

const HEADERS_READ: [&str; 5] = [
    ion::HEADER,
    ion::HEADER_NEXT,
    standard::HEADER_ID,
    standard::HEADER_TIMESTAMP,
    standard::HEADER_SIGNATURE,
];

/// The headers verification reads, from a mapping (`dict`, Flask/Werkzeug
/// `Headers`, Starlette `Headers`, `http.client.HTTPMessage`, …) or an
/// iterable of `(name, value)` pairs.
fn header_pairs(headers: &Bound<'_, PyAny>) -> PyResult<Vec<(String, String)>> {
    let py = headers.py();
    let mut out = Vec::new();
    if let Ok(dict) = headers.cast_exact::<PyDict>() {
        for (k, v) in dict.iter() {
            if !may_be_read(&k) {
                continue;
            }
            let name = header_text(&k)?;
            if HEADERS_READ.iter().any(|h| h.eq_ignore_ascii_case(&name)) {
                out.push((name, header_text(&v)?));
            }
        }
        return Ok(out);
    }
    let pairs = if headers.cast::<PyDict>().is_ok() || headers.hasattr(intern!(py, "items"))? {
        headers.call_method0(intern!(py, "items"))?
    } else {
        headers.clone()
    };
    for item in pairs.try_iter().map_err(|_| {
        PyTypeError::new_err(format!(
            "headers must be a mapping or (name, value) pairs, not {}",
            type_name(headers)
        ))
    })? {
        let (k, v): (Bound<'_, PyAny>, Bound<'_, PyAny>) = item?.extract()?;
        if !may_be_read(&k) {
            continue;
        }
        let name = header_text(&k)?;
        if HEADERS_READ.iter().any(|h| h.eq_ignore_ascii_case(&name)) {
            out.push((name, header_text(&v)?));
        }
    }
    Ok(out)
}

/// `require=`: a scheme name in any ASCII case, or `None` to go by the headers.
fn scheme_arg(require: Option<&str>) -> PyResult<Option<Scheme>> {
    require
        .map(str::parse)
        .transpose()
        .map_err(|err: UnknownScheme| PyValueError::new_err(format!("require: {err}")))
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Runs `f` on the body, with the GIL released for large bodies.
fn with_body<T: Send>(py: Python<'_>, body: &[u8], f: impl FnOnce(&[u8]) -> T + Send) -> T {
    if body.len() > DETACH_ABOVE {
        py.detach(|| f(body))
    } else {
        f(body)
    }
}

/// Verifies a whole request: the URL exactly as registered, the raw body
/// bytes, and the headers. Returns the scheme that verified (`"ion"`,
/// `"standard"` or `"ed25519"`); raises `WebhookVerificationError` saying why
/// otherwise. A `whpk_…` Ed25519 public key in place of the secret verifies
/// the Standard Webhooks `v1a` signature.
#[pyfunction]
#[pyo3(signature = (secret, url, body, headers, *, now=None, tolerance=standard::DEFAULT_TOLERANCE_SECS, require=None))]
#[allow(clippy::too_many_arguments)] // Mirrors the Python signature (keyword-only options).
fn verify_request<'py>(
    py: Python<'py>,
    secret: &Bound<'py, PyAny>,
    url: &Bound<'py, PyAny>,
    body: &Bound<'py, PyAny>,
    headers: &Bound<'_, PyAny>,
    now: Option<f64>,
    tolerance: u64,
    require: Option<&str>,
) -> PyResult<Bound<'py, PyString>> {
    // Plain `str` arguments and a plain `dict` of headers are read into
    // reused buffers, without creating Python objects; anything else as before.
    fast::with_request_scratch(|scratch| {
        let secret_owned = if scratch.read_secret(secret) {
            None
        } else {
            let owned: PyBackedStr = secret
                .extract()
                .map_err(|err| argument_error(py, "secret", err))?;
            Some(owned)
        };
        let url_owned = if scratch.read_url(url) {
            None
        } else {
            let owned: PyBackedStr = url
                .extract()
                .map_err(|err| argument_error(py, "url", err))?;
            Some(owned)
        };
        let body = body_arg(body)?;
        let pairs = if scratch.read_dict_headers(headers, &HEADERS_READ) {
            None
        } else {
            Some(header_pairs(headers)?)
        };
        let options = VerifyOptions {
            require: scheme_arg(require)?,
            tolerance_secs: tolerance,
        };
        // What `read_*` wrote is UTF-8 (encoded from code points).
        let secret = match &secret_owned {
            Some(owned) => &**owned,
            None => std::str::from_utf8(&scratch.secret).unwrap_or_default(),
        };
        let url = match &url_owned {
            Some(owned) => &**owned,
            None => std::str::from_utf8(&scratch.url).unwrap_or_default(),
        };
        let found = scratch.dict_headers();
        let standard_present = match &pairs {
            Some(pairs) => pairs.header(standard::HEADER_SIGNATURE).is_some(),
            None => found.has(standard::HEADER_SIGNATURE),
        };
        // Only the Standard Webhooks schemes (HMAC and Ed25519) read the clock.
        let reads_clock = match options.require {
            Some(Scheme::Standard | Scheme::Ed25519) => true,
            Some(_) => false,
            None => standard_present,
        };
        // Float seconds (time.time()) are truncated; `as` saturates out-of-range values.
        let now = match now {
            Some(n) => n.floor() as i64,
            None if reads_clock => unix_now(),
            None => 0,
        };
        let result = with_body(py, body.as_slice(), |body| match &pairs {
            Some(pairs) => changewire_core::verify_request(secret, url, body, pairs, now, &options),
            None => changewire_core::verify_request(secret, url, body, &found, now, &options),
        });
        match result {
            Ok(Scheme::Ion) => Ok(intern!(py, Scheme::Ion.as_str()).clone()),
            Ok(Scheme::Standard) => Ok(intern!(py, Scheme::Standard.as_str()).clone()),
            Ok(Scheme::Ed25519) => Ok(intern!(py, Scheme::Ed25519.as_str()).clone()),
            Ok(other) => Ok(PyString::new(py, other.as_str())),
            Err(err) => Err(verification_error(py, &err)),
        }
    })
}

/// The `x-ion-signature` value for a raw body (what the gateway sends).
#[pyfunction]
fn sign_body(
    py: Python<'_>,
    secret: PyBackedStr,
    url: PyBackedStr,
    body: &Bound<'_, PyAny>,
) -> PyResult<String> {
    let body = body_arg(body)?;
    let (secret, url): (&str, &str) = (&secret, &url);
    with_body(py, body.as_slice(), |body| {
        ion::sign_body(secret, url, body)
    })
    .map_err(|err| verification_error(py, &err))
}

/// The Standard Webhooks `webhook-signature` value (`v1,<base64>`) for a
/// message id, a Unix timestamp and a raw body, with a `whsec_…` secret.
#[pyfunction]
fn sign_standard(
    py: Python<'_>,
    secret: PyBackedStr,
    msg_id: PyBackedStr,
    timestamp: i64,
    body: &Bound<'_, PyAny>,
) -> PyResult<String> {
    let key = standard::SigningKey::from_secret(&secret).map_err(|e| verification_error(py, &e))?;
    let body = body_arg(body)?;
    let msg_id: &str = &msg_id;
    Ok(with_body(py, body.as_slice(), |body| {
        key.sign(msg_id, timestamp, body)
    }))
}

/// The exact string the ION scheme signs for this URL and raw body (what
/// `changewire verify --explain` prints).
#[pyfunction]
fn explain(py: Python<'_>, url: PyBackedStr, body: &Bound<'_, PyAny>) -> PyResult<String> {
    let body = body_arg(body)?;
    ion::signed_string_from_body(&url, body.as_slice()).map_err(|err| verification_error(py, &err))
}

/// What `diagnose()` found: the signed string, the expected signature,
/// whether the given one matches and, if not, the likely cause.
#[pyclass(frozen, get_all, module = "changewire")]
struct Diagnosis {
    /// The exact string the ION scheme signs.
    signed_string: String,
    /// The signature this secret gives.
    expected_signature: String,
    /// Whether the given signature matches.
    matches: bool,
    /// On a mismatch, the most likely cause, in words; `None` on a match.
    cause: Option<String>,
}

#[pymethods]
impl Diagnosis {
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "Diagnosis(matches={}, expected_signature={}, cause={})",
            if self.matches { "True" } else { "False" },
            str_repr(py, &self.expected_signature)?,
            opt_str_repr(py, self.cause.as_deref())?,
        ))
    }
}

/// Python's `repr()` of a `str`.
fn str_repr(py: Python<'_>, s: &str) -> PyResult<String> {
    Ok(PyString::new(py, s).repr()?.to_string())
}

fn opt_str_repr(py: Python<'_>, s: Option<&str>) -> PyResult<String> {
    s.map_or_else(|| Ok("None".to_string()), |s| str_repr(py, s))
}

/// Recomputes the ION signature of a raw body and explains a mismatch
/// (wrong URL spelling, re-serialized body, pairs sorted as strings, or a
/// wrong secret / modified body).
#[pyfunction]
fn diagnose(
    py: Python<'_>,
    secret: PyBackedStr,
    url: PyBackedStr,
    body: &Bound<'_, PyAny>,
    signature: PyBackedStr,
) -> PyResult<Diagnosis> {
    let body = body_arg(body)?;
    let d = core_diagnose::diagnose(&secret, &url, body.as_slice(), &signature)
        .map_err(|err| verification_error(py, &err))?;
    Ok(Diagnosis {
        signed_string: d.signed_string,
        expected_signature: d.expected_signature,
        matches: d.matches,
        cause: d.cause.map(|c| c.to_string()),
    })
}

/// The `data` member of an event: the row and what changed.
#[pyclass(frozen, get_all, module = "changewire")]
struct EventData {
    /// The row's primary key (an int or a str).
    id: Py<PyAny>,
    /// The row's new etag.
    etag: Option<String>,
    /// The changed fields before the change; `None` on create.
    old: Option<Py<PyDict>>,
    /// The changed fields after the change; `None` on delete.
    new: Option<Py<PyDict>>,
    /// Every other member of `data` (`record`, `related`, plugin fields).
    extra: Py<PyDict>,
}

#[pymethods]
impl EventData {
    #[new]
    #[pyo3(signature = (id, etag=None, old=None, new=None, extra=None))]
    fn py_new(
        py: Python<'_>,
        id: Py<PyAny>,
        etag: Option<String>,
        old: Option<Py<PyDict>>,
        new: Option<Py<PyDict>>,
        extra: Option<Py<PyDict>>,
    ) -> Self {
        EventData {
            id,
            etag,
            old,
            new,
            extra: extra.unwrap_or_else(|| PyDict::new(py).unbind()),
        }
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "EventData(id={}, etag={}, old={}, new={}, extra={})",
            self.id.bind(py).repr()?,
            opt_str_repr(py, self.etag.as_deref())?,
            opt_repr(py, self.old.as_ref())?,
            opt_repr(py, self.new.as_ref())?,
            self.extra.bind(py).repr()?
        ))
    }

    fn __eq__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<bool> {
        let Ok(other) = other.cast::<EventData>() else {
            return Ok(false);
        };
        let other = other.get();
        Ok(self.id.bind(py).eq(other.id.bind(py))?
            && self.etag == other.etag
            && opt_eq(py, self.old.as_ref(), other.old.as_ref())?
            && opt_eq(py, self.new.as_ref(), other.new.as_ref())?
            && self.extra.bind(py).eq(other.extra.bind(py))?)
    }
}

fn opt_repr(py: Python<'_>, d: Option<&Py<PyDict>>) -> PyResult<String> {
    match d {
        None => Ok("None".into()),
        Some(d) => Ok(d.bind(py).repr()?.to_string()),
    }
}

fn opt_eq(py: Python<'_>, a: Option<&Py<PyDict>>, b: Option<&Py<PyDict>>) -> PyResult<bool> {
    match (a, b) {
        (None, None) => Ok(true),
        (Some(a), Some(b)) => a.bind(py).eq(b.bind(py)),
        _ => Ok(false),
    }
}

/// One delivery's body: ION's envelope. `event_id` is stable across retries
/// and is the idempotency key.
#[pyclass(frozen, get_all, module = "changewire")]
struct Event {
    /// Unique per delivery, stable across retries.
    event_id: i64,
    /// The subscription that matched.
    subscription_id: i64,
    /// The resource, lowercase (`run_steps`).
    resource: String,
    /// `create`, `update`, `delete` or `test`.
    action: String,
    /// The database transaction; events of one transaction share it.
    transaction_id: i64,
    /// When the change committed (UTC, ISO 8601).
    occurred_at: String,
    /// The change.
    data: Py<EventData>,
}

#[pymethods]
impl Event {
    #[new]
    fn py_new(
        event_id: i64,
        subscription_id: i64,
        resource: String,
        action: String,
        transaction_id: i64,
        occurred_at: String,
        data: Py<EventData>,
    ) -> Self {
        Event {
            event_id,
            subscription_id,
            resource,
            action,
            transaction_id,
            occurred_at,
            data,
        }
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "Event(event_id={}, subscription_id={}, resource={}, action={}, \
             transaction_id={}, occurred_at={}, data={})",
            self.event_id,
            self.subscription_id,
            str_repr(py, &self.resource)?,
            str_repr(py, &self.action)?,
            self.transaction_id,
            str_repr(py, &self.occurred_at)?,
            self.data.bind(py).repr()?
        ))
    }

    fn __eq__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<bool> {
        let Ok(other) = other.cast::<Event>() else {
            return Ok(false);
        };
        let other = other.get();
        Ok(self.event_id == other.event_id
            && self.subscription_id == other.subscription_id
            && self.resource == other.resource
            && self.action == other.action
            && self.transaction_id == other.transaction_id
            && self.occurred_at == other.occurred_at
            && self.data.bind(py).eq(other.data.bind(py))?)
    }
}

/// A JSON value as a Python object, as `json.loads` builds it.
fn to_py<'py>(py: Python<'py>, value: &Value<'_>) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Int(digits) => match digits.parse::<i64>() {
            Ok(n) => n.into_pyobject(py)?.into_any(),
            Err(_) => py.get_type::<PyInt>().call1((digits.as_ref(),))?,
        },
        Value::Float(f) => PyFloat::new(py, *f).into_any(),
        Value::Str(text) => match text.as_str() {
            Some(s) => PyString::new(py, s).into_any(),
            None => PyBytes::new(py, text.as_bytes())
                .call_method1(intern!(py, "decode"), ("utf-8", "surrogatepass"))?,
        },
        Value::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(to_py(py, item)?)?;
            }
            list.into_any()
        }
        Value::Object(members) => object_to_py(py, members)?.into_any(),
    })
}

fn object_to_py<'py>(py: Python<'py>, members: &Object<'_>) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    for (key, item) in members {
        dict.set_item(to_py(py, &Value::Str(key.clone()))?, to_py(py, item)?)?;
    }
    Ok(dict)
}

fn event_error(msg: impl std::fmt::Display) -> PyErr {
    InvalidEventError::new_err(format!("body is not a changewire event: {msg}"))
}

fn field<'v, 'a>(object: &'v Value<'a>, name: &str) -> PyResult<&'v Value<'a>> {
    object
        .get(name)
        .ok_or_else(|| event_error(format_args!("missing field `{name}`")))
}

fn int_field(object: &Value<'_>, name: &str) -> PyResult<i64> {
    match field(object, name)? {
        Value::Int(digits) => digits
            .parse()
            .map_err(|_| event_error(format_args!("`{name}` is out of range"))),
        other => Err(event_error(format_args!(
            "`{name}` must be an integer, found a JSON {}",
            other.type_name()
        ))),
    }
}

fn str_field(object: &Value<'_>, name: &str) -> PyResult<String> {
    match field(object, name)? {
        Value::Str(text) => text
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| event_error(format_args!("`{name}` holds a lone surrogate"))),
        other => Err(event_error(format_args!(
            "`{name}` must be a string, found a JSON {}",
            other.type_name()
        ))),
    }
}

fn dict_field(py: Python<'_>, data: &Object<'_>, name: &str) -> PyResult<Option<Py<PyDict>>> {
    match data.iter().find(|(k, _)| k.as_bytes() == name.as_bytes()) {
        None | Some((_, Value::Null)) => Ok(None),
        Some((_, Value::Object(members))) => Ok(Some(object_to_py(py, members)?.unbind())),
        Some((_, other)) => Err(event_error(format_args!(
            "`data.{name}` must be an object or null, found a JSON {}",
            other.type_name()
        ))),
    }
}

/// Parses a webhook body (bytes) as an `Event`, reading it exactly as
/// `json.loads` does. Call it after verifying the body. Raises
/// `InvalidEventError` for a body that is not an event envelope.
#[pyfunction]
fn parse_event(py: Python<'_>, body: &Bound<'_, PyAny>) -> PyResult<Event> {
    let body = body_arg(body)?;
    let value = Value::parse(body.as_slice()).map_err(event_error)?;
    if !matches!(value, Value::Object(_)) {
        return Err(event_error(format_args!(
            "expected a JSON object, found a JSON {}",
            value.type_name()
        )));
    }
    let action = str_field(&value, "action")?;
    if !matches!(action.as_str(), "create" | "update" | "delete" | "test") {
        return Err(event_error(format_args!(
            "unknown action {action:?}, expected create, update, delete or test"
        )));
    }
    let Value::Object(data) = field(&value, "data")? else {
        return Err(event_error("`data` must be an object"));
    };
    let id = data
        .iter()
        .find(|(k, _)| k.as_bytes() == b"id")
        .ok_or_else(|| event_error("missing field `data.id`"))?;
    let etag = match data.iter().find(|(k, _)| k.as_bytes() == b"etag") {
        None | Some((_, Value::Null)) => None,
        Some((_, Value::Str(t))) => Some(t.as_str().map(str::to_owned).unwrap_or_default()),
        Some((_, other)) => {
            return Err(event_error(format_args!(
                "`data.etag` must be a string or null, found a JSON {}",
                other.type_name()
            )));
        }
    };
    let extra = PyDict::new(py);
    for (key, item) in data {
        if !matches!(key.as_bytes(), b"id" | b"etag" | b"old" | b"new") {
            extra.set_item(to_py(py, &Value::Str(key.clone()))?, to_py(py, item)?)?;
        }
    }
    let data = EventData {
        id: to_py(py, &id.1)?.unbind(),
        etag,
        old: dict_field(py, data, "old")?,
        new: dict_field(py, data, "new")?,
        extra: extra.unbind(),
    };
    Ok(Event {
        event_id: int_field(&value, "event_id")?,
        subscription_id: int_field(&value, "subscription_id")?,
        resource: str_field(&value, "resource")?,
        action,
        transaction_id: int_field(&value, "transaction_id")?,
        occurred_at: str_field(&value, "occurred_at")?,
        data: Py::new(py, data)?,
    })
}

/// Verify and parse changewire (and First Resonance ION) webhooks.
#[pymodule]
mod _changewire {
    #[pymodule_export]
    use super::{
        Diagnosis, Event, EventData, InvalidEventError, WebhookVerificationError, diagnose,
        explain, parse_event, sign_body, sign_standard, verify_request, verify_signature,
    };

    /// The Unicode version whose notion of "printable" the canonical form uses.
    #[pymodule_export]
    const UNICODE_VERSION: &str = changewire_core::canonical::PYTHON_UNICODE_VERSION;

    /// Seconds a Standard Webhooks timestamp may differ from the receiver's clock.
    #[pymodule_export]
    const DEFAULT_TOLERANCE: u64 = changewire_core::standard::DEFAULT_TOLERANCE_SECS;
}
