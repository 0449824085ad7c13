//! The ION signed string straight from a raw body, in one pass.
//!
//! [`with_signed`] drives the same reader as [`Value::parse`] token by token,
//! but instead of building a tree it writes each top-level value of `data`
//! as Python's `str()` (nested values as `repr()`) while it reads: no
//! allocation per container, no second walk, no UTF-8 re-validation, and
//! plain decimal floats copied without a round trip through `f64`.
//!
//! It covers the bodies receivers get. For anything unusual — a repeated key
//! anywhere in `data` or a repeated `data`, a lone surrogate in a top-level
//! key or string of `data`, a body that is not an object with an object
//! `data`, or any JSON error — it gives up and returns `None`, and the caller
//! takes the tree path ([`Value::parse`] + [`crate::ion::signed_string`]),
//! which is the reference. So this path never decides an outcome of its own:
//! it produces exactly the bytes the tree path would, or nothing.
//!
//! [`Value::parse`]: crate::json::Value::parse

use std::cell::RefCell;
use std::ops::Range;

use super::float::{write_float_literal, write_float_repr};
use std::borrow::Cow;

use super::{has_surrogate, is_python_printable, write_bytes_repr, write_hex_escape};
use crate::error::JsonError;
use crate::json::{LINEAR_KEY_SCAN, MAX_DEPTH, Parser, decode_code_point, strip_bom};

/// Why the fast path gave up; the tree path then decides.
struct GiveUp;

impl From<JsonError> for GiveUp {
    fn from(_: JsonError) -> Self {
        GiveUp
    }
}

type Step<T = ()> = Result<T, GiveUp>;

/// A member of `data`: its key and formatted value, as ranges of
/// [`Buffers::values`]; `None` for a `null` value, which is not signed.
struct Param {
    key: Range<usize>,
    value: Option<Range<usize>>,
}

/// Buffers reused from one call to the next on a thread.
#[derive(Default)]
struct Buffers {
    /// Keys and formatted values of `data`'s members, in body order.
    values: Vec<u8>,
    /// One nested string, unescaped, before `repr()`.
    unescaped: Vec<u8>,
    params: Vec<Param>,
    /// The containers open around the value being written.
    open: Vec<Open>,
    /// The signed message: `url?k:v&k:v…`.
    message: Vec<u8>,
}

impl Buffers {
    fn clear(&mut self) {
        self.values.clear();
        self.unescaped.clear();
        self.params.clear();
        self.open.clear();
        self.message.clear();
    }
}

/// Buffers larger than this are not kept for the next call.
const KEEP_CAPACITY: usize = 256 * 1024;

thread_local! {
    static BUFFERS: RefCell<Buffers> = RefCell::new(Buffers::default());
}

/// Builds the exact message the ION scheme signs for `url` and a raw `body`
/// and hands it to `f`; `None` when the body needs the tree path.
pub(crate) fn with_signed<R>(url: &str, body: &[u8], f: impl FnOnce(&[u8]) -> R) -> Option<R> {
    let mut f = Some(f);
    let mut run = |buffers: &mut Buffers| {
        buffers.clear();
        let built = build(url, body, buffers).is_ok();
        let result = if built {
            f.take().map(|f| f(&buffers.message))
        } else {
            None
        };
        if buffers.message.capacity() > KEEP_CAPACITY || buffers.values.capacity() > KEEP_CAPACITY {
            *buffers = Buffers::default();
        }
        result
    };
    // The thread's buffers, or fresh ones if they are unavailable (during
    // thread teardown, or if `f` ever re-entered).
    match BUFFERS.try_with(|cell| {
        cell.try_borrow_mut()
            .ok()
            .map(|mut buffers| run(&mut buffers))
    }) {
        Ok(Some(result)) => result,
        _ => run(&mut Buffers::default()),
    }
}

