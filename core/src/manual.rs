//! Notes on the canonical form (documentation only).
//!
//! ## Why Python's `str()`
//!
//! ION's receivers verify with a few lines of Python that format each value
//! of `data` with an f-string, i.e. `str(v)`. Any receiver that follows the
//! documentation therefore depends on CPython's formatting of the objects
//! `json.loads` produced. To be interchangeable with that code, changewire
//! reproduces it exactly rather than defining a cleaner canonical form:
//!
//! * strings at the top level are bare; inside containers they are quoted as
//!   `repr()` quotes them (`'…'`, or `"…"` when the text has `'` but no `"`)
//!   with `\\ \' \n \r \t \xNN \uNNNN \UNNNNNNNN` for everything
//!   `str.isprintable()` rejects (table generated from Python, Unicode
//!   14.0.0 — see [`crate::canonical::PYTHON_UNICODE_VERSION`]);
//! * `True`, `False`, `None` inside containers, `{'k': v}` and `[a, b]` with
//!   `", "` and `": "` separators, the dict's own (body) order;
//! * ints with all their digits; floats as `repr(float)` (`1e-05`, `1e+16`,
//!   `0.1`, `-0.0`, `1.0`, `inf`);
//! * top-level `None` values left out, and pairs sorted by key.
//!
//! ## Known limits
//!
//! * A top-level string with a lone surrogate cannot be encoded by Python's
//!   UTF-8 codec: the reference function raises, and so do we
//!   ([`crate::Error::Unencodable`]). The gateway never produces one.
//! * Characters assigned in Unicode versions after 14.0 count as
//!   non-printable here; a receiver on a newer Python would print them raw.
//!   They can only appear inside nested strings, and the gateway can avoid
//!   the question entirely by offering Standard Webhooks signatures, which
//!   cover the raw body.
//! * Nesting deeper than [`crate::json::MAX_DEPTH`] is refused.
//!
//! ## Why verify the raw body
//!
//! `JSON.parse` in JavaScript moves integer-like keys (`"10"`, `"2"`) to the
//! front of an object and turns `1.0` into `1`; many frameworks re-serialize
//! bodies with sorted keys. Each changes `str()` of a nested value and hence
//! the signature. [`crate::ion::verify_body`] reads the bytes the way Python
//! does, so it agrees with the sender whatever the receiver's language.
