//! A JSON reader that sees a body exactly as Python's `json.loads` does.
//!
//! The ION signature is computed over Python objects, so every detail of how
//! `json.loads` turns bytes into objects reaches the signed string:
//!
//! * object keys keep the order of the body, and a repeated key keeps its
//!   *first* position with its *last* value (`dict(pairs)`);
//! * integers keep every digit (Python ints are unbounded) and `-0` is `0`;
//!   integers longer than 4,300 digits are refused, as CPython's
//!   `int_max_str_digits` limit makes `json.loads` refuse them;
//! * numbers with a fraction or exponent are IEEE doubles (`1e400` is `inf`),
//!   and the literals `NaN`, `Infinity` and `-Infinity` are accepted;
//! * `\uXXXX` escapes of a surrogate pair join into one character, while a
//!   lone surrogate stays a lone surrogate (Python strings can hold one);
//! * a UTF-8 byte-order mark is skipped (`json.loads(bytes)` decodes with
//!   `utf-8-sig`) and UTF-8-encoded surrogates are accepted (`surrogatepass`).
//!
//! Strings are kept in *generalized UTF-8*: UTF-8, except that a surrogate code
//! point may appear, encoded with the usual three-byte pattern. Strings without
//! escapes borrow from the input.

use std::borrow::Cow;
use std::fmt;

use crate::error::JsonError;

/// Deepest nesting accepted. CPython's recursion limit stops `json.loads`
/// somewhere below 1,000 levels; 500 leaves a margin on every platform.
pub const MAX_DEPTH: usize = 500;

/// Longest integer literal accepted, in digits (CPython's default
/// `sys.get_int_max_str_digits()`).
pub const MAX_INT_DIGITS: usize = 4300;

/// A string as Python holds it: a sequence of code points that may include
/// lone surrogates, stored as generalized UTF-8.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Text<'a>(Cow<'a, [u8]>);

impl<'a> Text<'a> {
    /// Wraps ordinary UTF-8 text.
    pub fn borrowed(s: &'a str) -> Self {
        Text(Cow::Borrowed(s.as_bytes()))
    }

    /// Builds a text from code points; surrogates (U+D800..U+DFFF) are kept as
    /// lone code points, as in a Python `str`. Values above U+10FFFF are refused.
    pub fn from_code_points(code_points: impl IntoIterator<Item = u32>) -> Option<Text<'static>> {
        let mut out = Vec::new();
        for cp in code_points {
            push_code_point(&mut out, cp).then_some(())?;
        }
        Some(Text(Cow::Owned(out)))
    }

    /// Reads generalized UTF-8 (what Python's `str.encode("utf-8", "surrogatepass")`
    /// produces); `None` when the bytes are not.
    pub fn from_surrogatepass_bytes(bytes: &'a [u8]) -> Option<Self> {
        let mut pos = 0;
        while pos < bytes.len() {
            let (_, len) = decode_code_point(bytes, pos)?;
            pos += len;
        }
        Some(Text(Cow::Borrowed(bytes)))
    }

    /// The generalized UTF-8 bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The text as `&str` when it holds no lone surrogate.
    pub fn as_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }

    /// The code points, in order.
    pub fn code_points(&self) -> CodePoints<'_> {
        CodePoints {
            bytes: &self.0,
            pos: 0,
        }
    }

    /// Detaches the text from the input it borrows from.
    pub fn into_owned(self) -> Text<'static> {
        Text(Cow::Owned(self.0.into_owned()))
    }
}

impl fmt::Debug for Text<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Text(")?;
        let mut repr = String::new();
        crate::canonical::write_str_repr(&mut repr, self);
        f.write_str(&repr)?;
        f.write_str(")")
    }
}

impl From<String> for Text<'static> {
    fn from(s: String) -> Self {
        Text(Cow::Owned(s.into_bytes()))
    }
}

impl<'a> From<&'a str> for Text<'a> {
    fn from(s: &'a str) -> Self {
        Text::borrowed(s)
    }
}

/// Iterator over the code points of a [`Text`].
#[derive(Debug, Clone)]
pub struct CodePoints<'t> {
    bytes: &'t [u8],
    pos: usize,
}

