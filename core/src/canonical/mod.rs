//! Python's `str()` and `repr()` of JSON values, byte for byte.
//!
//! The ION signature formats every top-level value of `data` with Python's
//! `str()`. For strings, numbers and booleans that is the bare value; for
//! dicts and lists it is `repr()`, which quotes and escapes nested strings,
//! prints `True`/`False`/`None`, and keeps the dict's own key order.

mod float;
mod printable_table;
mod stream;

use crate::json::{Text, Value};

pub use float::python_float_repr;
pub(crate) use stream::with_signed;

/// The Unicode version whose notion of "printable" [`write_str_repr`] uses
/// (that of the Python that generated the table).
pub const PYTHON_UNICODE_VERSION: &str = printable_table::UNICODE_VERSION;

/// Why a value cannot be formatted the way Python would.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FormatError {
    /// A lone surrogate would have to be written unescaped (top-level `str()`),
    /// which Python's UTF-8 encoder refuses.
    LoneSurrogate,
}

/// Whether Python's `str.isprintable()` accepts the code point.
pub fn is_python_printable(cp: u32) -> bool {
    if (0x20..0x7F).contains(&cp) {
        return true;
    }
    if let Some(word) = bmp_printable().get((cp / 64) as usize) {
        return word >> (cp % 64) & 1 == 1;
    }
    printable_by_table(cp)
}

/// One bit per Basic Multilingual Plane code point, set when printable;
/// built once from the range table (8 KiB), so the common case is a load.
fn bmp_printable() -> &'static [u64; 1024] {
    static BITS: std::sync::OnceLock<Box<[u64; 1024]>> = std::sync::OnceLock::new();
    BITS.get_or_init(|| {
        let mut bits = Box::new([u64::MAX; 1024]);
        for &(lo, hi) in printable_table::NON_PRINTABLE {
            for cp in lo..=hi.min(0xFFFF) {
                bits[(cp / 64) as usize] &= !(1u64 << (cp % 64));
            }
        }
        bits
    })
}

fn printable_by_table(cp: u32) -> bool {
    printable_table::NON_PRINTABLE
        .binary_search_by(|&(lo, hi)| {
            if hi < cp {
                std::cmp::Ordering::Less
            } else if lo > cp {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_err()
}

/// Appends Python's `str(value)`: strings bare, containers as `repr()`.
///
/// The output is UTF-8: everything written is either copied from a `Text`
/// checked to hold no lone surrogate, ASCII, or a printable (hence
/// non-surrogate) code point copied as its own UTF-8 bytes.
pub(crate) fn write_str(out: &mut Vec<u8>, value: &Value<'_>) -> Result<(), FormatError> {
    match value {
        Value::Str(text) => {
            if has_surrogate(text.as_bytes()) {
                return Err(FormatError::LoneSurrogate);
            }
            out.extend_from_slice(text.as_bytes());
            Ok(())
        }
        other => {
            write_repr(out, other);
            Ok(())
        }
    }
}

/// Whether generalized UTF-8 holds a surrogate code point (`ED A0..BF ..`).
/// Surrogates are the only three-byte sequences led by `ED` whose second
/// byte is at least `A0`; the input is already validated, so no other check
/// is needed.
pub(crate) fn has_surrogate(bytes: &[u8]) -> bool {
    let mut rest = bytes;
    while let Some(at) = rest.iter().position(|&b| b == 0xED) {
        if rest.get(at + 1).is_some_and(|&b| b >= 0xA0) {
            return true;
        }
        rest = &rest[at + 1..];
    }
    false
}

/// Appends Python's `repr(value)`.
pub(crate) fn write_repr(out: &mut Vec<u8>, value: &Value<'_>) {
    match value {
        Value::Null => out.extend_from_slice(b"None"),
        Value::Bool(true) => out.extend_from_slice(b"True"),
        Value::Bool(false) => out.extend_from_slice(b"False"),
        Value::Int(digits) => out.extend_from_slice(digits.as_bytes()),
        Value::Float(f) => float::write_float_repr(out, *f),
        Value::Str(text) => write_bytes_repr(out, text.as_bytes()),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.extend_from_slice(b", ");
                }
                write_repr(out, item);
            }
            out.push(b']');
        }
        Value::Object(members) => {
            out.push(b'{');
            for (i, (key, item)) in members.iter().enumerate() {
                if i > 0 {
                    out.extend_from_slice(b", ");
                }
                write_bytes_repr(out, key.as_bytes());
                out.extend_from_slice(b": ");
                write_repr(out, item);
            }
            out.push(b'}');
        }
    }
}