fn expect(p: &Parser<'_>, byte: u8) -> Step {
    if p.peek() == Some(byte) {
        Ok(())
    } else {
        Err(GiveUp)
    }
}

fn build(url: &str, body: &[u8], buffers: &mut Buffers) -> Step {
    let mut p = Parser::new(strip_bom(body));
    p.skip_whitespace();
    // The envelope: an object at depth 1, as `Value::parse` counts.
    expect(&p, b'{')?;
    p.bump();
    p.skip_whitespace();
    let mut seen_data = false;
    loop {
        expect(&p, b'"')?;
        let key = p.string()?;
        p.skip_whitespace();
        expect(&p, b':')?;
        p.bump();
        p.skip_whitespace();
        if key.as_bytes() == b"data" {
            if seen_data {
                return Err(GiveUp);
            }
            seen_data = true;
            data(&mut p, buffers)?;
        } else {
            // Outside `data` nothing is signed, but it must still be JSON.
            p.value(1)?;
        }
        p.skip_whitespace();
        match p.peek() {
            Some(b',') => {
                p.bump();
                p.skip_whitespace();
            }
            Some(b'}') => {
                p.bump();
                break;
            }
            _ => return Err(GiveUp),
        }
    }
    p.skip_whitespace();
    if !p.at_end() || !seen_data {
        return Err(GiveUp);
    }

    let Buffers {
        values,
        params,
        message,
        ..
    } = buffers;
    // `sorted(data.items())`: keys are unique (repeats gave up), so by key.
    params.sort_unstable_by(|a, b| values[a.key.clone()].cmp(&values[b.key.clone()]));
    if params
        .windows(2)
        .any(|w| values[w[0].key.clone()] == values[w[1].key.clone()])
    {
        return Err(GiveUp);
    }
    message.reserve(url.len() + 1 + values.len() + 2 * params.len());
    message.extend_from_slice(url.as_bytes());
    message.push(b'?');
    let mut first = true;
    for param in params.iter() {
        let Some(value) = &param.value else {
            continue;
        };
        if !first {
            message.push(b'&');
        }
        first = false;
        message.extend_from_slice(&values[param.key.clone()]);
        message.push(b':');
        message.extend_from_slice(&values[value.clone()]);
    }
    Ok(())
}

/// The members of `data` (an object at depth 2), each value formatted with
/// `str()` into `values`.
fn data<'a>(p: &mut Parser<'a>, buffers: &mut Buffers) -> Step {
    expect(p, b'{')?;
    p.bump();
    p.skip_whitespace();
    if p.peek() == Some(b'}') {
        p.bump();
        return Ok(());
    }
    // Keys of the nested objects being written, to find repeats.
    let mut keys: Vec<Cow<'a, [u8]>> = Vec::new();
    loop {
        expect(p, b'"')?;
        let values = &mut buffers.values;
        let start = values.len();
        if let Some(raw) = p.string_with(values)? {
            values.extend_from_slice(raw);
        }
        let key = start..values.len();
        // `k:v` is encoded as UTF-8, which refuses a lone surrogate.
        if has_surrogate(&values[key.clone()]) {
            return Err(GiveUp);
        }
        p.skip_whitespace();
        expect(p, b':')?;
        p.bump();
        p.skip_whitespace();
        let start = values.len();
        let value = match p.peek() {
            Some(b'n') if p.eat_literal(b"null") => None,
            Some(b'"') => {
                // Top-level strings are signed bare (`str(s)` is `s`).
                if let Some(raw) = p.string_with(values)? {
                    values.extend_from_slice(raw);
                }
                if has_surrogate(&values[start..]) {
                    return Err(GiveUp);
                }
                Some(start..values.len())
            }
            _ => {
                repr(
                    p,
                    2,
                    values,
                    &mut buffers.unescaped,
                    &mut keys,
                    &mut buffers.open,
                )?;
                Some(start..values.len())
            }
        };
        buffers.params.push(Param { key, value });
        p.skip_whitespace();
        match p.peek() {
            Some(b',') => {
                p.bump();
                p.skip_whitespace();
            }
            Some(b'}') => {
                p.bump();
                return Ok(());
            }
            _ => return Err(GiveUp),
        }
    }
}