impl Iterator for CodePoints<'_> {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        if self.pos >= self.bytes.len() {
            return None;
        }
        // A `Text` is validated on construction, so decoding cannot fail; stop
        // rather than panic if it ever did.
        let (cp, len) = decode_code_point(self.bytes, self.pos)?;
        self.pos += len;
        Some(cp)
    }
}

/// A JSON value as Python's `json.loads` would build it.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    /// `null` → `None`.
    Null,
    /// `true`/`false` → `True`/`False`.
    Bool(bool),
    /// An integer, as its decimal digits with an optional leading `-`
    /// (already normalized: never `-0`, no leading zeros).
    Int(Cow<'a, str>),
    /// A number with a fraction or exponent (or `NaN`/`Infinity`) → `float`.
    Float(f64),
    /// A string.
    Str(Text<'a>),
    /// A list.
    Array(Vec<Value<'a>>),
    /// A dict: keys unique, in first-appearance order, last value kept.
    Object(Object<'a>),
}

/// The members of a JSON object, in the order Python's `dict` keeps them.
pub type Object<'a> = Vec<(Text<'a>, Value<'a>)>;

impl<'a> Value<'a> {
    /// Parses a whole document, as `json.loads(body)` does.
    pub fn parse(input: &'a [u8]) -> Result<Value<'a>, JsonError> {
        let input = strip_bom(input);
        let mut parser = Parser::new(input);
        parser.skip_whitespace();
        let value = parser.value(0)?;
        parser.skip_whitespace();
        if parser.pos != input.len() {
            return Err(parser.error("extra data after the JSON value"));
        }
        Ok(value)
    }

    /// Builds a value from a `serde_json::Value`, keeping its map order.
    ///
    /// Numbers that are not `i64`/`u64` become floats. Note that without
    /// serde_json's `preserve_order` feature its maps are sorted by key, so
    /// the result matches a body only if that body was serialized from the
    /// same `serde_json::Value`.
    pub fn from_serde(value: &'a serde_json::Value) -> Value<'a> {
        match value {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Value::Int(Cow::Owned(i.to_string()))
                } else if let Some(u) = n.as_u64() {
                    Value::Int(Cow::Owned(u.to_string()))
                } else {
                    Value::Float(n.as_f64().unwrap_or(f64::NAN))
                }
            }
            serde_json::Value::String(s) => Value::Str(Text::borrowed(s)),
            serde_json::Value::Array(items) => {
                Value::Array(items.iter().map(Value::from_serde).collect())
            }
            serde_json::Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| (Text::borrowed(k), Value::from_serde(v)))
                    .collect(),
            ),
        }
    }

    /// The value of `key` when this is an object.
    pub fn get(&self, key: &str) -> Option<&Value<'a>> {
        match self {
            Value::Object(members) => members
                .iter()
                .find(|(k, _)| k.as_bytes() == key.as_bytes())
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// Short name of the JSON type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Int(_) | Value::Float(_) => "number",
            Value::Str(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        }
    }
}

/// Inserts a member with `dict` semantics: an existing key keeps its position
/// and takes the new value.
pub fn insert_member<'a>(members: &mut Object<'a>, key: Text<'a>, value: Value<'a>) {
    // Small objects (the common case) are scanned; large ones are rare enough
    // in webhook bodies that the quadratic worst case stays bounded by MAX_DEPTH
    // and body size limits upstream.
    // Comparing the last byte first rejects most distinct keys without a memcmp.
    let last = key.as_bytes().last();
    if let Some(slot) = members
        .iter_mut()
        .find(|(k, _)| k.as_bytes().last() == last && *k == key)
    {
        slot.1 = value;
    } else {
        members.push((key, value));
    }
}

/// The body without its UTF-8 byte-order mark (`json.loads(bytes)` decodes
/// with `utf-8-sig`).
pub(crate) fn strip_bom(input: &[u8]) -> &[u8] {
    input.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(input)
}

/// Objects with more members than this find repeated keys by sorting once
/// at the end instead of scanning the members on every insertion.
pub(crate) const LINEAR_KEY_SCAN: usize = 32;

/// The reader. Besides [`Value::parse`], the streaming canonicalizer
/// (`canonical::stream`) drives it token by token, so both accept exactly
/// the same bodies.
pub(crate) struct Parser<'a> {
    input: &'a [u8],
    pos: usize,
}

