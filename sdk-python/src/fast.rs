//! Fast paths of the bindings: arguments read straight from the Python
//! objects into reused buffers, without creating Python objects.
//!
//! * `verify_signature`: `data` is formatted straight into the signed
//!   message, without building core's `json::Value` tree. It covers what
//!   `json.loads` produces: exact `dict` (with exact `str` keys), `list`,
//!   `str`, `int` within i64, `float`, `bool` and `None`, and exact `str`
//!   arguments whose text encodes to UTF-8. For anything else — a subclass, a
//!   tuple, a `Decimal`, a big int, a lone surrogate where the reference would
//!   encode it, a non-ASCII signature, nesting deeper than any body — it gives
//!   up and the general path, which handles every case the reference does,
//!   decides. So it never decides an outcome of its own: when it answers, the
//!   general path would answer the same.
//! * `verify_request`: exact `str` secret and URL, and an exact `dict` of
//!   exact `str` headers with ASCII values for the names verification reads;
//!   anything else takes the general path.
//!
//! Why borrowed references are sound here: everything below only reads
//! (type checks, `PyDict_Next`, `PyList_GetItem`, `PyUnicode_GetLength`,
//! `PyUnicode_AsUCS4`, `PyLong_AsLongLongAndOverflow`, `PyFloat_AsDouble` on
//! exact types, all in the limited API of 3.9), so no Python code runs, no
//! Python object is allocated (no garbage collection, no finalizer) and no
//! reference count changes while the borrowed pointers are in use, all with
//! the GIL held. On a free-threaded interpreter running without a GIL (a
//! build from source; the abi3 wheel cannot load there) other threads could
//! mutate the containers meanwhile, so the fast paths stand aside.

use std::cell::RefCell;
use std::ops::Range;

use changewire_core::canonical::{
    write_code_points_repr, write_code_points_utf8, write_python_float,
};
use changewire_core::ion;
use changewire_core::json::MAX_DEPTH;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

/// The general path decides.
struct GiveUp;

type Step<T = ()> = Result<T, GiveUp>;

/// Buffers reused from one call to the next on a thread.
#[derive(Default)]
struct Scratch {
    /// The code points of one `str`.
    code_points: Vec<u32>,
    /// Keys and formatted values of `data`'s non-`None` members.
    values: Vec<u8>,
    /// (key, value) ranges of `values`.
    params: Vec<(Range<usize>, Range<usize>)>,
    /// The signed message.
    message: Vec<u8>,
    secret: Vec<u8>,
    signature: Vec<u8>,
}

/// Buffers larger than this are not kept for the next call.
const KEEP_CAPACITY: usize = 256 * 1024;

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::default();
}

/// Whether one GIL serializes all Python threads: false only on a
/// free-threaded interpreter running without it (checked once; such an
/// interpreter may turn the GIL on later, never off).
fn gil_serializes(py: Python<'_>) -> bool {
    static GIL: PyOnceLock<bool> = PyOnceLock::new();
    *GIL.get_or_init(py, || {
        py.import("sys")
            .and_then(|sys| sys.getattr("_is_gil_enabled"))
            .and_then(|is_enabled| is_enabled.call0())
            .and_then(|enabled| enabled.extract::<bool>())
            // Before 3.13 there is always a GIL.
            .unwrap_or(true)
    })
}

/// `verify_signature(secret, url, data, signature)` for plain arguments:
/// `Some(result)`, or `None` when the general path must decide.
pub(crate) fn verify_signature(
    secret: &Bound<'_, PyAny>,
    url: &Bound<'_, PyAny>,
    data: &Bound<'_, PyAny>,
    signature: &Bound<'_, PyAny>,
) -> Option<bool> {
    if !gil_serializes(data.py()) {
        return None;
    }
    let run = |scratch: &mut Scratch| {
        // SAFETY: the pointers come from live `Bound`s (the GIL is held);
        // see the module documentation for why borrowing inside is sound.
        let result = unsafe {
            verify(
                secret.as_ptr(),
                url.as_ptr(),
                data.as_ptr(),
                signature.as_ptr(),
                scratch,
            )
        };
        if scratch.values.capacity() > KEEP_CAPACITY
            || scratch.message.capacity() > KEEP_CAPACITY
            || scratch.code_points.capacity() > KEEP_CAPACITY / 4
        {
            *scratch = Scratch::default();
        }
        result.ok()
    };
    match SCRATCH.try_with(|cell| cell.try_borrow_mut().ok().map(|mut s| run(&mut s))) {
        Ok(Some(result)) => result,
        _ => run(&mut Scratch::default()),
    }
}