/// Appends Python's `repr()` of a string: single quotes unless the text has a
/// `'` and no `"`, and Python's escapes for everything non-printable.
pub fn write_str_repr(out: &mut String, text: &Text<'_>) {
    let mut bytes = Vec::with_capacity(text.as_bytes().len() + 2);
    write_bytes_repr(&mut bytes, text.as_bytes());
    // repr() output is UTF-8 (see `write_str`); the fallback is unreachable.
    out.push_str(&String::from_utf8_lossy(&bytes));
}

/// [`write_str_repr`] of generalized UTF-8 `bytes` (a validated `Text`).
pub(crate) fn write_bytes_repr(out: &mut Vec<u8>, bytes: &[u8]) {
    // One branch-free pass (vectorizes) instead of two early-exit searches.
    let (has_single, has_double) = bytes.iter().fold((false, false), |(s, d), &b| {
        (s | (b == b'\''), d | (b == b'"'))
    });
    let quote = if has_single && !has_double {
        b'"'
    } else {
        b'\''
    };
    out.reserve(bytes.len() + 2);
    out.push(quote);
    let mut pos = 0;
    while pos < bytes.len() {
        // Runs of ASCII that repr() leaves alone are copied in one go.
        let run = crate::json::plain_run(&bytes[pos..], quote, true);
        if run > 0 {
            out.extend_from_slice(&bytes[pos..pos + run]);
            pos += run;
            if pos == bytes.len() {
                break;
            }
        }
        // A `Text` is generalized UTF-8, so decoding succeeds; stop if it ever did not.
        let Some((cp, len)) = crate::json::decode_code_point(bytes, pos) else {
            break;
        };
        match cp {
            0x5C => out.extend_from_slice(b"\\\\"),
            0x09 => out.extend_from_slice(b"\\t"),
            0x0A => out.extend_from_slice(b"\\n"),
            0x0D => out.extend_from_slice(b"\\r"),
            _ if cp == u32::from(quote) => out.extend_from_slice(&[b'\\', quote]),
            0x20..=0x7E => out.push(cp as u8),
            // Printable code points are never surrogates: their generalized
            // UTF-8 is plain UTF-8, copied as is.
            _ if cp >= 0x80 && is_python_printable(cp) => {
                out.extend_from_slice(&bytes[pos..pos + len])
            }
            _ => write_hex_escape(out, cp),
        }
        pos += len;
    }
    out.push(quote);
}

/// Appends Python's `repr()` of a `str` given as its code points (UCS-4, as
/// CPython's `PyUnicode_AsUCS4` hands them out), in UTF-8: the same bytes as
/// [`write_str_repr`] gives for the same text. Lone surrogates are escaped,
/// as `repr()` escapes them; values above U+10FFFF (which no `str` holds)
/// are escaped too.
pub fn write_code_points_repr(out: &mut Vec<u8>, text: &[u32]) {
    // Optimistically copy the text as printable ASCII, classifying it in the
    // same pass; most strings need nothing else.
    let start = out.len();
    out.reserve(text.len() + 10);
    out.push(b'\'');
    let (has_single, has_double, needs_escape) = copy_classify(out, text);
    let quote_inside = has_single && has_double;
    if !needs_escape && !quote_inside {
        // No escape needed, and the quote does not occur in the text:
        // `"…"` when it holds a `'`, `'…'` otherwise.
        let quote = if has_single { b'"' } else { b'\'' };
        out[start] = quote;
        out.push(quote);
        return;
    }
    out.truncate(start);
    let quote = if has_single && !has_double {
        b'"'
    } else {
        b'\''
    };
    out.push(quote);
    let mut rest = text;
    loop {
        // Runs of ASCII that repr() leaves alone are copied in one go.
        let run = rest
            .iter()
            .position(|&cp| !(0x20..0x7F).contains(&cp) || cp == u32::from(quote) || cp == 0x5C)
            .unwrap_or(rest.len());
        out.extend(rest[..run].iter().map(|&cp| cp as u8));
        let Some((&cp, tail)) = rest[run..].split_first() else {
            break;
        };
        rest = tail;
        match cp {
            0x5C => out.extend_from_slice(b"\\\\"),
            0x09 => out.extend_from_slice(b"\\t"),
            0x0A => out.extend_from_slice(b"\\n"),
            0x0D => out.extend_from_slice(b"\\r"),
            _ if cp == u32::from(quote) => out.extend_from_slice(&[b'\\', quote]),
            _ if cp >= 0x80 && is_python_printable(cp) => match char::from_u32(cp) {
                Some(c) => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
                None => write_hex_escape(out, cp),
            },
            _ => write_hex_escape(out, cp),
        }
    }
    out.push(quote);
}