/// An open container of a nested value.
enum Open {
    /// An object; its keys so far are `keys[first..]`, `hashes` their bits.
    Object {
        first: usize,
        hashes: u64,
    },
    Array,
}

/// Writes `repr()` of the value at the parser, which sits at `depth` (its
/// containers are at `depth + 1`, as `Value::parse` counts). Iterative, with
/// an explicit stack, so nesting costs no native stack.
fn repr<'a>(
    p: &mut Parser<'a>,
    depth: usize,
    out: &mut Vec<u8>,
    unescaped: &mut Vec<u8>,
    keys: &mut Vec<Cow<'a, [u8]>>,
    open: &mut Vec<Open>,
) -> Step {
    open.clear();
    loop {
        // At a value.
        match p.peek() {
            Some(b'{') => {
                if depth + open.len() + 1 > MAX_DEPTH {
                    return Err(GiveUp);
                }
                p.bump();
                out.push(b'{');
                p.skip_whitespace();
                if p.peek() == Some(b'}') {
                    p.bump();
                    out.push(b'}');
                } else {
                    open.push(Open::Object {
                        first: keys.len(),
                        hashes: 0,
                    });
                    member_key(p, out, unescaped, keys, open)?;
                    continue;
                }
            }
            Some(b'[') => {
                if depth + open.len() + 1 > MAX_DEPTH {
                    return Err(GiveUp);
                }
                p.bump();
                out.push(b'[');
                p.skip_whitespace();
                if p.peek() == Some(b']') {
                    p.bump();
                    out.push(b']');
                } else {
                    open.push(Open::Array);
                    continue;
                }
            }
            Some(b'"') => {
                string_repr(p, out, unescaped)?;
            }
            Some(b'n') if p.eat_literal(b"null") => out.extend_from_slice(b"None"),
            Some(b't') if p.eat_literal(b"true") => out.extend_from_slice(b"True"),
            Some(b'f') if p.eat_literal(b"false") => out.extend_from_slice(b"False"),
            Some(b'N') if p.eat_literal(b"NaN") => out.extend_from_slice(b"nan"),
            Some(b'I') if p.eat_literal(b"Infinity") => out.extend_from_slice(b"inf"),
            Some(b'-') if p.eat_literal(b"-Infinity") => out.extend_from_slice(b"-inf"),
            Some(b'-' | b'0'..=b'9') => {
                let (text, is_float) = p.number_text()?;
                if !is_float {
                    out.extend_from_slice(if text == "-0" { b"0" } else { text.as_bytes() });
                } else if !write_float_literal(out, text) {
                    let value: f64 = text.parse().map_err(|_| GiveUp)?;
                    write_float_repr(out, value);
                }
            }
            _ => return Err(GiveUp),
        }
        // After a value: close containers until one continues.
        loop {
            p.skip_whitespace();
            match (open.last(), p.peek()) {
                (None, _) => return Ok(()),
                (Some(_), Some(b',')) => {
                    p.bump();
                    p.skip_whitespace();
                    out.extend_from_slice(b", ");
                    if matches!(open.last(), Some(Open::Object { .. })) {
                        member_key(p, out, unescaped, keys, open)?;
                    }
                    break;
                }
                (Some(Open::Object { first, .. }), Some(b'}')) => {
                    let first = *first;
                    p.bump();
                    if keys.len() - first > LINEAR_KEY_SCAN {
                        let mut sorted: Vec<&[u8]> = keys[first..].iter().map(|k| &k[..]).collect();
                        sorted.sort_unstable();
                        if sorted.windows(2).any(|w| w[0] == w[1]) {
                            return Err(GiveUp);
                        }
                    }
                    keys.truncate(first);
                    out.push(b'}');
                    open.pop();
                }
                (Some(Open::Array), Some(b']')) => {
                    p.bump();
                    out.push(b']');
                    open.pop();
                }
                _ => return Err(GiveUp),
            }
        }
    }
}