/// # Safety
/// Valid object pointers, GIL held.
unsafe fn verify(
    secret: *mut ffi::PyObject,
    url: *mut ffi::PyObject,
    data: *mut ffi::PyObject,
    signature: *mut ffi::PyObject,
    s: &mut Scratch,
) -> Step<bool> {
    unsafe {
        if ffi::PyUnicode_CheckExact(secret) == 0
            || ffi::PyUnicode_CheckExact(url) == 0
            || ffi::PyDict_CheckExact(data) == 0
            || ffi::PyUnicode_CheckExact(signature) == 0
        {
            return Err(GiveUp);
        }
        let Scratch {
            code_points: buf,
            values,
            params,
            message,
            secret: secret_utf8,
            signature: signature_ascii,
        } = s;
        values.clear();
        params.clear();
        message.clear();
        secret_utf8.clear();
        signature_ascii.clear();

        // `secret.encode("utf-8")`.
        utf8(secret_utf8, code_points(secret, buf)?)?;
        // `hmac.compare_digest` takes ASCII `str` only (the general path raises).
        let text = code_points(signature, buf)?;
        if text.iter().any(|&cp| cp >= 0x80) {
            return Err(GiveUp);
        }
        signature_ascii.extend(text.iter().map(|&cp| cp as u8));

        // `[f"{k}:{v}" for k, v in sorted(data.items()) if v is not None]`
        let mut pos: ffi::Py_ssize_t = 0;
        let mut key: *mut ffi::PyObject = std::ptr::null_mut();
        let mut value: *mut ffi::PyObject = std::ptr::null_mut();
        while ffi::PyDict_Next(data, &mut pos, &mut key, &mut value) != 0 {
            if ffi::PyUnicode_CheckExact(key) == 0 {
                return Err(GiveUp);
            }
            if value == ffi::Py_None() {
                continue;
            }
            let key_start = values.len();
            utf8(values, code_points(key, buf)?)?;
            let value_start = values.len();
            if ffi::PyUnicode_CheckExact(value) != 0 {
                // `str(s)` is `s` itself.
                utf8(values, code_points(value, buf)?)?;
            } else {
                // `str()` of the other JSON types is their `repr()`.
                write_repr(value, 1, values, buf)?;
            }
            params.push((key_start..value_start, value_start..values.len()));
        }
        // Keys of a dict are unique: sorting the items sorts the keys; UTF-8
        // byte order is code point order, Python's `str` order.
        params.sort_unstable_by(|a, b| values[a.0.clone()].cmp(&values[b.0.clone()]));

        // f"{url}?{'&'.join(params)}".encode("utf-8")
        utf8(message, code_points(url, buf)?)?;
        message.reserve(1 + values.len() + 2 * params.len());
        message.push(b'?');
        for (i, (key, value)) in params.iter().enumerate() {
            if i > 0 {
                message.push(b'&');
            }
            message.extend_from_slice(&values[key.clone()]);
            message.push(b':');
            message.extend_from_slice(&values[value.clone()]);
        }
        Ok(ion::verify_message(secret_utf8, message, signature_ascii).is_ok())
    }
}

fn utf8(out: &mut Vec<u8>, text: &[u32]) -> Step {
    // A lone surrogate: the reference's encode raises; the general path raises it.
    if write_code_points_utf8(out, text) {
        Ok(())
    } else {
        Err(GiveUp)
    }
}

/// The code points of an exact `str`, in `buf`.
///
/// # Safety
/// `s` is an exact `str`, GIL held.
unsafe fn code_points(s: *mut ffi::PyObject, buf: &mut Vec<u32>) -> Step<&[u32]> {
    unsafe {
        let len = ffi::PyUnicode_GetLength(s);
        let Ok(n) = usize::try_from(len) else {
            ffi::PyErr_Clear();
            return Err(GiveUp);
        };
        if buf.len() < n {
            buf.resize(n, 0);
        }
        if n > 0 && ffi::PyUnicode_AsUCS4(s, buf.as_mut_ptr(), len, 0).is_null() {
            ffi::PyErr_Clear();
            return Err(GiveUp);
        }
        Ok(&buf[..n])
    }
}