/// Appends the low byte of every code point and tells whether `text` holds
/// a `'`, a `"`, and anything else repr() does not copy as is (outside
/// printable ASCII, or `\\`). Branch-free over fixed-size chunks, so it
/// vectorizes.
fn copy_classify(out: &mut Vec<u8>, text: &[u32]) -> (bool, bool, bool) {
    let (mut single, mut double, mut other) = (0u32, 0u32, 0u32);
    let mut classify = |cp: u32| {
        single |= u32::from(cp == 0x27);
        double |= u32::from(cp == 0x22);
        other |= u32::from(cp.wrapping_sub(0x20) >= 0x5F) | u32::from(cp == 0x5C);
    };
    let (chunks, tail) = text.as_chunks::<8>();
    for chunk in chunks {
        let mut bytes = [0u8; 8];
        for (byte, &cp) in bytes.iter_mut().zip(chunk) {
            classify(cp);
            *byte = cp as u8;
        }
        out.extend_from_slice(&bytes);
    }
    // The tail is assembled in a register (bytes stored one by one and read
    // back as a word would stall), copied whole, and its excess cut.
    let mut word = 0u64;
    for (i, &cp) in tail.iter().enumerate() {
        classify(cp);
        word |= u64::from(cp as u8) << (8 * i);
    }
    out.extend_from_slice(&word.to_le_bytes());
    out.truncate(out.len() - 8 + tail.len());
    (single != 0, double != 0, other != 0)
}

/// Appends a `str` given as code points in UTF-8 (`str(s).encode("utf-8")`);
/// false when it holds a lone surrogate (or a value above U+10FFFF), which
/// Python's encoder refuses. `out` then holds a partial write.
pub fn write_code_points_utf8(out: &mut Vec<u8>, text: &[u32]) -> bool {
    // Optimistically ASCII, checked in the same pass.
    let start = out.len();
    out.reserve(text.len() + 8);
    let mut seen = 0;
    let (chunks, tail) = text.as_chunks::<8>();
    for chunk in chunks {
        let mut bytes = [0u8; 8];
        for (byte, &cp) in bytes.iter_mut().zip(chunk) {
            seen |= cp;
            *byte = cp as u8;
        }
        out.extend_from_slice(&bytes);
    }
    let mut word = 0u64;
    for (i, &cp) in tail.iter().enumerate() {
        seen |= cp;
        word |= u64::from(cp as u8) << (8 * i);
    }
    out.extend_from_slice(&word.to_le_bytes());
    out.truncate(out.len() - 8 + tail.len());
    if seen < 0x80 {
        return true;
    }
    out.truncate(start);
    let mut rest = text;
    loop {
        let run = rest.iter().position(|&cp| cp >= 0x80).unwrap_or(rest.len());
        out.extend(rest[..run].iter().map(|&cp| cp as u8));
        let Some((&cp, tail)) = rest[run..].split_first() else {
            return true;
        };
        rest = tail;
        let Some(c) = char::from_u32(cp) else {
            return false;
        };
        out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
    }
}

/// Appends Python's `repr()` (= `str()`) of a float.
pub fn write_python_float(out: &mut Vec<u8>, value: f64) {
    float::write_float_repr(out, value);
}

/// Appends repr()'s escape of a non-printable code point other than the
/// named ones (`\\`, `\t`, `\n`, `\r`): `\xhh`, `\uhhhh` or `\Uhhhhhhhh`.
pub(crate) fn write_hex_escape(out: &mut Vec<u8>, cp: u32) {
    match cp {
        0..=0xFF => push_hex_escape(out, b'x', cp, 2),
        0x100..=0xFFFF => push_hex_escape(out, b'u', cp, 4),
        _ => push_hex_escape(out, b'U', cp, 8),
    }
}