/// Reads and writes an object member's key and the `: ` after it; the
/// parser is then at the member's value.
fn member_key<'a>(
    p: &mut Parser<'a>,
    out: &mut Vec<u8>,
    unescaped: &mut Vec<u8>,
    keys: &mut Vec<Cow<'a, [u8]>>,
    open: &mut [Open],
) -> Step {
    let Some(Open::Object { first, hashes }) = open.last_mut() else {
        return Err(GiveUp);
    };
    expect(p, b'"')?;
    let key = match string_repr(p, out, unescaped)? {
        Some(raw) => Cow::Borrowed(raw),
        None => Cow::Owned(unescaped.clone()),
    };
    // A repeated key changes the dict (first position, last value): leave
    // that to the tree path. Small objects are checked as keys arrive (with
    // one bit per key hash, comparing only on a collision), large ones once
    // they are complete.
    let seen = &keys[*first..];
    if seen.len() < LINEAR_KEY_SCAN {
        let bit = key_bit(&key);
        if *hashes & bit != 0 && seen.contains(&key) {
            return Err(GiveUp);
        }
        *hashes |= bit;
    }
    keys.push(key);
    out.extend_from_slice(b": ");
    p.skip_whitespace();
    expect(p, b':')?;
    p.bump();
    p.skip_whitespace();
    Ok(())
}

/// A bit for a key, from its length and end bytes.
fn key_bit(key: &[u8]) -> u64 {
    let (first, last) = (key.first().copied(), key.last().copied());
    let h = (key.len() as u32)
        .wrapping_mul(0x9E37_79B1)
        .wrapping_add(u32::from(first.unwrap_or(0)).wrapping_mul(0x85EB_CA6B))
        .wrapping_add(u32::from(last.unwrap_or(0)).wrapping_mul(0xC2B2_AE35));
    1 << (h >> 26)
}

/// Writes `repr()` of the string at the parser and steps over it. Returns
/// its content: borrowed from the input when it has no escape, otherwise
/// `None`, with the unescaped content left in `unescaped`.
fn string_repr<'a>(
    p: &mut Parser<'a>,
    out: &mut Vec<u8>,
    unescaped: &mut Vec<u8>,
) -> Step<Option<&'a [u8]>> {
    let start = out.len();
    if let Some((consumed, raw)) = plain_string_repr(p.rest(), out) {
        p.advance(consumed);
        return Ok(Some(raw));
    }
    // An escape (or an error, which the reader reports): unescape, then repr.
    out.truncate(start);
    unescaped.clear();
    match p.string_with(unescaped)? {
        Some(raw) => {
            write_bytes_repr(out, raw);
            Ok(Some(raw))
        }
        None => {
            write_bytes_repr(out, unescaped);
            Ok(None)
        }
    }
}