/// Appends `repr(value)` for JSON types.
///
/// # Safety
/// `value` is a valid object, GIL held.
unsafe fn write_repr(
    value: *mut ffi::PyObject,
    depth: usize,
    out: &mut Vec<u8>,
    buf: &mut Vec<u32>,
) -> Step {
    unsafe {
        if depth > MAX_DEPTH {
            // Deeper than any body, maybe a cycle: Python's own repr decides.
            return Err(GiveUp);
        }
        if value == ffi::Py_None() {
            out.extend_from_slice(b"None");
        } else if value == ffi::Py_True() {
            out.extend_from_slice(b"True");
        } else if value == ffi::Py_False() {
            out.extend_from_slice(b"False");
        } else if ffi::PyUnicode_CheckExact(value) != 0 {
            let text = code_points(value, buf)?;
            write_code_points_repr(out, text);
        } else if ffi::PyLong_CheckExact(value) != 0 {
            let mut overflow = 0;
            let n = ffi::PyLong_AsLongLongAndOverflow(value, &mut overflow);
            if overflow != 0 {
                // Beyond i64: Python's str() (and its digit limit) decides.
                return Err(GiveUp);
            }
            if n == -1 && !ffi::PyErr_Occurred().is_null() {
                ffi::PyErr_Clear();
                return Err(GiveUp);
            }
            write_i64(out, n);
        } else if ffi::PyFloat_CheckExact(value) != 0 {
            write_python_float(out, ffi::PyFloat_AsDouble(value));
        } else if ffi::PyDict_CheckExact(value) != 0 {
            out.push(b'{');
            let mut pos: ffi::Py_ssize_t = 0;
            let mut key: *mut ffi::PyObject = std::ptr::null_mut();
            let mut item: *mut ffi::PyObject = std::ptr::null_mut();
            let mut first = true;
            while ffi::PyDict_Next(value, &mut pos, &mut key, &mut item) != 0 {
                if ffi::PyUnicode_CheckExact(key) == 0 {
                    return Err(GiveUp);
                }
                if !first {
                    out.extend_from_slice(b", ");
                }
                first = false;
                let text = code_points(key, buf)?;
                write_code_points_repr(out, text);
                out.extend_from_slice(b": ");
                write_repr(item, depth + 1, out, buf)?;
            }
            out.push(b'}');
        } else if ffi::PyList_CheckExact(value) != 0 {
            out.push(b'[');
            let len = ffi::PyList_Size(value);
            for i in 0..len {
                if i > 0 {
                    out.extend_from_slice(b", ");
                }
                let item = ffi::PyList_GetItem(value, i);
                if item.is_null() {
                    ffi::PyErr_Clear();
                    return Err(GiveUp);
                }
                write_repr(item, depth + 1, out, buf)?;
            }
            out.push(b']');
        } else {
            return Err(GiveUp);
        }
        Ok(())
    }
}