fn push_hex_escape(out: &mut Vec<u8>, kind: u8, cp: u32, width: u32) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'\\');
    out.push(kind);
    for i in (0..width).rev() {
        out.push(HEX[((cp >> (4 * i)) & 0xF) as usize]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repr_of(json: &str) -> String {
        let v = Value::parse(json.as_bytes()).unwrap();
        let mut s = Vec::new();
        write_repr(&mut s, &v);
        String::from_utf8(s).unwrap()
    }

    #[test]
    fn python_literals() {
        assert_eq!(repr_of("[null, true, false]"), "[None, True, False]");
        assert_eq!(repr_of("{}"), "{}");
        assert_eq!(repr_of("[]"), "[]");
        assert_eq!(
            repr_of(r#"{"b": 1, "a": [1.0, "x"]}"#),
            "{'b': 1, 'a': [1.0, 'x']}"
        );
    }

    #[test]
    fn quote_choice_follows_python() {
        assert_eq!(repr_of(r#""it's""#), r#""it's""#);
        assert_eq!(repr_of(r#""say \"hi\"""#), r#"'say "hi"'"#);
        assert_eq!(repr_of(r#""it's \"x\"""#), r#"'it\'s "x"'"#);
    }

    #[test]
    fn escapes_follow_python() {
        assert_eq!(repr_of(r#""a\\b\n\r\t""#), r"'a\\b\n\r\t'");
        assert_eq!(
            repr_of(r#""\u0001\u007f\u0085\u00a0\u00ad\u00e9""#),
            r"'\x01\x7f\x85\xa0\xadé'"
        );
        assert_eq!(repr_of(r#""\u2028\ue000\u0378""#), r"'\u2028\ue000\u0378'");
        assert_eq!(repr_of(r#""\udb40\udc01😀""#), r"'\U000e0001😀'");
        assert_eq!(repr_of(r#""\ud800""#), r"'\ud800'");
    }

    #[test]
    fn long_mixed_strings_match_the_per_character_rules() {
        // Runs longer than a word, with every kind of character between them.
        let run = "abcdefghijklmnopq";
        let json = format!(
            r#"["{run}'{run}\\{run}\u007f{run}é{run}\u00a0{run}\ud800{run}\n{run}\"{run}"]"#
        );
        assert_eq!(
            repr_of(&json),
            format!(r#"['{run}\'{run}\\{run}\x7f{run}é{run}\xa0{run}\ud800{run}\n{run}"{run}']"#)
        );
        let only_single = format!(r#""{run}'{run}""#);
        assert_eq!(repr_of(&only_single), format!(r#""{run}'{run}""#));
    }

    #[test]
    fn top_level_str_is_bare_and_refuses_lone_surrogates() {
        let mut s = Vec::new();
        write_str(&mut s, &Value::parse(br#""it's\n""#).unwrap()).unwrap();
        assert_eq!(s, b"it's\n");
        let lone = Value::parse(br#""\udc00""#).unwrap();
        assert_eq!(write_str(&mut s, &lone), Err(FormatError::LoneSurrogate));
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config { cases: 5_000, ..Default::default() })]

        /// The code-point writers give the bytes the `Text` writers give.
        #[test]
        fn code_point_writers_match_the_text_writers(
            text in proptest::collection::vec(
                proptest::prop_oneof![
                    8 => 0x20u32..0x7F,
                    1 => proptest::sample::select(vec![0x27u32, 0x22, 0x5C, 0x0A, 0x09, 0x0D, 0x00, 0x7F]),
                    1 => 0x80u32..0x800,
                    1 => 0x800u32..0x1_0000,
                    1 => 0x1_0000u32..0x11_0000,
                ],
                0..40,
            )
        ) {
            let generalized = Text::from_code_points(text.iter().copied()).unwrap();
            let mut by_text = Vec::new();
            write_bytes_repr(&mut by_text, generalized.as_bytes());
            let mut by_code_points = Vec::new();
            write_code_points_repr(&mut by_code_points, &text);
            proptest::prop_assert_eq!(&by_code_points, &by_text);

            let mut utf8 = Vec::new();
            let encoded = write_code_points_utf8(&mut utf8, &text);
            let surrogate = text.iter().any(|cp| (0xD800..0xE000).contains(cp));
            proptest::prop_assert_eq!(encoded, !surrogate);
            if encoded {
                proptest::prop_assert_eq!(generalized.as_str().map(str::as_bytes), Some(&utf8[..]));
            }
        }
    }

    #[test]
    fn bmp_bitmap_agrees_with_the_range_table() {
        for cp in 0..0x1_0000 {
            assert_eq!(
                is_python_printable(cp),
                (0x20..0x7F).contains(&cp) || printable_by_table(cp),
                "{cp:#x}"
            );
        }
    }

    #[test]
    fn printable_table_matches_known_points() {
        assert!(is_python_printable('a' as u32));
        assert!(is_python_printable(0xE9));
        assert!(is_python_printable(0x1F600));
        assert!(!is_python_printable(0x20 - 1));
        assert!(!is_python_printable(0xA0));
        assert!(!is_python_printable(0xD800));
        assert!(!is_python_printable(0x10FFFF));
        assert!(is_python_printable(0x20));
        assert!(!is_python_printable(0x3000)); // ideographic space (Zs)
    }
}