/// `repr()` of a JSON string without escapes, read and written in one pass:
/// `(bytes consumed with both quotes, content)`, or `None` at an escape or
/// anything the reader refuses (then `out` holds a partial write).
///
/// Without escapes the content holds no `"` and no `\`, so repr() needs no
/// quote escaping: `"…"` when it holds a `'`, `'…'` otherwise. What remains is
/// DEL and non-printable code points. The checks are the reader's own:
/// control characters refused, generalized UTF-8 decoded.
fn plain_string_repr<'a>(input: &'a [u8], out: &mut Vec<u8>) -> Option<(usize, &'a [u8])> {
    let quote_at = out.len();
    out.push(b'\'');
    let mut has_single = false;
    let mut pos = 1;
    loop {
        let run = repr_run(&input[pos..]);
        out.extend_from_slice(&input[pos..pos + run]);
        pos += run;
        match *input.get(pos)? {
            b'"' => break,
            b'\'' => {
                has_single = true;
                out.push(b'\'');
                pos += 1;
            }
            0x7F => {
                out.extend_from_slice(b"\\x7f");
                pos += 1;
            }
            0x80.. => {
                let (cp, len) = decode_code_point(input, pos)?;
                if is_python_printable(cp) {
                    out.extend_from_slice(&input[pos..pos + len]);
                } else {
                    write_hex_escape(out, cp);
                }
                pos += len;
            }
            // `\\` (an escape) or a control character.
            _ => return None,
        }
    }
    if has_single {
        out[quote_at] = b'"';
        out.push(b'"');
    } else {
        out.push(b'\'');
    }
    Some((pos + 1, &input[1..pos]))
}