impl<'a> Parser<'a> {
    pub(crate) fn new(input: &'a [u8]) -> Self {
        Parser { input, pos: 0 }
    }

    fn error(&self, reason: &'static str) -> JsonError {
        JsonError {
            offset: self.pos,
            reason,
        }
    }

    pub(crate) fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    /// Steps over one byte already seen with [`Parser::peek`].
    pub(crate) fn bump(&mut self) {
        self.pos += 1;
    }

    pub(crate) fn at_end(&self) -> bool {
        self.pos == self.input.len()
    }

    /// The input from the current position on.
    pub(crate) fn rest(&self) -> &'a [u8] {
        &self.input[self.pos..]
    }

    /// Steps over `n` bytes the caller has read from [`Parser::rest`] and
    /// checked exactly as the reader would have.
    pub(crate) fn advance(&mut self, n: usize) {
        self.pos += n;
    }

    pub(crate) fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    pub(crate) fn eat_literal(&mut self, literal: &[u8]) -> bool {
        if self.input[self.pos..].starts_with(literal) {
            self.pos += literal.len();
            true
        } else {
            false
        }
    }

    pub(crate) fn value(&mut self, depth: usize) -> Result<Value<'a>, JsonError> {
        let mut value = Value::Null;
        self.value_into(depth, &mut value)?;
        Ok(value)
    }

    /// Parses a value straight into `slot` (its place in the parent), which
    /// saves moving every value through return values on the hot path.
    fn value_into(&mut self, depth: usize, slot: &mut Value<'a>) -> Result<(), JsonError> {
        *slot = match self.peek() {
            None => return Err(self.error("expected a value, found the end of the input")),
            Some(b'{') => self.object(depth + 1)?,
            Some(b'[') => self.array(depth + 1)?,
            Some(b'"') => Value::Str(self.string()?),
            Some(b'n') if self.eat_literal(b"null") => Value::Null,
            Some(b't') if self.eat_literal(b"true") => Value::Bool(true),
            Some(b'f') if self.eat_literal(b"false") => Value::Bool(false),
            Some(b'N') if self.eat_literal(b"NaN") => Value::Float(f64::NAN),
            Some(b'I') if self.eat_literal(b"Infinity") => Value::Float(f64::INFINITY),
            Some(b'-') if self.input[self.pos..].starts_with(b"-Infinity") => {
                self.pos += "-Infinity".len();
                Value::Float(f64::NEG_INFINITY)
            }
            Some(b'-' | b'0'..=b'9') => self.number()?,
            Some(_) => return Err(self.error("expected a value")),
        };
        Ok(())
    }

    fn object(&mut self, depth: usize) -> Result<Value<'a>, JsonError> {
        if depth > MAX_DEPTH {
            return Err(self.error("nesting deeper than 500 levels"));
        }
        self.pos += 1; // '{'
        let mut members: Object<'a> = Vec::new();
        self.skip_whitespace();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(Value::Object(members));
        }
        loop {
            if self.peek() != Some(b'"') {
                return Err(self.error("expected a string key in double quotes"));
            }
            let key = self.string()?;
            self.skip_whitespace();
            if self.peek() != Some(b':') {
                return Err(self.error("expected ':' after an object key"));
            }
            self.pos += 1;
            self.skip_whitespace();
            // `dict` semantics, as `insert_member`: a repeated key keeps its
            // first position and takes the last value. Past LINEAR_KEY_SCAN
            // members, repeats are merged once the object is complete.
            let index = if members.len() < LINEAR_KEY_SCAN {
                let last = key.as_bytes().last();
                members
                    .iter()
                    .position(|(k, _)| k.as_bytes().last() == last && *k == key)
            } else {
                None
            };
            let index = match index {
                Some(index) => index,
                None => {
                    members.push((key, Value::Null));
                    members.len() - 1
                }
            };
            self.value_into(depth, &mut members[index].1)?;
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => {
                    self.pos += 1;
                    self.skip_whitespace();
                }
                Some(b'}') => {
                    self.pos += 1;
                    if members.len() > LINEAR_KEY_SCAN {
                        merge_repeated_keys(&mut members);
                    }
                    return Ok(Value::Object(members));
                }
                _ => return Err(self.error("expected ',' or '}' in an object")),
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<Value<'a>, JsonError> {
        if depth > MAX_DEPTH {
            return Err(self.error("nesting deeper than 500 levels"));
        }
        self.pos += 1; // '['
        let mut items = Vec::new();
        self.skip_whitespace();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(Value::Array(items));
        }
        loop {
            items.push(Value::Null);
            let last = items.len() - 1;
            self.value_into(depth, &mut items[last])?;
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => {
                    self.pos += 1;
                    self.skip_whitespace();
                }
                Some(b']') => {
                    self.pos += 1;
                    return Ok(Value::Array(items));
                }
                _ => return Err(self.error("expected ',' or ']' in an array")),
            }
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
        self.pos - start
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?`, as Python's scanner.
    fn number(&mut self) -> Result<Value<'a>, JsonError> {
        let (text, is_float) = self.number_text()?;
        if is_float {
            let value: f64 = text.parse().map_err(|_| self.error("invalid number"))?;
            return Ok(Value::Float(value));
        }
        if text == "-0" {
            return Ok(Value::Int(Cow::Borrowed("0")));
        }
        Ok(Value::Int(Cow::Borrowed(text)))
    }

    /// Scans a number: its literal text and whether it is a float. An
    /// integer's text is its digits as written (`-0` included), already
    /// checked against [`MAX_INT_DIGITS`].
    #[inline]
    pub(crate) fn number_text(&mut self) -> Result<(&'a str, bool), JsonError> {
        let start = self.pos;
        let negative = self.peek() == Some(b'-');
        if negative {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(self.error("expected a digit")),
        }
        let int_end = self.pos;
        let mut is_float = false;
        // A fraction or exponent only counts when digits follow; otherwise the
        // scanner stops before it and the leftover is "extra data".
        if self.peek() == Some(b'.') && matches!(self.input.get(self.pos + 1), Some(b'0'..=b'9')) {
            self.pos += 1;
            self.digits();
            is_float = true;
        }
        if let Some(b'e' | b'E') = self.peek() {
            let mut look = self.pos + 1;
            if let Some(b'+' | b'-') = self.input.get(look) {
                look += 1;
            }
            if matches!(self.input.get(look), Some(b'0'..=b'9')) {
                self.pos = look;
                self.digits();
                is_float = true;
            }
        }
        // The scanned range is ASCII digits and signs only.
        let text = std::str::from_utf8(&self.input[start..self.pos])
            .map_err(|_| self.error("invalid number"))?;
        if is_float {
            return Ok((text, true));
        }
        let int_text = &text[..int_end - start];
        let digit_count = int_text.len() - usize::from(negative);
        if digit_count > MAX_INT_DIGITS {
            return Err(self.error("integer longer than Python's 4300-digit limit"));
        }
        Ok((int_text, false))
    }

    fn hex4(&mut self) -> Result<u32, JsonError> {
        let slice = self
            .input
            .get(self.pos..self.pos + 4)
            .ok_or_else(|| self.error("truncated \\u escape"))?;
        let mut value = 0u32;
        for &b in slice {
            let digit = (b as char)
                .to_digit(16)
                .ok_or_else(|| self.error("invalid \\u escape"))?;
            value = value * 16 + digit;
        }
        self.pos += 4;
        Ok(value)
    }

    #[inline(always)]
    pub(crate) fn string(&mut self) -> Result<Text<'a>, JsonError> {
        let mut unescaped = Vec::new();
        Ok(match self.string_with(&mut unescaped)? {
            Some(bytes) => Text(Cow::Borrowed(bytes)),
            None => Text(Cow::Owned(unescaped)),
        })
    }

    /// Reads a string (the parser is at its opening quote). Without escapes
    /// its generalized UTF-8 is returned, borrowed from the input; otherwise
    /// it is unescaped onto the end of `out` and `None` is returned.
    ///
    /// Inlined into the reader's loops in optimized builds only: unoptimized,
    /// the inlined copy swells every recursive frame of the tree reader.
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub(crate) fn string_with(&mut self, out: &mut Vec<u8>) -> Result<Option<&'a [u8]>, JsonError> {
        self.pos += 1; // opening quote
        let start = self.pos;
        // Fast path: no escapes, borrow from the input.
        loop {
            self.pos += plain_run(&self.input[self.pos..], b'"', false);
            match self.peek() {
                None => return Err(self.error("unterminated string")),
                Some(b'"') => {
                    let bytes = &self.input[start..self.pos];
                    self.pos += 1;
                    return Ok(Some(bytes));
                }
                Some(b'\\') => break,
                Some(0x00..=0x1F) => return Err(self.error("control character in a string")),
                Some(b) if b < 0x80 => self.pos += 1,
                Some(_) => {
                    let (_, len) = decode_code_point(self.input, self.pos)
                        .ok_or_else(|| self.error("invalid UTF-8"))?;
                    self.pos += len;
                }
            }
        }
        out.extend_from_slice(&self.input[start..self.pos]);
        loop {
            let run = plain_run(&self.input[self.pos..], b'"', false);
            out.extend_from_slice(&self.input[self.pos..self.pos + run]);
            self.pos += run;
            match self.peek() {
                None => return Err(self.error("unterminated string")),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(None);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    let escape = self
                        .peek()
                        .ok_or_else(|| self.error("unterminated string"))?;
                    self.pos += 1;
                    let simple = match escape {
                        b'"' => Some(b'"'),
                        b'\\' => Some(b'\\'),
                        b'/' => Some(b'/'),
                        b'b' => Some(0x08),
                        b'f' => Some(0x0C),
                        b'n' => Some(b'\n'),
                        b'r' => Some(b'\r'),
                        b't' => Some(b'\t'),
                        b'u' => None,
                        _ => {
                            self.pos -= 1;
                            return Err(self.error("invalid escape"));
                        }
                    };
                    if let Some(b) = simple {
                        out.push(b);
                        continue;
                    }
                    let mut cp = self.hex4()?;
                    if (0xD800..=0xDBFF).contains(&cp) && self.input[self.pos..].starts_with(b"\\u")
                    {
                        let save = self.pos;
                        self.pos += 2;
                        let low = self.hex4()?;
                        if (0xDC00..=0xDFFF).contains(&low) {
                            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
                        } else {
                            self.pos = save;
                        }
                    }
                    push_code_point(out, cp);
                }
                Some(0x00..=0x1F) => return Err(self.error("control character in a string")),
                Some(b) if b < 0x80 => {
                    out.push(b);
                    self.pos += 1;
                }
                Some(_) => {
                    let (_, len) = decode_code_point(self.input, self.pos)
                        .ok_or_else(|| self.error("invalid UTF-8"))?;
                    out.extend_from_slice(&self.input[self.pos..self.pos + len]);
                    self.pos += len;
                }
            }
        }
    }
}

/// Length of the leading run of `bytes` that needs no attention in a string:
/// ASCII other than control characters, `\\` and `quote` (and DEL when
/// `stop_at_del`). Reads eight bytes at a time; the first flagged byte of a
/// word is exact (borrows only carry into higher bytes).
pub(crate) fn plain_run(bytes: &[u8], quote: u8, stop_at_del: bool) -> usize {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let has_byte = |x: u64, b: u8| {
        let y = x ^ (LO * u64::from(b));
        y.wrapping_sub(LO) & !y & HI
    };
    let mut pos = 0;
    while let Some(chunk) = bytes.get(pos..pos + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word);
        let mut special = (x & HI) | (x.wrapping_sub(LO * 0x20) & !x & HI);
        special |= has_byte(x, b'\\') | has_byte(x, quote);
        if stop_at_del {
            special |= has_byte(x, 0x7F);
        }
        if special != 0 {
            return pos + (special.trailing_zeros() / 8) as usize;
        }
        pos += 8;
    }
    while let Some(&b) = bytes.get(pos) {
        if !(0x20..0x80).contains(&b) || b == b'\\' || b == quote || (stop_at_del && b == 0x7F) {
            break;
        }
        pos += 1;
    }
    pos
}

/// Gives `members` `dict` semantics after they were appended without
/// looking for repeats: each repeated key keeps its first position and takes
/// its last value. O(n log n), for objects too large to scan per insertion.
fn merge_repeated_keys(members: &mut Object<'_>) {
    let mut order: Vec<usize> = (0..members.len()).collect();
    // Stable: among equal keys, body order.
    order.sort_by(|&a, &b| members[a].0.cmp(&members[b].0));
    let mut removed = vec![false; members.len()];
    let mut any = false;
    let mut group = 0;
    while group < order.len() {
        let mut end = group + 1;
        while end < order.len() && members[order[end]].0 == members[order[group]].0 {
            end += 1;
        }
        if end - group > 1 {
            any = true;
            let first = order[group];
            let last = order[end - 1];
            members[first].1 = std::mem::replace(&mut members[last].1, Value::Null);
            for &dup in &order[group + 1..end] {
                removed[dup] = true;
            }
        }
        group = end;
    }
    if any {
        let mut index = 0;
        members.retain(|_| {
            let keep = !removed[index];
            index += 1;
            keep
        });
    }
}

/// Appends `cp` in generalized UTF-8; false when `cp` is beyond U+10FFFF.
fn push_code_point(out: &mut Vec<u8>, cp: u32) -> bool {
    match cp {
        0..=0x7F => out.push(cp as u8),
        0x80..=0x7FF => out.extend_from_slice(&[0xC0 | (cp >> 6) as u8, 0x80 | (cp & 0x3F) as u8]),
        0x800..=0xFFFF => out.extend_from_slice(&[
            0xE0 | (cp >> 12) as u8,
            0x80 | ((cp >> 6) & 0x3F) as u8,
            0x80 | (cp & 0x3F) as u8,
        ]),
        0x10000..=0x10FFFF => out.extend_from_slice(&[
            0xF0 | (cp >> 18) as u8,
            0x80 | ((cp >> 12) & 0x3F) as u8,
            0x80 | ((cp >> 6) & 0x3F) as u8,
            0x80 | (cp & 0x3F) as u8,
        ]),
        _ => return false,
    }
    true
}

/// Decodes one generalized-UTF-8 code point at `pos`: `(code point, length)`.
/// Overlong forms and values beyond U+10FFFF are refused; surrogates are not.
pub(crate) fn decode_code_point(bytes: &[u8], pos: usize) -> Option<(u32, usize)> {
    let b0 = *bytes.get(pos)?;
    let cont = |i: usize| -> Option<u32> {
        let b = *bytes.get(pos + i)?;
        (b & 0xC0 == 0x80).then_some(u32::from(b & 0x3F))
    };
    match b0 {
        0x00..=0x7F => Some((u32::from(b0), 1)),
        0xC2..=0xDF => Some(((u32::from(b0 & 0x1F) << 6) | cont(1)?, 2)),
        0xE0..=0xEF => {
            let cp = (u32::from(b0 & 0x0F) << 12) | (cont(1)? << 6) | cont(2)?;
            (cp >= 0x800).then_some((cp, 3))
        }
        0xF0..=0xF4 => {
            let cp = (u32::from(b0 & 0x07) << 18) | (cont(1)? << 12) | (cont(2)? << 6) | cont(3)?;
            (0x10000..=0x10FFFF).contains(&cp).then_some((cp, 4))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Value<'_> {
        Value::parse(s.as_bytes()).unwrap()
    }

    #[test]
    fn duplicate_keys_keep_first_position_and_last_value() {
        let v = parse(r#"{"a": 1, "b": 2, "a": 3}"#);
        let Value::Object(members) = v else { panic!() };
        let keys: Vec<_> = members.iter().map(|(k, _)| k.as_str().unwrap()).collect();
        assert_eq!(keys, ["a", "b"]);
        assert_eq!(members[0].1, Value::Int("3".into()));
    }

    #[test]
    fn numbers_follow_python() {
        assert_eq!(parse("-0"), Value::Int("0".into()));
        assert_eq!(
            parse("123456789012345678901234567890"),
            Value::Int("123456789012345678901234567890".into())
        );
        assert_eq!(parse("1E5"), Value::Float(100000.0));
        assert_eq!(parse("1e400"), Value::Float(f64::INFINITY));
        assert!(matches!(parse("NaN"), Value::Float(f) if f.is_nan()));
        assert_eq!(parse("-Infinity"), Value::Float(f64::NEG_INFINITY));
        assert!(Value::parse(b"01").is_err());
        assert!(Value::parse(b"1.").is_err());
        assert!(Value::parse(b".5").is_err());
        assert!(Value::parse(b"-").is_err());
        assert!(Value::parse("9".repeat(4301).as_bytes()).is_err());
        assert!(Value::parse("9".repeat(4300).as_bytes()).is_ok());
    }

    #[test]
    fn surrogates_join_in_pairs_and_stay_alone_otherwise() {
        let Value::Str(t) = parse(r#""\ud83d\ude00""#) else {
            panic!()
        };
        assert_eq!(t.as_str(), Some("😀"));
        let Value::Str(t) = parse(r#""\ud800x""#) else {
            panic!()
        };
        assert_eq!(t.code_points().collect::<Vec<_>>(), [0xD800, 'x' as u32]);
        let Value::Str(t) = parse(r#""\ud800\u0041""#) else {
            panic!()
        };
        assert_eq!(t.code_points().collect::<Vec<_>>(), [0xD800, 0x41]);
    }

    #[test]
    fn rejects_what_python_rejects() {
        for bad in [
            &b"{\"a\":1,}"[..],
            b"[1,]",
            b"{'a':1}",
            b"\"\x01\"",
            b"\"\\x41\"",
            b"[1] 2",
            b"\xff",
            b"\"\xc0\xaf\"",
            b"",
        ] {
            assert!(
                Value::parse(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn depth_limit_is_an_error_not_a_crash() {
        let deep = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
        assert!(Value::parse(deep.as_bytes()).is_err());
        let ok = "[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH);
        assert!(Value::parse(ok.as_bytes()).is_ok());
    }

    #[test]
    fn plain_run_stops_exactly_at_the_first_special_byte() {
        // Every special byte at every offset of a 8-byte word and across words.
        let specials: &[(u8, bool)] = &[
            (b'"', false),
            (b'\\', false),
            (0x00, false),
            (0x1F, false),
            (0x80, false),
            (0xC3, false),
            (0xFF, false),
            (0x7F, true),
            (b'\'', true),
        ];
        for len in 0..40 {
            for at in 0..len {
                for &(special, del) in specials {
                    let quote = if special == b'\'' { b'\'' } else { b'"' };
                    let mut bytes = vec![b'a'; len];
                    bytes[at] = special;
                    // Bytes after the first special one must not matter.
                    for later in bytes.iter_mut().skip(at + 1).step_by(3) {
                        *later = 0x01;
                    }
                    assert_eq!(plain_run(&bytes, quote, del), at, "{len} {at} {special:#x}");
                }
            }
            let plain = vec![b' '; len];
            assert_eq!(plain_run(&plain, b'"', true), len);
            assert_eq!(plain_run(&vec![0x7F; len], b'"', false), len);
        }
    }

    #[test]
    fn long_strings_with_escapes_and_unicode_parse() {
        let body = format!(
            r#"["{a}\n{a}é{a}\ud83d\ude00{a}\"", "{a}", "{a}\u0000"]"#,
            a = "x".repeat(37)
        );
        let Value::Array(items) = parse(&body) else {
            panic!()
        };
        let a = "x".repeat(37);
        assert_eq!(
            items[0],
            Value::Str(Text::from(format!("{a}\n{a}é{a}😀{a}\"")))
        );
        assert_eq!(items[1], Value::Str(Text::from(a.clone())));
        assert_eq!(items[2], Value::Str(Text::from(format!("{a}\0"))));
        assert!(Value::parse(format!("\"{a}\x01{a}\"").as_bytes()).is_err());
        assert!(Value::parse(format!("\"{a}\\x{a}\"").as_bytes()).is_err());
    }

    proptest::proptest! {
        /// Large objects (past the linear scan) keep `dict` semantics: a
        /// repeated key keeps its first position and takes its last value.
        #[test]
        fn large_objects_merge_repeated_keys_as_dict_does(
            members in proptest::collection::vec((0u8..60, 0u32..1000), 0..120)
        ) {
            let text: Vec<String> = members.iter().map(|(k, v)| format!("\"k{k}\": {v}")).collect();
            let body = format!("{{{}}}", text.join(", "));
            let mut expected = Object::new();
            for (k, v) in &members {
                insert_member(&mut expected, Text::from(format!("k{k}")), Value::Int(v.to_string().into()));
            }
            proptest::prop_assert_eq!(Value::parse(body.as_bytes()).unwrap(), Value::Object(expected));
        }
    }

    #[test]
    fn bom_is_skipped() {
        assert_eq!(
            Value::parse(b"\xEF\xBB\xBF1").unwrap(),
            Value::Int("1".into())
        );
    }
}