/// Appends the decimal digits of `n` (Python's `str(int)`).
fn write_i64(out: &mut Vec<u8>, n: i64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut rest = n.unsigned_abs();
    loop {
        at -= 1;
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    if n < 0 {
        out.push(b'-');
    }
    out.extend_from_slice(&digits[at..]);
}

/// `verify_request`'s `str` arguments and headers, read without creating
/// Python objects; reused from one call to the next on a thread.
#[derive(Default)]
pub(crate) struct RequestScratch {
    code_points: Vec<u32>,
    pub(crate) secret: Vec<u8>,
    pub(crate) url: Vec<u8>,
    /// Values of the headers found, ASCII.
    header_values: Vec<u8>,
    /// (name as verification reads it, range of `header_values`), dict order.
    headers: Vec<(&'static str, Range<usize>)>,
}

thread_local! {
    static REQUEST: RefCell<RequestScratch> = RefCell::default();
}

/// Runs `f` with this thread's request scratch (or a fresh one if it is in
/// use, should `f` ever re-enter through Python code).
pub(crate) fn with_request_scratch<T>(f: impl FnOnce(&mut RequestScratch) -> T) -> T {
    let mut f = Some(f);
    let on_thread = REQUEST.try_with(|cell| {
        let mut scratch = cell.try_borrow_mut().ok()?;
        let result = f.take().map(|f| f(&mut scratch));
        if scratch.code_points.capacity() > KEEP_CAPACITY / 4
            || scratch.secret.capacity() > KEEP_CAPACITY
            || scratch.url.capacity() > KEEP_CAPACITY
            || scratch.header_values.capacity() > KEEP_CAPACITY
        {
            *scratch = RequestScratch::default();
        }
        result
    });
    match (on_thread, f) {
        (Ok(Some(result)), _) => result,
        (_, Some(f)) => f(&mut RequestScratch::default()),
        (_, None) => unreachable!("the closure ran but gave no result"),
    }
}

impl RequestScratch {
    /// Reads an exact `str` as UTF-8 into `out`: false when `obj` is not an
    /// exact `str` or holds a lone surrogate (the general path decides).
    fn read_str(obj: &Bound<'_, PyAny>, out: &mut Vec<u8>, buf: &mut Vec<u32>) -> bool {
        out.clear();
        // SAFETY: a live object, GIL held; only reads (see the module docs).
        unsafe {
            if ffi::PyUnicode_CheckExact(obj.as_ptr()) == 0 {
                return false;
            }
            code_points(obj.as_ptr(), buf).is_ok_and(|text| write_code_points_utf8(out, text))
        }
    }

    /// Reads the secret into [`RequestScratch::secret`] when it is a plain `str`.
    pub(crate) fn read_secret(&mut self, obj: &Bound<'_, PyAny>) -> bool {
        Self::read_str(obj, &mut self.secret, &mut self.code_points)
    }

    /// Reads the URL into [`RequestScratch::url`] when it is a plain `str`.
    pub(crate) fn read_url(&mut self, obj: &Bound<'_, PyAny>) -> bool {
        Self::read_str(obj, &mut self.url, &mut self.code_points)
    }

    /// Collects the headers in `names` (compared case-insensitively, as
    /// verification compares them) from an exact `dict` of exact `str` names
    /// and values; false (the general path reads them) for anything else,
    /// including a value it would read that is not ASCII.
    pub(crate) fn read_dict_headers(
        &mut self,
        headers: &Bound<'_, PyAny>,
        names: &[&'static str],
    ) -> bool {
        self.header_values.clear();
        self.headers.clear();
        if !gil_serializes(headers.py()) {
            return false;
        }
        // SAFETY: a live object, GIL held; only reads (see the module docs).
        unsafe { self.read_dict_headers_raw(headers.as_ptr(), names).is_ok() }
    }

    unsafe fn read_dict_headers_raw(
        &mut self,
        dict: *mut ffi::PyObject,
        names: &[&'static str],
    ) -> Step {
        unsafe {
            if ffi::PyDict_CheckExact(dict) == 0 {
                return Err(GiveUp);
            }
            let mut pos: ffi::Py_ssize_t = 0;
            let mut key: *mut ffi::PyObject = std::ptr::null_mut();
            let mut value: *mut ffi::PyObject = std::ptr::null_mut();
            while ffi::PyDict_Next(dict, &mut pos, &mut key, &mut value) != 0 {
                if ffi::PyUnicode_CheckExact(key) == 0 {
                    return Err(GiveUp);
                }
                // Most headers are skipped on their length alone.
                let len = ffi::PyUnicode_GetLength(key);
                if !names.iter().any(|n| n.len() as ffi::Py_ssize_t == len) {
                    continue;
                }
                let text = code_points(key, &mut self.code_points)?;
                let Some(name) = names.iter().copied().find(|n| {
                    n.len() == text.len()
                        && n.bytes()
                            .zip(text)
                            .all(|(b, &cp)| cp < 0x80 && (cp as u8).eq_ignore_ascii_case(&b))
                }) else {
                    continue;
                };
                if ffi::PyUnicode_CheckExact(value) == 0 {
                    return Err(GiveUp);
                }
                let text = code_points(value, &mut self.code_points)?;
                if text.iter().any(|&cp| cp >= 0x80) {
                    return Err(GiveUp);
                }
                let start = self.header_values.len();
                self.header_values.extend(text.iter().map(|&cp| cp as u8));
                self.headers.push((name, start..self.header_values.len()));
            }
            Ok(())
        }
    }

    /// The headers read by [`RequestScratch::read_dict_headers`].
    pub(crate) fn dict_headers(&self) -> FoundHeaders<'_> {
        FoundHeaders {
            values: &self.header_values,
            headers: &self.headers,
        }
    }
}

/// Headers found by [`RequestScratch::read_dict_headers`], in dict order.
pub(crate) struct FoundHeaders<'s> {
    values: &'s [u8],
    headers: &'s [(&'static str, Range<usize>)],
}

impl changewire_core::Headers for FoundHeaders<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        let (_, range) = self
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))?;
        // The values are ASCII.
        std::str::from_utf8(&self.values[range.clone()]).ok()
    }
}

impl FoundHeaders<'_> {
    /// Whether a header of that name was found.
    pub(crate) fn has(&self, name: &str) -> bool {
        self.headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(name))
    }
}