/// Length of the leading run of printable ASCII other than `"`, `'` and `\`.
/// Reads eight bytes at a time; the first flagged byte of a word is exact
/// (borrows only carry into higher bytes).
fn repr_run(bytes: &[u8]) -> usize {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let has_byte = |x: u64, b: u8| {
        let y = x ^ (LO * u64::from(b));
        y.wrapping_sub(LO) & !y & HI
    };
    let stops = |b: u8| !(0x20..0x7F).contains(&b) || matches!(b, b'"' | b'\'' | b'\\');
    let mut pos = 0;
    while let Some(chunk) = bytes.get(pos..pos + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word);
        // >= 0x80, < 0x20, 0x7F, and the three quotes/backslash.
        let special = (x & HI)
            | (x.wrapping_sub(LO * 0x20) & !x & HI)
            | has_byte(x, 0x7F)
            | has_byte(x, b'"')
            | has_byte(x, b'\'')
            | has_byte(x, b'\\');
        if special != 0 {
            return pos + (special.trailing_zeros() / 8) as usize;
        }
        pos += 8;
    }
    while bytes.get(pos).is_some_and(|&b| !stops(b)) {
        pos += 1;
    }
    pos
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::ion;
    use crate::json::Value;

    /// The tree path's signed string, or `None` when it refuses the body.
    fn tree(url: &str, body: &[u8]) -> Option<Vec<u8>> {
        let value = Value::parse(body).ok()?;
        let data = ion::data_of(&value).ok()?;
        ion::signed_string(url, data).ok().map(String::into_bytes)
    }

    fn fast(url: &str, body: &[u8]) -> Option<Vec<u8>> {
        with_signed(url, body, <[u8]>::to_vec)
    }

    /// The fast path agrees with the tree path whenever it answers, and
    /// answers only when the tree path succeeds. Returns whether it answered.
    fn agree(body: &[u8]) -> bool {
        let url = "https://r.test/h";
        match fast(url, body) {
            Some(got) => {
                let want = tree(url, body);
                assert_eq!(
                    Some(String::from_utf8_lossy(&got)),
                    want.as_deref().map(String::from_utf8_lossy),
                    "body {:?}",
                    String::from_utf8_lossy(body)
                );
                true
            }
            None => false,
        }
    }

    fn takes_fast_path(body: &str) {
        assert!(agree(body.as_bytes()), "fell back: {body}");
    }

    fn falls_back(body: &str) {
        assert!(!agree(body.as_bytes()), "fast path answered: {body}");
    }

    #[test]
    fn every_shared_vector_agrees() {
        #[derive(serde::Deserialize)]
        struct File {
            tests: Vec<Case>,
        }
        #[derive(serde::Deserialize)]
        struct Case {
            body: String,
        }
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/vectors/ion_signature.json"
        );
        let text = std::fs::read_to_string(path).unwrap();
        let file: File = serde_json::from_str(&text).unwrap();
        let fast_count = file
            .tests
            .iter()
            .filter(|case| agree(case.body.as_bytes()))
            .count();
        // Most vectors are ordinary bodies and must not need the tree.
        assert!(
            fast_count * 10 > file.tests.len() * 8,
            "{fast_count} of {} on the fast path",
            file.tests.len()
        );
    }

    #[test]
    fn ordinary_bodies_take_the_fast_path() {
        takes_fast_path(r#"{"event_id": 1, "data": {}}"#);
        takes_fast_path("\u{feff}{\"data\": {\"b\": 1, \"a\": null}} \n");
        takes_fast_path(
            r#" { "x" : [1, {"y": null}] , "data" : { "z" : "it's" , "a-" : [ "it's", "\"q\"", "a'b\"c" ] , "a" : {"k": [], "l": {}} } } "#,
        );
        takes_fast_path(
            r#"{"data": {"s": "tab\there \u00e9\ud83d\ude00 \u2028", "n": ["\u0000\u007f\u0085\u00ad\ud800"]}}"#,
        );
        takes_fast_path(
            r#"{"data": {"t": true, "f": false, "n": [null, true, false, NaN, Infinity, -Infinity, -0, 0, -12]}}"#,
        );
        takes_fast_path("{\"data\": {\"raw\": [\"\u{7f}\u{85}\u{a0}é😀\u{e000}\u{10ffff}\"]}}");
        // Escaped keys that differ only in spelling are different keys... unless equal once unescaped.
        takes_fast_path(r#"{"data": {"o": {"a": 1, "\u0062": 2}}}"#);
    }

    #[test]
    fn unusual_bodies_fall_back() {
        falls_back(r#"{"data": {"a": 1, "a": 2}}"#);
        falls_back(r#"{"data": {"a": 1, "\u0061": null}}"#);
        falls_back(r#"{"data": {"o": {"a": 1, "\u0061": 2}}}"#);
        falls_back(r#"{"data": {}, "data": {}}"#);
        falls_back(r#"{"data": {"k": "\udc00"}}"#);
        falls_back(r#"{"data": {"\udc00": 1}}"#);
        falls_back(r#"{"data": []}"#);
        falls_back(r#"[]"#);
        falls_back(r#"{}"#);
        falls_back(r#"{"data": {"a": 1,}}"#);
        falls_back(r#"{"data": {"a": [1,]}}"#);
        falls_back(r#"{"data": {"a": "x"}} x"#);
        falls_back("{\"data\": {\"a\": \"\x01\"}}");
        falls_back(r#"{"data": {"a": nul}}"#);
        falls_back(r#"{"data": {"a": 01}}"#);
        falls_back(r#"{"data": {"a": 1.}}"#);
        falls_back(r#"{"data": {"a": "\x"}}"#);
        falls_back(r#"{"data": {"a": 1}, "e": [1,]}"#);
        // A lone surrogate nested is fine (repr escapes it), at the top is not.
        takes_fast_path(r#"{"data": {"k": ["\udc00"], "\u00e9": "\udbff\udfff"}}"#);
        // A top-level key with a lone surrogate gives up even with a null value.
        falls_back(r#"{"data": {"\ud800": null}}"#);
    }

    #[test]
    fn nesting_limit_matches_the_reader() {
        // `data` is depth 2; containers inside it count from 3.
        for depth in [498, 499, 500, 501] {
            let levels = depth - 2;
            let body = format!(
                r#"{{"data": {{"k": {}1{}}}}}"#,
                "[".repeat(levels),
                "]".repeat(levels)
            );
            assert_eq!(agree(body.as_bytes()), depth <= 500, "depth {depth}");
            assert_eq!(
                tree("u", body.as_bytes()).is_some(),
                depth <= 500,
                "depth {depth}"
            );
            let body = format!(
                r#"{{"data": {{"k": {}1{}}}}}"#,
                r#"{"a": "#.repeat(levels),
                "}".repeat(levels)
            );
            assert_eq!(agree(body.as_bytes()), depth <= 500, "depth {depth}");
        }
    }

    #[test]
    fn large_objects_find_repeated_keys_anywhere() {
        for n in [31, 32, 33, 34, 40, 100] {
            let members: Vec<String> = (0..n).map(|i| format!("\"k{i}\": {i}")).collect();
            takes_fast_path(&format!(
                r#"{{"data": {{"o": {{{}}}}}}}"#,
                members.join(", ")
            ));
            for (a, b) in [(0, n - 1), (n - 2, n - 1), (n / 2, n - 1), (0, 1)] {
                let mut members = members.clone();
                members[b] = format!("\"k{a}\": \"dup\"");
                falls_back(&format!(
                    r#"{{"data": {{"o": {{{}}}}}}}"#,
                    members.join(", ")
                ));
                // The tree gives the dict: first position, last value.
                let body = format!(r#"{{"data": {{"o": {{{}}}}}}}"#, members.join(", "));
                let signed = String::from_utf8(tree("u", body.as_bytes()).unwrap()).unwrap();
                assert!(signed.contains(&format!("'k{a}': 'dup'")), "{signed}");
                assert_eq!(signed.matches(&format!("'k{a}'")).count(), 1, "{signed}");
            }
        }
    }

    #[test]
    fn strings_at_every_word_offset() {
        // Each special byte at every position of strings up to 40 bytes
        // long, nested (repr) and at the top level (bare).
        let specials = [
            "'",
            "\\\"",
            "\\\\",
            "\\n",
            "\\u0000",
            "\\u007f",
            "\u{7f}",
            "é",
            "\u{a0}",
            "😀",
            "\\ud800",
            "\\ud83d\\ude00",
            "\u{2028}",
            "\\/",
        ];
        for len in 0..40 {
            for at in 0..=len {
                for special in specials {
                    let text = format!("{}{special}{}", "a".repeat(at), "b".repeat(len - at));
                    takes_fast_path(&format!(r#"{{"data": {{"n": ["{text}", "x{text}'\""]}}}}"#));
                    if special != "\\ud800" {
                        takes_fast_path(&format!(r#"{{"data": {{"t": "{text}", "{text}": 1}}}}"#));
                    }
                }
            }
        }
    }

    #[test]
    fn long_strings() {
        let long = "x".repeat(100_000);
        takes_fast_path(&format!(
            r#"{{"data": {{"a": "{long}", "b": ["{long}'{long}é\n"]}}}}"#
        ));
    }

    #[test]
    fn float_literals_are_exact() {
        let cases = [
            "0.0",
            "-0.0",
            "0.000",
            "1.0",
            "1.50",
            "100.0",
            "0.1",
            "0.0001",
            "0.00012345",
            "0.00001",
            "-0.00009",
            "123456.789",
            "1000000000000000.0",
            "9999999999999998.0",
            "10000000000000000.0",
            "123456789012345.0",
            "1234567890123456.0",
            "0.123456789012345",
            "0.1234567890123456",
            "12345678901234.5",
            "3748.5",
            "4012.25",
            "1e5",
            "1E5",
            "1.5e16",
            "1e-5",
            "1e400",
            "-1e400",
            "1e-400",
            "5e-324",
            "2.2250738585072014e-308",
        ];
        for literal in cases {
            takes_fast_path(&format!(
                r#"{{"data": {{"f": {literal}, "l": [{literal}]}}}}"#
            ));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 5_000, ..ProptestConfig::default() })]

        #[test]
        fn plain_decimals_print_as_repr(
            negative: bool,
            int in "(0|[1-9][0-9]{0,17})",
            frac in "[0-9]{1,18}",
        ) {
            let literal = format!("{}{int}.{frac}", if negative { "-" } else { "" });
            let mut fast = Vec::new();
            if write_float_literal(&mut fast, &literal) {
                let mut exact = Vec::new();
                write_float_repr(&mut exact, literal.parse().unwrap());
                prop_assert_eq!(
                    String::from_utf8(fast).unwrap(),
                    String::from_utf8(exact).unwrap(),
                    "{}", literal
                );
            } else {
                prop_assert!(fast.is_empty());
            }
        }

        #[test]
        fn generated_bodies_agree(body in body()) {
            agree(body.as_bytes());
        }
    }

    /// JSON-ish bodies built to hit the fast path's edges: repeated and
    /// escaped keys, surrogates, quotes, floats, nesting, whitespace, and a
    /// sprinkling of syntax errors.
    fn body() -> impl Strategy<Value = String> {
        let text = prop::collection::vec(
            prop_oneof![
                12 => "[a-c]{1,3}",
                1 => Just("'".to_string()),
                1 => Just("\\\"".to_string()),
                1 => Just("\\\\".to_string()),
                1 => Just("\\n".to_string()),
                1 => Just("\\u0061".to_string()),
                1 => Just("\\ud800".to_string()),
                1 => Just("\\udc00\\ud800".to_string()),
                1 => Just("\\ud83d\\ude00".to_string()),
                1 => Just("\u{7f}".to_string()),
                1 => Just("é\u{a0}\u{2028}😀\u{e0001}".to_string()),
            ],
            0..5,
        )
        .prop_map(|parts| format!("\"{}\"", parts.concat()));
        let number = prop_oneof![
            4 => "-?(0|[1-9][0-9]{0,20})",
            4 => "-?(0|[1-9][0-9]{0,17})\\.[0-9]{1,18}",
            4 => "-?[0-9]{1,3}(\\.[0-9]{1,3})?[eE][-+]?[0-9]{1,3}",
            1 => Just("NaN".to_string()),
            1 => Just("-Infinity".to_string()),
        ];
        // Rare syntax errors: a control character, a leading zero, a trailing comma.
        let broken = prop_oneof![
            Just("\"\u{1}\"".to_string()),
            Just("01".to_string()),
            Just("[1,]".to_string()),
        ];
        let leaf = prop_oneof![
            1 => broken,
            10 => Just("null".to_string()),
            10 => Just("true".to_string()),
            10 => Just("false".to_string()),
            30 => number,
            30 => text.clone(),
        ];
        // `" ,"` breaks the syntax, rarely.
        let ws = prop_oneof![5 => Just(""), 5 => Just(" "), 2 => Just("\n\t"), 1 => Just(" ,")];
        let key = prop_oneof![6 => "\"[a-e]{1,3}\"", 1 => text];
        let value = leaf.prop_recursive(5, 48, 6, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5)
                    .prop_map(|v| format!("[{}]", v.join(", "))),
                prop::collection::vec((key.clone(), inner, ws.clone()), 0..6).prop_map(|kv| {
                    let members: Vec<String> = kv
                        .into_iter()
                        .map(|(k, v, w)| format!("{k}{w}:{v}"))
                        .collect();
                    format!("{{{}}}", members.join(","))
                }),
            ]
        });
        let top_key = prop_oneof![
            20 => "\"[a-e]{1,3}\"",
            1 => Just("\"\\ud800\"".to_string()),
            1 => Just("\"\\u0061\"".to_string()),
        ];
        (
            prop::collection::vec((top_key, value.clone()), 0..7),
            prop::option::of(value),
            any::<bool>(),
        )
            .prop_map(|(members, extra, bom)| {
                let members: Vec<String> = members
                    .into_iter()
                    .map(|(k, v)| format!("{k}: {v}"))
                    .collect();
                let extra = extra
                    .map(|v| format!(", \"extra\": {v}"))
                    .unwrap_or_default();
                format!(
                    "{}{{\"event_id\": 1, \"data\": {{{}}}{extra}}}",
                    if bom { "\u{feff}" } else { "" },
                    members.join(", ")
                )
            })
    }
}
