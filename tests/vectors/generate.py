#!/usr/bin/env python3
"""Deterministic generator of changewire's shared signature test vectors.

Writes, next to this file:

  ion_signature.json       ION-style x-ion-signature vectors (HMAC-SHA1 over the
                           receiver URL and Python's str() of every `data` value)
  standard_webhooks.json   Standard Webhooks vectors (HMAC-SHA256 over
                           "<msg id>.<timestamp>.<raw body>")
  standard_webhooks_ed25519.json
                           Standard Webhooks asymmetric vectors (v1a: Ed25519
                           over the same content; rfc8032.py, pure Python,
                           checked against RFC 8032's TEST 1-3 first)

Every expected value is computed by Python itself (json.loads, str()/repr(),
hmac), never by changewire's Rust code.  Before anything is written every
vector is re-checked with a second, independently written verifier that does
not use repr(), the hmac module or the base64 module.

Usage:
  python3 tests/vectors/generate.py           # (re)write the three files
  python3 tests/vectors/generate.py --check   # exit 1 if the committed files differ

The vectors are frozen compatibility fixtures: see README.md before editing.
Only the standard library is used.  Expected values depend on the Unicode
database (repr() escapes what str.isprintable() rejects), so the generator
refuses to run unless unicodedata.unidata_version is 14.0.0 (Python 3.11).
"""

import argparse
import base64
import hashlib
import hmac
import json
import math
import os
import random
import re
import string
import struct
import sys
import unicodedata
from decimal import Decimal

import rfc8032   # Ed25519 in pure Python, beside this file

SEED = 20261123
REQUIRED_UNICODE = "14.0.0"
PYTHON = "3.11.7"   # the Python the committed vectors were generated and verified with
HERE = os.path.dirname(os.path.abspath(__file__))
ION_FILE = "ion_signature.json"
SW_FILE = "standard_webhooks.json"
GENERATOR = "tests/vectors/generate.py"
MAX_SAFE = 2**53 - 1


# --------------------------------------------------------------------------
# The two constructions, as the senders define them.  These produce the
# expected values.
# --------------------------------------------------------------------------

def ion_sign(secret, url, body):
    """ION's construction, applied to the raw body text.

    Returns (canonical, signature).  Raises whatever Python raises (a lone
    surrogate that cannot be UTF-8 encoded, `data` that is not an object,
    a body that is not JSON, ...).
    """
    data = json.loads(body)["data"]
    pieces = []
    for key, value in sorted(data.items()):   # keys are unique: sorts by key
        if value is None:
            continue                          # only None is left out
        pieces.append(f"{key}:{value}")      # format(v, "") == str(v)
    canonical = url + "?" + "&".join(pieces)
    message = canonical.encode("utf-8")
    mac = hmac.new(secret.encode("utf-8"), message, hashlib.sha1).digest()
    return canonical, base64.b64encode(mac).decode("ascii")


def ion_try_sign(secret, url, body):
    try:
        return ion_sign(secret, url, body)
    except Exception:  # noqa: BLE001 - any failure means "cannot be signed"
        return None, None


def sw_key(secret):
    if secret.startswith("whsec_"):
        secret = secret[len("whsec_"):]
    return base64.b64decode(secret)


def sw_sign(secret, msg_id, timestamp, body):
    content = f"{msg_id}.{timestamp}.{body}".encode("utf-8")
    mac = hmac.new(sw_key(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode("ascii")


# --------------------------------------------------------------------------
# A small JSON writer, so bodies can use spellings json.dumps never produces:
# duplicate keys, 1E5, 1.50, -0, \u00e9 vs raw UTF-8, \/, escaped surrogate
# pairs, lone surrogates, NaN/Infinity, odd whitespace.
# --------------------------------------------------------------------------

class Raw:
    """A token written verbatim (a number spelling, a pre-escaped key, ...)."""
    __slots__ = ("text",)

    def __init__(self, text):
        self.text = text


class Obj:
    """A JSON object as an ordered list of (key, value) pairs; keys may repeat."""
    __slots__ = ("pairs",)

    def __init__(self, pairs=()):
        self.pairs = list(pairs)


class Arr:
    __slots__ = ("items",)

    def __init__(self, items=()):
        self.items = list(items)


class Str:
    """A string written with a specific escaping style."""
    __slots__ = ("value", "style")

    def __init__(self, value, style):
        self.value = value
        self.style = style


SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r",
                 "\t": "\\t", "\b": "\\b", "\f": "\\f"}
LAYOUTS = ("compact", "spaced", "pretty2", "pretty4", "tab", "pretty2-crlf", "noisy")
STRING_STYLES = ("min", "ascii", "mixed", "slash")


class Writer:
    def __init__(self, rng, layout="spaced", strings="min"):
        assert layout in LAYOUTS and strings in STRING_STYLES
        self.rng = rng
        self.layout = layout
        self.strings = strings
        self.nl = "\r\n" if layout.endswith("-crlf") else "\n"
        self.unit = {"pretty2": "  ", "pretty2-crlf": "  ", "pretty4": "    ", "tab": "\t"}.get(layout)

    def dump(self, node):
        text = self.value(node, 0)
        if self.layout == "noisy":
            text = self.ws() + text + self.ws()
        return text

    def ws(self):
        return self.rng.choice(["", "", "", " ", "  ", "\t", "\n", "\r\n", " \t", "\n  ", "\r"])

    def value(self, node, level):
        if node is None:
            return "null"
        if node is True:
            return "true"
        if node is False:
            return "false"
        if isinstance(node, Raw):
            return node.text
        if isinstance(node, int):
            return str(node)
        if isinstance(node, float):
            if math.isnan(node):
                return "NaN"
            if math.isinf(node):
                return "Infinity" if node > 0 else "-Infinity"
            return repr(node)
        if isinstance(node, str):
            return self.string(node, self.strings)
        if isinstance(node, Str):
            return self.string(node.value, node.style)
        if isinstance(node, (Obj, dict)):
            pairs = node.pairs if isinstance(node, Obj) else list(node.items())
            items = [self.key(k) + self.colon() + self.value(v, level + 1) for k, v in pairs]
            return self.wrap("{", "}", items, level)
        if isinstance(node, (Arr, list, tuple)):
            seq = node.items if isinstance(node, Arr) else node
            return self.wrap("[", "]", [self.value(v, level + 1) for v in seq], level)
        raise TypeError(f"cannot write {type(node).__name__}")

    def key(self, key):
        if isinstance(key, (Raw, Str)):
            return self.value(key, 0)
        return self.string(key, self.strings)

    def colon(self):
        if self.layout == "compact":
            return ":"
        if self.layout == "noisy":
            return self.ws() + ":" + self.ws()
        return ": "

    def wrap(self, opener, closer, items, level):
        if not items:
            return opener + (self.ws() if self.layout == "noisy" else "") + closer
        if self.layout == "compact":
            return opener + ",".join(items) + closer
        if self.layout == "spaced":
            return opener + ", ".join(items) + closer
        if self.layout == "noisy":
            out = opener
            for i, item in enumerate(items):
                out += (self.ws() + "," if i else "") + self.ws() + item
            return out + self.ws() + closer
        inner = self.unit * (level + 1)
        sep = "," + self.nl
        return (opener + self.nl + sep.join(inner + i for i in items)
                + self.nl + self.unit * level + closer)

    def uescape(self, cp, upper=False):
        fmt = "\\u%04X" if upper else "\\u%04x"
        if cp > 0xFFFF:
            cp -= 0x10000
            return fmt % (0xD800 + (cp >> 10)) + fmt % (0xDC00 + (cp & 0x3FF))
        return fmt % cp

    def string(self, s, style):
        out = ['"']
        for ch in s:
            cp = ord(ch)
            if style == "mixed" and self.rng.random() < 0.3:
                out.append(self.uescape(cp, self.rng.random() < 0.5))
            elif ch in SHORT_ESCAPES:
                out.append(SHORT_ESCAPES[ch])
            elif cp < 0x20:
                out.append("\\u%04x" % cp)
            elif 0xD800 <= cp <= 0xDFFF:          # cannot appear raw in UTF-8
                out.append("\\u%04x" % cp)
            elif style == "ascii" and cp > 0x7F:   # what json.dumps does by default
                out.append(self.uescape(cp))
            elif ch == "/" and style in ("slash", "mixed"):
                out.append("\\/")
            else:
                out.append(ch)
        out.append('"')
        return "".join(out)


# --------------------------------------------------------------------------
# An independent verifier for the self-check.  It re-implements Python's
# str()/repr() rules by hand (they are what a Rust port must implement),
# HMAC from hashlib digests, and base64 by hand.
# --------------------------------------------------------------------------

NONPRINTABLE_CATEGORIES = ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp", "Zs")
B64_ALPHABET = string.ascii_uppercase + string.ascii_lowercase + string.digits + "+/"


def manual_b64(data):
    out = []
    for i in range(0, len(data), 3):
        chunk = data[i:i + 3]
        n = int.from_bytes(chunk + b"\0" * (3 - len(chunk)), "big")
        chars = [B64_ALPHABET[(n >> s) & 63] for s in (18, 12, 6, 0)]
        keep = len(chunk) + 1
        out.append("".join(chars[:keep]) + "=" * (4 - keep))
    return "".join(out)


def manual_hmac(key, message, algo):
    block = 64
    if len(key) > block:
        key = hashlib.new(algo, key).digest()
    key = key + b"\0" * (block - len(key))
    inner = hashlib.new(algo, bytes(b ^ 0x36 for b in key) + message).digest()
    return hashlib.new(algo, bytes(b ^ 0x5C for b in key) + inner).digest()


def manual_string_repr(s):
    quote = '"' if ("'" in s and '"' not in s) else "'"
    out = [quote]
    for ch in s:
        cp = ord(ch)
        if ch == quote or ch == "\\":
            out.append("\\" + ch)
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif 0x20 <= cp < 0x7F:
            out.append(ch)
        elif cp < 0x80 or (ch != " " and unicodedata.category(ch) in NONPRINTABLE_CATEGORIES):
            if cp <= 0xFF:
                out.append("\\x%02x" % cp)
            elif cp <= 0xFFFF:
                out.append("\\u%04x" % cp)
            else:
                out.append("\\U%08x" % cp)
        else:
            out.append(ch)
    out.append(quote)
    return "".join(out)


def _shortest_digits(x):
    """Shortest decimal digits that round-trip to x (x finite, > 0): (digits, exp10)
    meaning 0.d1d2... * 10**(exp10+1), i.e. d1.d2... * 10**exp10; nearest to x, even last digit on ties."""
    for precision in range(1, 18):
        text = "%.*e" % (precision - 1, x)
        mant, exp = text.split("e")
        digits = mant.replace(".", "")
        exp = int(exp)
        candidates = []
        base = int(digits)
        for delta in (0, -1, 1):
            d = base + delta
            if d <= 0:
                continue
            ds = str(d)
            e = exp + (len(ds) - len(digits))
            val = Decimal(ds) * (Decimal(10) ** (e - len(ds) + 1))
            if float(val) == x:
                # Ties go to the even last digit, as CPython's dtoa does.
                candidates.append((abs(val - Decimal(x)), int(ds[-1]) % 2, ds, e))
        if candidates:
            candidates.sort()
            _, _, ds, e = candidates[0]
            return ds.rstrip("0") or "0", e
    raise AssertionError(x)


def manual_float_str(x):
    if x != x:
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    sign = "-" if math.copysign(1.0, x) < 0 else ""
    if x == 0:
        return sign + "0.0"
    digits, exp = _shortest_digits(abs(x))
    if -4 <= exp < 16:
        if exp >= 0:
            whole = digits[:exp + 1].ljust(exp + 1, "0")
            frac = digits[exp + 1:] or "0"
        else:
            whole = "0"
            frac = "0" * (-exp - 1) + digits
        return f"{sign}{whole}.{frac}"
    mant = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    return f"{sign}{mant}e{'+' if exp >= 0 else '-'}{abs(exp):02d}"


def manual_str(value, nested):
    if value is None:
        return "None"
    if value is True:
        return "True"
    if value is False:
        return "False"
    if isinstance(value, int):
        return ("-" if value < 0 else "") + _int_digits(abs(value))
    if isinstance(value, float):
        return manual_float_str(value)
    if isinstance(value, str):
        return manual_string_repr(value) if nested else value
    if isinstance(value, list):
        return "[" + ", ".join(manual_str(v, True) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(manual_string_repr(k) + ": " + manual_str(v, True)
                               for k, v in value.items()) + "}"
    raise TypeError(type(value))


def _int_digits(n):
    digits = []
    while True:
        n, r = divmod(n, 10)
        digits.append("0123456789"[r])
        if not n:
            return "".join(reversed(digits))


def independent_ion_canonical(url, body):
    """Returns the canonical text, or None when the reference cannot sign."""
    try:
        envelope = json.loads(body)
    except ValueError:
        return None
    if not isinstance(envelope, dict) or not isinstance(envelope.get("data"), dict):
        return None
    data = envelope["data"]
    keys = sorted(data, key=lambda k: [ord(c) for c in k])
    text = url + "?" + "&".join(k + ":" + manual_str(data[k], False)
                                for k in keys if data[k] is not None)
    if any(0xD800 <= ord(c) <= 0xDFFF for c in text):
        return None            # UTF-8 cannot encode it; the reference raises
    return text


def independent_ion_verify(secret, url, body, signature):
    canonical = independent_ion_canonical(url, body)
    if canonical is None or not isinstance(signature, str):
        return False, canonical
    expected = manual_b64(manual_hmac(secret.encode("utf-8"), canonical.encode("utf-8"), "sha1"))
    return _same(expected, signature), canonical


def _same(a, b):
    if len(a) != len(b):
        return False
    diff = 0
    for x, y in zip(a, b):
        diff |= ord(x) ^ ord(y)
    return diff == 0


def manual_b64decode(text):
    text = text.rstrip("=")
    bits = "".join(format(B64_ALPHABET.index(c), "06b") for c in text)
    return bytes(int(bits[i:i + 8], 2) for i in range(0, len(bits) - len(bits) % 8, 8))


def independent_sw_verify(secret, msg_id, timestamp, now, body, header, tolerance):
    if now - timestamp > tolerance or timestamp - now > tolerance:
        return False
    raw = secret[6:] if secret[:6] == "whsec_" else secret
    key = manual_b64decode(raw)
    content = (msg_id + "." + _int_digits(timestamp) + "." + body).encode("utf-8")
    expected = manual_b64(manual_hmac(key, content, "sha256"))
    for entry in header.split(" "):
        version, comma, sig = entry.partition(",")
        if comma and version == "v1" and _same(expected, sig):
            return True
    return False


# --------------------------------------------------------------------------
# What JavaScript's JSON.parse(body).data keeps, mapped back to Python values
# the way a parsed-object SDK API would: a Number that is a safe integer
# (|x| <= 2**53 - 1, -0 included) is an int, any other Number a float; object
# keys in JavaScript's own order (array-index keys first, ascending).
# --------------------------------------------------------------------------

class JsRejects(Exception):
    pass


ARRAY_INDEX = re.compile(r"(?:0|[1-9][0-9]*)\Z")


def is_array_index(key):
    return bool(ARRAY_INDEX.match(key)) and int(key) <= 2**32 - 2


def js_order(keys):
    index = sorted((k for k in keys if is_array_index(k)), key=int)
    return index + [k for k in keys if not is_array_index(k)]


def _js_object(pairs):
    merged = {}
    for k, v in pairs:
        merged[k] = v                       # last value wins, first position kept
    return {k: merged[k] for k in js_order(list(merged))}


def _js_number(text):
    x = float(text)
    if math.isfinite(x) and x == int(x) and abs(x) <= MAX_SAFE:
        return int(x)
    return x


def _js_constant(text):
    raise JsRejects(text)


def js_view_canonical(secret, url, body):
    try:
        envelope = json.loads(body, object_pairs_hook=_js_object, parse_int=_js_number,
                              parse_float=_js_number, parse_constant=_js_constant)
    except JsRejects:
        return "JSON.parse rejects"
    except ValueError:
        return "unparseable"
    try:
        js_body = json.dumps(envelope, allow_nan=True)   # re-serialise the JS view
        return ion_sign(secret, url, js_body)[0]
    except Exception:  # noqa: BLE001
        return None


# --------------------------------------------------------------------------
# Automatic flags, derived from what Python parses.
# --------------------------------------------------------------------------

UNICODE_LATER = {  # unassigned (Cn) in Unicode 14.0, assigned in a later version
    0x0CF3: "15.0", 0x0ECE: "15.0", 0x1F6DC: "15.0", 0x1FA75: "15.0", 0x1FA76: "15.0",
    0x1FA77: "15.0", 0x1FA87: "15.0", 0x1FA88: "15.0", 0x1FAE8: "15.0", 0x1FACE: "15.0",
    0x1FACF: "15.0", 0x1FABC: "15.0", 0x1FABF: "15.0", 0x31350: "15.0", 0x1E4D0: "15.0",
    0x1E030: "15.0", 0x11F00: "15.0", 0x2EBF0: "15.1", 0x31EF: "15.1", 0x2FFC: "15.1",
    0x1FAE9: "16.0", 0x1FA89: "16.0", 0x10D40: "16.0",
}
for _cp in UNICODE_LATER:
    assert unicodedata.category(chr(_cp)) == "Cn" or unicodedata.unidata_version != REQUIRED_UNICODE


def _number_spelling_flags(body):
    found = set()

    def on_int(text):
        if str(int(text)) != text:
            found.add("NumberSpelling")
        return int(text)

    def on_float(text):
        if repr(float(text)) != text:
            found.add("NumberSpelling")
        return float(text)

    def on_const(text):
        found.add("NonFiniteLiteral")
        return float(text)

    def on_pairs(pairs):
        keys = [k for k, _ in pairs]
        if len(set(keys)) != len(keys):
            found.add("DuplicateKey")
        return dict(pairs)

    json.loads(body, parse_int=on_int, parse_float=on_float, parse_constant=on_const,
               object_pairs_hook=on_pairs)
    return found


def auto_flags(secret, url, body, canonical):
    flags = set()
    sb = secret.encode("utf-8", "surrogatepass")
    if secret == "":
        flags.add("EmptySecret")
    if any(ord(c) > 0x7F for c in secret):
        flags.add("UnicodeSecret")
    if len(sb) > 64:
        flags.add("LongSecret")
    if "?" in url:
        flags.add("UrlQuery")
    if re.search(r"\\u[0-9a-fA-F]{4}|\\/", body):
        flags.add("UnicodeEscape")
    if re.search(r"\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}", body):
        flags.add("SurrogatePairEscape")
    try:
        flags |= _number_spelling_flags(body)
        envelope = json.loads(body)
    except ValueError:
        return flags | {"BadData"}
    data = envelope.get("data") if isinstance(envelope, dict) else None
    if not isinstance(data, dict):
        return flags | {"BadData"}

    present = [(k, v) for k, v in data.items() if v is not None]
    if len(present) != len(data):
        flags.add("NullTop")
    if not present:
        flags.add("EmptyData")
    by_key = [f"{k}:{v}" for k, v in sorted(present, key=lambda kv: kv[0])]
    if by_key != sorted(by_key):
        flags.add("SortByKey")
    cp_order = sorted(k for k, _ in present)
    u16_order = sorted(cp_order, key=lambda k: k.encode("utf-16-be", "surrogatepass"))
    if cp_order != u16_order:
        flags.add("SortCodePoint")

    def scan_string(s, nested, is_key):
        if len(s) >= 10000:
            flags.add("LongString")
        if any(ord(c) > 0xFFFF for c in s):
            flags.add("Astral")
        if any(0xD800 <= ord(c) <= 0xDFFF for c in s):
            flags.add("LoneSurrogate")
        if is_key and any(ord(c) > 0x7F for c in s):
            flags.add("UnicodeKey")
        if nested:
            if "'" in s:
                flags.add("ReprQuote")
            if any(c in "\\\t\n\r" or ord(c) < 0x20 or ord(c) == 0x7F for c in s):
                flags.add("ReprEscape")
            if any(ord(c) > 0x7F and not c.isprintable() for c in s):
                flags.add("NonPrintable")
            if any(ord(c) in UNICODE_LATER for c in s):
                flags.add("UnicodeVersion")
        elif any(ord(c) > 0x7E or ord(c) < 0x20 for c in s):
            flags.add("RawUnicode")

    def scan(value, depth):
        # depth 0: a top-level value of data; its str() is used.  Deeper: repr().
        if depth >= 30:
            flags.add("DeepNesting")
        if value is None:
            if depth:
                flags.add("NullNested")
        elif isinstance(value, bool):
            flags.add("Bool")
        elif isinstance(value, int):
            if abs(value) > MAX_SAFE:
                flags.add("BigInt")
            if len(str(abs(value))) >= 100:
                flags.add("HugeInt")
        elif isinstance(value, float):
            flags.add("Float")
            if not math.isfinite(value):
                flags.add("NonFinite")
            elif "e" in repr(value):
                flags.add("FloatExponent")
            if value == 0 and math.copysign(1.0, value) < 0:
                flags.add("NegativeZero")
        elif isinstance(value, str):
            scan_string(value, depth > 0, False)
        elif isinstance(value, list):
            if not value:
                flags.add("EmptyContainer")
            for v in value:
                scan(v, depth + 1)
        elif isinstance(value, dict):
            keys = list(value)
            if not keys:
                flags.add("EmptyContainer")
            if keys != sorted(keys):
                flags.add("NestedKeyOrder")
            if keys != js_order(keys):
                flags.add("JsKeyOrder")
            for k, v in value.items():
                scan_string(k, True, True)
                scan(v, depth + 1)

    if list(data) != js_order(list(data)):
        flags.add("JsKeyOrder")
    for k, v in data.items():
        scan_string(k, False, True)
        scan(v, 0)
    for k, v in present:
        if isinstance(v, (bool, float, dict, list)) or (isinstance(v, int) and abs(v) > MAX_SAFE):
            flags.add("PythonStr")
        if v is False or v == "" or v == [] or v == {} or (type(v) in (int, float) and v == 0):
            flags.add("FalsyValue")
    if js_view_canonical(secret, url, body) != canonical:
        flags.add("JsLossy")
    return flags


# --------------------------------------------------------------------------
# Flag documentation (the order here is the order flags appear in a test).
# --------------------------------------------------------------------------

ION_NOTES = {
    "Realistic": "A typical ION change event: a known resource, id, etag and the changed fields in old/new.",
    "PythonStr": "Recomputing the canonical string needs Python str()/repr() rules beyond top-level strings and integers within +-(2^53-1): some signed top-level value is a bool, float, int beyond 2^53-1, dict or list.",
    "JsLossy": "JavaScript's JSON.parse(body).data loses information the canonical string needs (mapping: a safe-integer Number is an int, any other Number a float, keys in JavaScript order), or JSON.parse rejects the body; parsed-object APIs must skip this test and use the raw body.",
    "RawUnicode": "A top-level key or string value holds non-ASCII or control characters, which enter the canonical string unescaped (str(), not repr()).",
    "ReprQuote": "A nested string (value or key) contains a single quote, so repr() quotes it with double quotes, or escapes it as \\' when it also contains a double quote.",
    "ReprEscape": "A nested string contains a backslash, tab, newline, carriage return, another C0 control or DEL, which repr() escapes (\\\\, \\t, \\n, \\r, \\xhh).",
    "NonPrintable": "A nested string contains a non-ASCII character that str.isprintable() rejects under Unicode 14.0 (C1 controls, NBSP, soft hyphen, U+2028, format, private-use, unassigned, ...), which repr() writes as \\xhh, \\uhhhh or \\Uhhhhhhhh.",
    "UnicodeVersion": "Contains a code point unassigned in Unicode 14.0 but assigned in a later version: Python 3.11 escapes it in repr(), Python 3.12+ would not.",
    "Astral": "Contains a character outside the Basic Multilingual Plane (a surrogate pair in UTF-16).",
    "LoneSurrogate": "Contains an unpaired surrogate (from a \\udxxx escape); nested, repr() writes it as \\udxxx; at the top level it cannot be UTF-8 encoded.",
    "SurrogatePairEscape": "The body spells an astral character as an escaped surrogate pair such as \\ud83d\\ude00; it parses to one character.",
    "UnicodeEscape": "The body uses \\uXXXX or \\/ escapes in strings; the parsed value, not the spelling, is signed.",
    "UnicodeKey": "Some key (top-level or nested) contains non-ASCII characters.",
    "LongString": "Some string is at least 10,000 characters long.",
    "Int": "Exercises integers: zero, -0, negatives, big values.",
    "BigInt": "Contains an integer beyond +-(2^53-1), printed exactly by Python.",
    "HugeInt": "Contains an integer with at least 100 digits.",
    "Float": "Contains a float (printed with repr(): shortest round-trip digits, '.0' on integral values, exponent form below 1e-4 and from 1e16).",
    "FloatExponent": "Some float prints in exponent form (1e-05, 1e+16, 5e-324).",
    "NegativeZero": "Contains -0.0 (prints '-0.0') or the integer literal -0 (prints '0').",
    "NonFinite": "Contains inf, -inf or nan (from 1e400, -1e400 or the NaN/Infinity literals).",
    "NonFiniteLiteral": "The body uses the non-standard NaN, Infinity or -Infinity literals, which json.loads accepts.",
    "NumberSpelling": "Some number in the body is spelled differently from Python's str() of its value (1E5, 1.50, -0, 0.1e1, 1e400, ...).",
    "Bool": "Contains true/false, printed True/False.",
    "FalsyValue": "A signed top-level value is falsy but not None (False, 0, 0.0, '', [], {}); only None is left out.",
    "NullTop": "Some top-level value of data is null and is therefore left out.",
    "NullNested": "Contains null inside a container, printed None.",
    "NullTransition": "A field goes from null to a value or from a value to null between old and new.",
    "EmptyData": "No signed values at all: the canonical string is the URL followed by '?'.",
    "EmptyContainer": "Contains an empty {} or [] inside data.",
    "DeepNesting": "Containers nested at least 30 levels deep inside data.",
    "NestedKeyOrder": "A nested object's keys are not in sorted order; repr() keeps the body's order.",
    "JsKeyOrder": "An object has integer-like keys (\"10\", \"2\") that JavaScript's JSON.parse moves to the front in numeric order.",
    "DuplicateKey": "An object in the body repeats a key: the last value wins, in the position of the first occurrence.",
    "ProtoKey": "A key named __proto__, constructor, toString or hasOwnProperty (JSON.parse keeps each as an own property; naive object handling in JavaScript does not).",
    "SortByKey": "Sorting the top-level keys differs from sorting the 'key:value' strings (e.g. keys 'a' and 'a-').",
    "SortCodePoint": "Top-level key order by code point differs from UTF-16 code-unit order (astral vs U+E000..U+FFFF).",
    "ExtraDataKeys": "data holds keys beyond id, etag, old and new; they are signed like the others.",
    "EnvelopeVariant": "The envelope around data is unusual: data not last, extra or repeated top-level fields, a decoy 'data' elsewhere, escaped key spelling, odd whitespace or layout.",
    "EmptySecret": "The shared secret is the empty string.",
    "UnicodeSecret": "The shared secret contains non-ASCII characters (it is UTF-8 encoded).",
    "LongSecret": "The shared secret is longer than 64 bytes in UTF-8, so HMAC hashes it first.",
    "SecretZeroPadding": "The secret ends in NUL characters; HMAC pads keys with zero bytes, so it gives the same signature as the secret without them.",
    "UrlQuery": "The receiver URL contains a '?' already, so the canonical string contains two.",
    "UrlVariant": "An unusual receiver URL (port, trailing slash, unicode, percent-escapes, IPv6, userinfo, fragment, empty); it is used verbatim.",
    "CanonicalCollision": "Another test has a different data object with the same canonical string, hence the same signature (the construction is ambiguous).",
    "UnsignedEnvelope": "Envelope fields outside data changed (event_id, action, ...); they are not signed, so the signature stays valid.",
    "WrongSecret": "The signature was made with a different secret.",
    "WrongUrl": "The signature was made for a different URL (trailing slash, scheme, port, query, case).",
    "ModifiedData": "The signature was made for a body whose data differs in one place.",
    "ModifiedSignature": "One base64 character of the correct signature was changed.",
    "MalformedSignature": "The signature is truncated, empty, padded differently, not base64, hex, or otherwise not the expected base64 string.",
    "NonCanonicalBase64": "The signature decodes to the right bytes but is not the exact base64 text (padding missing, unused bits set, URL-safe alphabet); the reference compares base64 strings, so it is invalid.",
    "WrongAlgorithm": "The signature uses the right key and message but another hash (SHA-256) or encoding (hex).",
    "Unencodable": "The reference raises: a lone surrogate at the top level of data cannot be UTF-8 encoded. canonical is null; the signature is over some lossy encoding.",
    "IntDigitLimit": "An integer literal at Python's default int/str conversion limit: 4300 digits parse, 4301 make json.loads raise ValueError, so the reference cannot verify the body.",
    "BadData": "The reference raises because the body is not JSON, has no data, or data is not an object. canonical is null.",
}

SW_NOTES = {
    "Valid": "The result is valid: some v1 signature in the header matches and the timestamp is within the tolerance.",
    "Rotation": "The header holds several space-separated signatures (secret rotation); the test is valid if any v1 one matches.",
    "OtherVersion": "The header holds signatures with versions other than v1 (v1a, v2, V1), which are ignored.",
    "ModifiedTag": "One base64 character of the correct signature was changed.",
    "ModifiedBody": "The signature was made for a different body (one byte, whitespace, trailing newline).",
    "ModifiedMsgId": "The signature was made for a different webhook-id.",
    "ModifiedTimestamp": "The signature was made for a different webhook-timestamp.",
    "WrongSecret": "The signature was made with a different key.",
    "SecretNotDecoded": "The signature was keyed with the secret's text instead of its base64-decoded bytes (a common bug).",
    "StaleTimestamp": "now - timestamp > toleranceSeconds: too old, invalid even with a correct signature.",
    "FutureTimestamp": "timestamp - now > toleranceSeconds: too new, invalid even with a correct signature.",
    "ToleranceBoundary": "|now - timestamp| is exactly toleranceSeconds (valid) or one more (invalid).",
    "MalformedHeader": "The header is empty, lacks a comma, has an empty or non-base64 signature, or is otherwise malformed.",
    "NonCanonicalBase64": "The signature decodes to the right bytes but is not the exact base64 text (missing padding, unused bits set, URL-safe alphabet); libraries compare base64 strings, so it is invalid.",
    "NoPrefix": "The secret is given as bare base64 without the whsec_ prefix; it is accepted.",
    "ShortKey": "The decoded key is shorter than 24 bytes.",
    "LongKey": "The decoded key is longer than 64 bytes, so HMAC hashes it first.",
    "UnicodeBody": "The body contains non-ASCII characters (signed as UTF-8).",
    "LargeBody": "The body is at least 64 KiB.",
    "EmptyBody": "The body is the empty string.",
    "NonJsonBody": "The body is not JSON; Standard Webhooks signs bytes, not JSON.",
    "UnusualMsgId": "The webhook-id is not of the usual msg_<base62> form (UUID, dots, unicode, long).",
}


# --------------------------------------------------------------------------
# Random material.
# --------------------------------------------------------------------------

ASCII_TEXT = string.ascii_letters + string.digits + " -_.,;!?@#$%^*()[]{}<>=+~`|/&:"
CHAR_CLASSES = {
    "ascii": ASCII_TEXT,
    "single_quote": "'",
    "double_quote": '"',
    "backslash": "\\",
    "tab_newline_cr": "\t\n\r",
    "c0_control": "".join(chr(i) for i in range(0x20) if chr(i) not in "\t\n\r"),
    "del": "\x7f",
    "c1_control": "".join(chr(i) for i in range(0x80, 0xA0)),
    "nbsp": "\xa0",
    "soft_hyphen": "\xad",
    "line_separators": "\u2028\u2029",
    "other_spaces": "\u1680\u2000\u2003\u2007\u200a\u202f\u205f\u3000",
    "format_chars": "\u200b\u200c\u200d\u200e\u200f\u202a\u202e\u2060\u2066\u2069\ufeff\u061c\u0600\u06dd\u180e\ufff9",
    "private_use": "\ue000\ue123\uf8ff\U000f0000\U0010fffd",
    "unassigned": "\u0378\u0379\u0380\u05ff\u0e5c\U0001fffe\U0010ffff\ufdd0\ufffe\uffff",
    "latin1_letters": "\xe9\xf1\xfc\xdf\xe7\xf8\xe5\xc6\xb5\xbf\xa9",
    "latin_ext": "\u0152\u0141\u017e\u0103\u1e9e",
    "greek_cyrillic": "\u03b1\u03b2\u03b3\u03a9\u0436\u0449\u042f",
    "cjk": "\u6f22\u5b57\u65e5\u672c\u8a9e\u4e2d\u6587\ud55c\uad6d\uc5b4\u304b\u306a\u30ab\u30ca",
    "cjk_ext_b": "\U00020000\U0002a6d6\U0002070e\U00020b9f\U00028779",
    "emoji": "\U0001f600\U0001f389\U0001f980\U0001f680\U0001f4a9\U0001f44d\u2764\u2705",
    "astral_symbols": "\U0001d518\U0001d54f\U00010348\U00013000\U0001f701\U0001f0a1",
    "astral_nonprintable": "\U000e0001\U000e0020\U000e007f\U0001d173\U000110bd\U0001bca0",
    "combining": "\u0301\u0300\u0308\u0327\u20dd\u0489\u0903\ufe0f\u200d",
    "rtl": "\u05e9\u05dc\u05d5\u05dd\u0645\u0631\u062d\u0628\u0627\u0661\u0662\u06f3",
    "replacement": "\ufffd\ufffc",
    "unicode_later": "".join(chr(c) for c in UNICODE_LATER),
}
LONE_SURROGATES = "\ud800\udbff\udc00\udfff\ud83d\ude00\ud834"
RESOURCES = ["run_step", "run", "part", "part_inventory", "issue", "purchase_order", "file_attachment"]
STATUSES = ["in_progress", "complete", "failed", "pending", "redline", "on_hold", "canceled"]
HOSTS = ["hooks.example.com", "api.acme.io", "receiver.example.org", "ion-sync.internal.example.net",
         "webhooks.mes.example.com"]
PATHS = ["/ion-events", "/webhooks/ion", "/hooks/run-steps", "/api/v2/ion/webhook", "/receive"]


def rand_secret(rng, n=32):
    return "".join(rng.choice(string.ascii_letters + string.digits + "-_") for _ in range(n))


def rand_url(rng):
    return "https://" + rng.choice(HOSTS) + rng.choice(PATHS)


def rand_etag(rng):
    return "".join(rng.choice("0123456789abcdef") for _ in range(rng.choice([6, 8, 12, 32])))


def rand_iso(rng):
    return "2026-%02d-%02dT%02d:%02d:%02d.%03dZ" % (
        rng.randint(1, 12), rng.randint(1, 28), rng.randint(0, 23), rng.randint(0, 59),
        rng.randint(0, 59), rng.randint(0, 999))


def rand_ident(rng):
    words = ["status", "quantity", "title", "notes", "completed_at", "assigned_to_id", "serial",
             "part_number", "revision", "location", "duration_seconds", "attributes", "tags",
             "measurement", "unit", "lot", "priority", "owner", "kit", "description"]
    word = rng.choice(words)
    if rng.random() < 0.3:
        word += "_" + rng.choice(words)
    return word


def rand_text(rng, classes=None, length=None, ascii_share=0.5):
    classes = classes or [c for c in CHAR_CLASSES if c not in ("ascii", "unicode_later")]
    length = rng.randint(0, 12) if length is None else length
    out = []
    for _ in range(length):
        pool = CHAR_CLASSES["ascii"] if rng.random() < ascii_share else CHAR_CLASSES[rng.choice(classes)]
        out.append(rng.choice(pool))
    return "".join(out)


def rand_text_with(rng, cls, length=None):
    """A string that certainly contains characters of class cls."""
    length = rng.randint(1, 10) if length is None else length
    chars = [rng.choice(CHAR_CLASSES["ascii"]) for _ in range(length)]
    for _ in range(rng.randint(1, 3)):
        chars.insert(rng.randint(0, len(chars)), rng.choice(CHAR_CLASSES[cls]))
    return "".join(chars)


def rand_double(rng):
    while True:
        x = struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))[0]
        if math.isfinite(x):
            return x


NUMBER_GRAMMAR = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?\Z")


def float_spellings(x):
    """Distinct JSON float spellings that json.loads turns into exactly x (finite)."""
    out = []

    def add(text):
        if text in out or not NUMBER_GRAMMAR.match(text) or not any(c in text for c in ".eE"):
            return
        y = float(text)
        if y == x and math.copysign(1.0, y) == math.copysign(1.0, x):
            out.append(text)

    r = repr(x)
    add(r)
    add(r.upper())
    add(r.replace("e+", "e").replace("e-0", "e-"))
    add(r.replace("e", "E+") if "e-" not in r and "e+" not in r else r.replace("e+", "E+"))
    add("%.17g" % x)
    add("%.17e" % x)
    add("%.20E" % x)
    sign = "-" if math.copysign(1.0, x) < 0 else ""
    if x == 0:
        for t in ("0.0", "0e0", "0.000", "0E-5", "0.0e+10"):
            add(sign + t)
        if sign:
            add("-1e-400")
        return out
    digits, exp = _shortest_digits(abs(x))
    add(f"{sign}{digits}e{exp - len(digits) + 1}")
    add(f"{sign}0.{digits}e{exp + 1}")
    add(f"{sign}{digits[0]}.{digits[1:] or '0'}000e{exp}")
    add(f"{sign}{digits[0]}.{digits[1:] or '0'}E+00{exp}" if exp >= 0 else f"{sign}{digits}E{exp - len(digits) + 1}")
    if -20 < exp < 22:
        fixed = format(Decimal(r), "f")
        add(fixed if "." in fixed else fixed + ".0")
        add((fixed if "." in fixed else fixed + ".") + "000")
    exact = Decimal(x)
    if -30 < exp < 30:
        add(format(exact, "f") if "." in format(exact, "f") else format(exact, "f") + ".0")
    else:
        add(str(exact) if any(c in str(exact) for c in ".E") else str(exact) + ".0")
    return out


def rand_number_node(rng):
    kind = rng.random()
    if kind < 0.25:
        return rng.randint(-1000, 100000)
    if kind < 0.35:
        return rng.choice([1, -1]) * rng.randint(2**53, 2**64 + 5)
    if kind < 0.40:
        return rng.choice([1, -1]) * rng.randint(10**40, 10**60)
    if kind < 0.70:
        x = rand_double(rng) if rng.random() < 0.5 else round(rng.uniform(-1e4, 1e4), rng.randint(0, 6))
        return Raw(rng.choice(float_spellings(x)))
    if kind < 0.85:
        x = rng.choice([0.1, 1.0, -0.0, 1e-05, 0.0001, 1e16, 9999999999999998.0, 1e22, 5e-324,
                        1.7976931348623157e308, 2.0, 100.0, 0.5, 1e21, 123456789.0])
        return Raw(rng.choice(float_spellings(x)))
    return rng.choice([0, Raw("-0"), 2**53 - 1, 2**53, 2**53 + 1, -(2**63), 2**64])


def rand_scalar(rng, allow_surrogates=False):
    r = rng.random()
    if r < 0.45:
        s = rand_text(rng)
        if allow_surrogates and rng.random() < 0.1:
            i = rng.randint(0, len(s))
            s = s[:i] + rng.choice(LONE_SURROGATES) + s[i:]
        return s
    if r < 0.75:
        return rand_number_node(rng)
    if r < 0.85:
        return rng.choice([True, False])
    return None


def rand_key(rng, nested):
    r = rng.random()
    if r < 0.6:
        return rand_ident(rng)
    if r < 0.7:
        return rand_ident(rng) + rand_text(rng, length=rng.randint(1, 3))
    if r < 0.8:
        return str(rng.choice([0, 1, 2, 3, 7, 10, 42, 100, 4294967294, 4294967295]))
    if r < 0.9:
        return rng.choice(["a", "a-", "a_b", "a.b", "A", "_", "", " ", "Z", "z", "\xe9t\xe9", "\u540d\u524d",
                           "\U0001f511", "id2", "etag_", "new_", "old-"])
    return rand_text(rng, length=rng.randint(1, 6), ascii_share=0.3)


def rand_tree(rng, depth=0, max_depth=4, allow_surrogates=True):
    r = rng.random()
    if depth >= max_depth or r < 0.55:
        return rand_scalar(rng, allow_surrogates and depth > 0)
    if r < 0.75:
        return Arr(rand_tree(rng, depth + 1, max_depth) for _ in range(rng.randint(0, 4)))
    return Obj((rand_key(rng, True), rand_tree(rng, depth + 1, max_depth))
               for _ in range(rng.randint(0, 4)))


def realistic_change(rng):
    fields = {
        "status": lambda: rng.choice(STATUSES),
        "completed_at": lambda: rand_iso(rng),
        "quantity": lambda: rng.randint(0, 500),
        "title": lambda: rng.choice(["Torque bolts", "Inspect weld", "Final QA", "Kitting",
                                     "Pr\xfcfung", "Montage \xe9tape 3"]),
        "assigned_to_id": lambda: rng.choice([None, rng.randint(1, 9999)]),
        "duration_seconds": lambda: round(rng.uniform(0, 5000), rng.randint(0, 3)),
        "location_id": lambda: rng.randint(1, 300),
        "notes": lambda: rng.choice(["", "ok", "Re-torqued to 25 N\xb7m", "see NCR-1042",
                                     "operator's note", "line 1\nline 2"]),
        "passed": lambda: rng.choice([True, False]),
        "serial_number": lambda: "SN-%06d" % rng.randint(0, 999999),
    }
    names = rng.sample(sorted(fields), rng.randint(1, 4))
    old = Obj((n, fields[n]()) for n in names)
    new = Obj((n, fields[n]()) for n in names)
    return old, new


def ion_data(rng, old="auto", new="auto", extra=(), front=(), id_=None, etag=None):
    if old == "auto" or new == "auto":
        o, n = realistic_change(rng)
        old = o if old == "auto" else old
        new = n if new == "auto" else new
    pairs = list(front)
    pairs += [("id", rng.randint(1, 999999) if id_ is None else id_),
              ("etag", rand_etag(rng) if etag is None else etag),
              ("old", old), ("new", new)]
    pairs += list(extra)
    return Obj(pairs)


def envelope(rng, data, action=None, resource=None):
    if action is None:
        action = "update"
        if isinstance(data, Obj):
            d = dict(data.pairs)
            if d.get("old", 0) is None:
                action = "create"
            elif d.get("new", 0) is None:
                action = "delete"
    return Obj([
        ("event_id", rng.randint(100000, 9999999)),
        ("subscription_id", rng.randint(1, 500)),
        ("resource", resource or rng.choice(RESOURCES)),
        ("action", action),
        ("transaction_id", rng.randint(1000000, 99999999)),
        ("occurred_at", rand_iso(rng)),
        ("data", data),
    ])


def plain_body(rng, data, layout=None, strings=None):
    layout = layout or rng.choice(["spaced", "spaced", "compact"])
    strings = strings or rng.choice(["min", "min", "ascii"])
    return Writer(rng, layout, strings).dump(envelope(rng, data))


def extras_with(rng, values, key_prefix="x"):
    return [(f"{key_prefix}{i}" if isinstance(key_prefix, str) else key_prefix(i), v)
            for i, v in enumerate(values)]


# --------------------------------------------------------------------------
# Suites.
# --------------------------------------------------------------------------

class IonSuite:
    def __init__(self):
        self.tests = []
        self.sections = []
        self.section = None

    def add(self, comment, flags, secret, url, body, signature=None, result="valid"):
        canonical, good = ion_try_sign(secret, url, body)
        if signature is None:
            signature = good
        assert isinstance(signature, str), comment
        assert result in ("valid", "invalid")
        if result == "valid":
            assert canonical is not None and signature == good, comment
        else:
            assert signature != good, comment
        body.encode("utf-8")  # bodies are always real UTF-8 text
        all_flags = set(flags) | auto_flags(secret, url, body, canonical)
        unknown = all_flags - set(ION_NOTES)
        assert not unknown, (comment, unknown)
        self.tests.append({
            "tcId": len(self.tests) + 1,
            "comment": comment,
            "flags": [f for f in ION_NOTES if f in all_flags],
            "secret": secret,
            "url": url,
            "body": body,
            "canonical": canonical,
            "signature": signature,
            "result": result,
        })
        self.sections.append(self.section)
        return canonical, good


def sig_for(secret, url, body):
    return ion_sign(secret, url, body)[1]


# ---- valid ION sections ---------------------------------------------------

def sec_realistic(rng, suite):
    for i in range(40):
        shape = i % 4
        if shape == 0:
            data = ion_data(rng, old=None)
            data.pairs[3] = ("new", realistic_change(rng)[1])
        elif shape == 1:
            data = ion_data(rng, new=None)
            data.pairs[2] = ("old", realistic_change(rng)[0])
        else:
            data = ion_data(rng)
        body = plain_body(rng, data)
        suite.add(["create event", "delete event", "update event", "update event"][shape],
                  ["Realistic"], rand_secret(rng), rand_url(rng), body)
    # The example from the ION reference.
    data = Obj([("id", 1234), ("etag", "abc123"), ("old", Obj([("status", "in_progress")])),
                ("new", Obj([("status", "complete"), ("completed_at", "2026-04-26T19:33:42.108Z")]))])
    env = Obj([("event_id", 123456), ("subscription_id", 42), ("resource", "run_step"),
               ("action", "update"), ("transaction_id", 9876543),
               ("occurred_at", "2026-04-26T19:33:42.108Z"), ("data", data)])
    for layout in ("pretty2", "compact"):
        suite.add(f"the payload example from the ION reference ({layout})", ["Realistic"],
                  "s3cr3t-shared-secret", "https://hooks.example.com/ion-events",
                  Writer(rng, layout).dump(env))


def sec_top_strings(rng, suite):
    classes = list(CHAR_CLASSES)
    for i in range(76):
        cls = classes[i % len(classes)]
        values = [rand_text_with(rng, cls) for _ in range(rng.randint(1, 3))]
        data = ion_data(rng, extra=extras_with(rng, values, "text_"))
        suite.add(f"top-level string values with {cls.replace('_', ' ')} characters (str() inserts them raw)",
                  ["ExtraDataKeys"], rand_secret(rng), rand_url(rng),
                  plain_body(rng, data, strings=rng.choice(STRING_STYLES)))
    for s in ["", " ", "None", "null", "'quoted'", '"double"', "a&b:c", "x?y=z", "\\", "\\n",
              "\u2028", "\x00", "\x7f\x85\xa0\xad", "\U000e0001", "\ufeff"]:
        data = ion_data(rng, extra=[("value", s)])
        suite.add(f"top-level string {s!r} goes in unescaped", ["ExtraDataKeys"],
                  rand_secret(rng), rand_url(rng), plain_body(rng, data, strings="ascii"))


def sec_nested_quotes(rng, suite):
    templates = [
        ("no quotes", lambda: rand_text_with(rng, "ascii").replace("'", "").replace('"', "")),
        ("a single quote only", lambda: "it's " + rand_ident(rng)),
        ("a double quote only", lambda: 'say "' + rand_ident(rng) + '"'),
        ("both quote kinds", lambda: "it's \"" + rand_ident(rng) + "\""),
        ("only a single quote", lambda: "'"),
        ("only a double quote", lambda: '"'),
        ("both quotes and a backslash", lambda: "'\\\"" + rand_ident(rng)),
        ("single quotes and backslashes", lambda: "C:\\Users\\o'brien"),
        ("quote next to backslash", lambda: "\\'"),
        ("random quotes", lambda: "".join(rng.choice("'\"\\ab") for _ in range(rng.randint(1, 8)))),
    ]
    for i in range(60):
        label, make = templates[i % len(templates)]
        value = make()
        where = i // len(templates) % 3
        if where == 0:
            new = Obj([("notes", value), ("status", rng.choice(STATUSES))])
        elif where == 1:
            new = Obj([("tags", Arr([value, rand_ident(rng), value + "x"]))])
        else:
            new = Obj([(value, rng.randint(0, 9)), ("k", Obj([(value, value)]))])
        data = ion_data(rng, old=Obj([("notes", "before")]), new=new)
        where_s = ["an object value", "a list item", "an object key"][where]
        suite.add(f"nested string with {label} as {where_s}: repr() picks the quotes",
                  [], rand_secret(rng), rand_url(rng),
                  plain_body(rng, data, strings=rng.choice(STRING_STYLES)))


def sec_nested_classes(rng, suite):
    classes = [c for c in CHAR_CLASSES if c != "ascii"]
    for i in range(8 * len(classes)):
        cls = classes[i % len(classes)]
        v1, v2 = rand_text_with(rng, cls), rand_text_with(rng, cls)
        shape = (i // len(classes)) % 4
        if shape == 0:
            new = Obj([("notes", v1), ("title", v2)])
        elif shape == 1:
            new = Obj([("tags", Arr([v1, Arr([v2]), 1]))])
        elif shape == 2:
            new = Obj([(v1, v2)])
        else:
            new = Obj([("attributes", Obj([("a", v1), (v2, Arr([]))]))])
        data = ion_data(rng, new=new, old=Obj([(k, "") for k, _ in new.pairs]))
        suite.add(f"nested strings with {cls.replace('_', ' ')} characters (repr() rules)", [],
                  rand_secret(rng), rand_url(rng),
                  plain_body(rng, data, strings=rng.choice(STRING_STYLES)))


def sec_long_strings(rng, suite):
    specs = [("ascii", "top"), ("ascii", "nested"), ("cjk", "top"), ("emoji", "nested"),
             ("c0_control", "nested"), ("single_quote", "nested"), ("rtl", "top"),
             ("c1_control", "nested")]
    for cls, where in specs:
        n = rng.randint(10000, 14000)
        text = "".join(rng.choice(CHAR_CLASSES[cls]) if rng.random() < 0.15 else rng.choice(string.ascii_letters + " ")
                       for _ in range(n))
        if where == "top":
            data = ion_data(rng, extra=[("long_text", text)])
        else:
            data = ion_data(rng, new=Obj([("description", text)]), old=Obj([("description", "")]))
        suite.add(f"long {where}-level string ({n} characters, {cls.replace('_', ' ')})", [],
                  rand_secret(rng), rand_url(rng), plain_body(rng, data, strings="min"))


def sec_unicode_keys(rng, suite):
    keys = ["\xe9tat", "\u540d\u524d", "\U0001f511", "\u05de\u05e4\u05ea\u05d7", "cl\xe9\u0301",
            "\xa0", "\u2028", "\ue000", "k\u200dk", "\U000e0001", "\u0378", "\U00020000", "\x85",
            "\ufeff", "\u0130", "\u03a3\u03c3\u03c2"]
    for i in range(40):
        k = keys[i % len(keys)] if i < len(keys) else rand_text(rng, length=rng.randint(1, 5), ascii_share=0.2)
        if i % 2 == 0:
            data = ion_data(rng, extra=[(k, rand_text(rng)), (k + "2", rng.randint(0, 9))])
            label = "top-level key (raw)"
        else:
            data = ion_data(rng, new=Obj([(k, rand_text(rng)), ("n", Obj([(k, 1)]))]))
            label = "nested key (repr)"
        suite.add(f"unicode {label} {k!r}", ["ExtraDataKeys"] if i % 2 == 0 else [],
                  rand_secret(rng), rand_url(rng), plain_body(rng, data, strings=rng.choice(STRING_STYLES)))


def sec_surrogates(rng, suite):
    for i in range(40):
        s = rng.choice(LONE_SURROGATES)
        text = rand_text(rng, length=3) + s + rand_text(rng, length=2)
        shape = i % 4
        if shape == 0:
            new = Obj([("notes", text)])
        elif shape == 1:
            new = Obj([("tags", Arr([text, s]))])
        elif shape == 2:
            new = Obj([(text, 1)])
        else:
            new = Obj([("deep", Arr([Obj([("x", Arr([s + s]))])]))])
        data = ion_data(rng, new=new)
        suite.add("lone surrogate inside a nested container (repr() writes \\udxxx)", [],
                  rand_secret(rng), rand_url(rng), plain_body(rng, data, strings=rng.choice(STRING_STYLES)))
    # Surrogates that pair up, or do not, depending on order.
    for i, (text, label) in enumerate([
        ("\ud83d\ude00", "high then low: one character"),
        ("\ude00\ud83d", "low then high: two lone surrogates"),
        ("\ud83d\ud83d\ude00", "high, high, low: a lone one then a pair"),
        ("\ud83dx\ude00", "separated by a character: two lone surrogates"),
    ] * 3):
        new = Obj([("v", text), ("l", Arr([text]))])
        data = ion_data(rng, new=new)
        suite.add(f"escaped surrogates nested, {label}", [], rand_secret(rng), rand_url(rng),
                  plain_body(rng, data, strings="min"))
    for i in range(20):
        ch = rng.choice(CHAR_CLASSES["emoji"][:6] + CHAR_CLASSES["cjk_ext_b"] + CHAR_CLASSES["astral_nonprintable"])
        text = rand_text(rng, length=2) + ch + rand_text(rng, length=2)
        top = i % 2 == 0
        data = ion_data(rng, extra=[("astral", text)]) if top else ion_data(rng, new=Obj([("astral", text)]))
        suite.add(f"astral character written as an escaped surrogate pair ({'top level' if top else 'nested'})",
                  ["ExtraDataKeys"] if top else [], rand_secret(rng), rand_url(rng),
                  Writer(rng, rng.choice(LAYOUTS), "ascii").dump(envelope(rng, data)))


def sec_unicode_version(rng, suite):
    cps = list(UNICODE_LATER)
    for i in range(14):
        ch = chr(cps[i % len(cps)])
        text = rand_ident(rng) + " " + ch
        top = i % 3 == 0
        data = ion_data(rng, extra=[("emoji", text)]) if top else ion_data(rng, new=Obj([("emoji", text)]))
        suite.add(f"U+{ord(ch):04X} (new in Unicode {UNICODE_LATER[ord(ch)]}) {'top level, raw' if top else 'nested, escaped by Python 3.11'}",
                  ["ExtraDataKeys"] if top else [], rand_secret(rng), rand_url(rng),
                  plain_body(rng, data, strings=rng.choice(["min", "ascii"])))


def sec_emoji_sequences(rng, suite):
    seqs = [
        ("\U0001f468\u200d\U0001f469\u200d\U0001f467", "ZWJ family"),
        ("\U0001f3f4\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f", "England flag (tag characters)"),
        ("\U0001f44d\U0001f3fd", "skin tone modifier"),
        ("1\ufe0f\u20e3", "keycap"),
        ("\U0001f1e9\U0001f1ea", "regional indicator flag"),
        ("\u2764\ufe0f", "variation selector"),
        ("\U0001f3f3\ufe0f\u200d\U0001f308", "rainbow flag (ZWJ)"),
        ("e\u0301 vs \xe9", "decomposed vs precomposed"),
    ]
    for i in range(16):
        seq, label = seqs[i % len(seqs)]
        top = i >= len(seqs)
        data = ion_data(rng, extra=[("emoji", seq)]) if top else ion_data(rng, new=Obj([("emoji", seq), ("l", Arr([seq]))]))
        suite.add(f"{label} {'top level' if top else 'nested'}", ["ExtraDataKeys"] if top else [],
                  rand_secret(rng), rand_url(rng), plain_body(rng, data, strings=rng.choice(STRING_STYLES)))


INT_SPECIALS = [
    (0, "zero"), (Raw("-0"), "-0 (an int, prints 0)"), (-1, "minus one"), (-987654321, "negative"),
    (2**31 - 1, "2^31-1"), (2**31, "2^31"), (2**32, "2^32"), (MAX_SAFE, "2^53-1"), (2**53, "2^53"),
    (2**53 + 1, "2^53+1"), (-(2**53 + 1), "-(2^53+1)"), (2**63 - 1, "i64 max"), (-(2**63), "i64 min"),
    (2**63, "2^63"), (2**64 - 1, "u64 max"), (2**64, "2^64"), (2**64 + 1, "2^64+1"), (-(2**64), "-2^64"),
    (10**20, "10^20"), (2**128, "2^128"), (10**300, "10^300"), (-(10**299) - 7, "300-digit negative"),
]


def sec_ints(rng, suite):
    for i, (value, label) in enumerate(INT_SPECIALS * 2):
        top = i < len(INT_SPECIALS)
        if top:
            data = ion_data(rng, extra=[("n", value)])
        else:
            data = ion_data(rng, new=Obj([("n", value), ("l", Arr([value, 1]))]),
                            old=Obj([("n", Raw("0")), ("l", Arr([]))]))
        flags = ["Int"] + (["NegativeZero"] if isinstance(value, Raw) else []) + (["ExtraDataKeys"] if top else [])
        suite.add(f"integer {label}, {'top level' if top else 'nested'}", flags,
                  rand_secret(rng), rand_url(rng), plain_body(rng, data))
    for i in range(36):
        kind = i % 6
        if kind == 0:
            v = rng.randint(-10**6, 10**6)
        elif kind == 1:
            v = rng.choice([1, -1]) * rng.randint(2**53, 2**64)
        elif kind == 2:
            v = rng.choice([1, -1]) * rng.randint(2**64, 2**128)
        elif kind == 3:
            v = rng.choice([1, -1]) * rng.randint(10**299, 10**300 - 1)
        elif kind == 4:
            v = rng.randint(0, 2**53)
        else:
            v = rng.choice([1, -1]) * rng.randint(10**99, 10**150)
        top = rng.random() < 0.5
        data = ion_data(rng, id_=v if kind == 1 else None,
                        extra=[("value", v)] if top else [],
                        new=Obj([("value", v)]) if not top else "auto")
        suite.add(f"random integer with {len(str(abs(v)))} digits, {'top level' if top else 'nested'}",
                  ["Int"] + (["ExtraDataKeys"] if top else []), rand_secret(rng), rand_url(rng), plain_body(rng, data))


FLOAT_SPECIALS = [0.1, 1.0, -0.0, 0.0, 1e-05, 0.0001, 1e16, 9999999999999998.0, 1e22, 5e-324,
                  1.7976931348623157e308, 2.2250738585072014e-308, 0.30000000000000004, 1e21, 1e15,
                  123456789012345680.0, 1.5, -2.5, 100.0, 1e-07, 0.001, 4.35, 9007199254740993.0,
                  1e-323, 2**53 * 1.0, 1234.5e10]


def sec_floats_special(rng, suite):
    for i, x in enumerate(FLOAT_SPECIALS):
        spellings = float_spellings(x)
        for j in range(4):
            sp = spellings[j % len(spellings)] if j < 2 else rng.choice(spellings)
            top = j % 2 == 0
            node = Raw(sp)
            data = ion_data(rng, extra=[("f", node)]) if top else ion_data(
                rng, new=Obj([("f", node), ("l", Arr([node, Obj([("g", node)])]))]))
            suite.add(f"float {x!r} spelled {sp}, {'top level' if top else 'nested'}",
                      ["ExtraDataKeys"] if top else [], rand_secret(rng), rand_url(rng), plain_body(rng, data))


def sec_floats_random(rng, suite):
    for i in range(90):
        if i % 3 == 2:
            x = round(rng.uniform(-1000, 1000), rng.randint(0, 8)) * rng.choice([1, 1e-10, 1e10, 1e300, 1e-300])
        else:
            x = rand_double(rng)
        sp = rng.choice(float_spellings(x)) if i % 2 else repr(x)
        top = i % 4 < 2
        node = Raw(sp)
        data = ion_data(rng, extra=[("x", node), ("y", Raw(rng.choice(float_spellings(rand_double(rng)))))]) if top \
            else ion_data(rng, new=Obj([("x", node), ("xs", Arr([Raw(repr(rand_double(rng))) for _ in range(3)]))]))
        suite.add(f"random double {x!r} spelled {sp[:40]}, {'top level' if top else 'nested'}",
                  ["ExtraDataKeys"] if top else [], rand_secret(rng), rand_url(rng), plain_body(rng, data))


def sec_nonfinite(rng, suite):
    spellings = [("1e400", "overflows to inf"), ("-1e400", "overflows to -inf"),
                 ("1E999", "overflows to inf"), ("123456789e999", "overflows to inf"),
                 ("1" + "0" * 400 + ".0", "401-digit decimal overflows to inf"),
                 ("1e-400", "underflows to 0.0"), ("-1e-400", "underflows to -0.0"),
                 ("NaN", "NaN literal"), ("Infinity", "Infinity literal"), ("-Infinity", "-Infinity literal"),
                 ("2.4703282292062327e-324", "exactly half the smallest subnormal: rounds to 0.0"),
                 ("2.4703282292062328e-324", "just above half the smallest subnormal: 5e-324")]
    for i, (sp, label) in enumerate(spellings * 2):
        top = i < len(spellings)
        node = Raw(sp)
        data = ion_data(rng, extra=[("v", node)]) if top else ion_data(
            rng, new=Obj([("v", node), ("l", Arr([node]))]))
        suite.add(f"number {sp[:30]} ({label}), {'top level' if top else 'nested'}",
                  ["ExtraDataKeys"] if top else [], rand_secret(rng), rand_url(rng), plain_body(rng, data))
    # An integer literal too long for JavaScript (and a float overflow for it).
    big = "9" * 400
    data = ion_data(rng, new=Obj([("big", Raw(big))]))
    suite.add("400-digit integer: exact in Python, Infinity in JavaScript", ["Int"], rand_secret(rng),
              rand_url(rng), plain_body(rng, data))


def sec_bool_null(rng, suite):
    cases = [
        ("top-level true", [("flag", True)]),
        ("top-level false (falsy, still signed)", [("flag", False)]),
        ("top-level true and false", [("a", True), ("b", False)]),
        ("top-level 0, 0.0, '', [] and {} are signed", [("z", 0), ("zf", 0.0), ("zs", ""), ("zl", Arr()), ("zd", Obj())]),
        ("top-level null left out", [("gone", None)]),
        ("several top-level nulls left out", [("a", None), ("b", None), ("c", 1)]),
        ("string 'None' vs null", [("a", "None"), ("b", None)]),
        ("nested True/False/None", [("m", Obj([("t", True), ("f", False), ("n", None)]))]),
        ("list of True/False/None", [("m", Arr([True, False, None, 0, ""]))]),
    ]
    for i in range(45):
        label, extra = cases[i % len(cases)]
        data = ion_data(rng, extra=extra) if i % 2 == 0 else ion_data(rng, new=Obj(extra), old=Obj([(extra[0][0], None)]))
        suite.add(f"{label}, {'in data' if i % 2 == 0 else 'inside new'}", ["ExtraDataKeys"] if i % 2 == 0 else [],
                  rand_secret(rng), rand_url(rng), plain_body(rng, data))


def sec_null_transitions(rng, suite):
    for i in range(60):
        kind = i % 6
        field = rand_ident(rng)
        value = rand_scalar(rng) if rng.random() < 0.7 else rand_tree(rng, 1, 3)
        if value is None:
            value = "x"
        if kind == 0:
            data = ion_data(rng, old=None, new=Obj([(field, value), ("status", "pending")]))
            label, flags = "CREATE: old is null and left out", []
        elif kind == 1:
            data = ion_data(rng, new=None, old=Obj([(field, value), ("status", "complete")]))
            label, flags = "DELETE: new is null and left out", []
        elif kind == 2:
            data = ion_data(rng, old=Obj([(field, None)]), new=Obj([(field, value)]))
            label, flags = "null to value", ["NullTransition"]
        elif kind == 3:
            data = ion_data(rng, old=Obj([(field, value)]), new=Obj([(field, None)]))
            label, flags = "value to null", ["NullTransition"]
        elif kind == 4:
            data = ion_data(rng, old=Obj([(field, None), ("b", 1)]), new=Obj([(field, value), ("b", None)]))
            label, flags = "null to value and value to null together", ["NullTransition"]
        else:
            data = ion_data(rng, old=None, new=None)
            label, flags = "old and new both null: only id and etag signed", []
        suite.add(label, flags, rand_secret(rng), rand_url(rng), plain_body(rng, data))


def sec_containers(rng, suite):
    fixed = [
        ("empty object and empty list", Obj([("o", Obj()), ("l", Arr())])),
        ("list of empties", Obj([("l", Arr([Obj(), Arr(), Obj(), ""]))])),
        ("object in list in object", Obj([("a", Arr([Obj([("b", Arr([Obj([("c", 1)])]))])]))])),
        ("mixed types in one list", Obj([("l", Arr([1, 1.5, "s", True, None, Arr(), Obj([("k", "v")])]))])),
        ("nested empty strings", Obj([("l", Arr(["", Arr([""]), Obj([("", "")])]))])),
    ]
    for label, new in fixed:
        for top in (False, True):
            if top:
                data = ion_data(rng, extra=[(k, v) for k, v in new.pairs])
            else:
                data = ion_data(rng, new=new)
            suite.add(f"{label}, {'top level' if top else 'nested'}", ["ExtraDataKeys"] if top else [],
                      rand_secret(rng), rand_url(rng), plain_body(rng, data))
    for i in range(40):
        extra = [(rand_key(rng, False), rand_tree(rng, 1, 5)) for _ in range(rng.randint(1, 3))]
        extra = [(k, v if isinstance(v, (Obj, Arr)) else Arr([v])) for k, v in extra]
        data = ion_data(rng, extra=extra, new=rand_tree(rng, 0, 5) if i % 2 else "auto")
        suite.add("random nested containers", ["ExtraDataKeys"], rand_secret(rng), rand_url(rng),
                  plain_body(rng, data, strings=rng.choice(STRING_STYLES)))


def sec_deep(rng, suite):
    for depth in (30, 31, 50, 100, 125, 126, 127, 128, 129, 130, 200, 300):
        node = rand_scalar(rng)
        kinds = rng.choice(["list", "dict", "mixed"])
        for d in range(depth):
            use_list = kinds == "list" or (kinds == "mixed" and d % 2 == 0)
            node = Arr([node]) if use_list else Obj([(rng.choice(["a", "b", "k", "0"]), node)])
        top = depth % 2 == 0
        data = ion_data(rng, extra=[("deep", node)]) if top else ion_data(rng, new=Obj([("deep", node)]))
        suite.add(f"{depth} nested {kinds} levels below a {'top-level' if top else 'nested'} key",
                  ["ExtraDataKeys"] if top else [], rand_secret(rng), rand_url(rng),
                  plain_body(rng, data, layout=rng.choice(["compact", "spaced"])))


def sec_nested_key_order(rng, suite):
    for i in range(30):
        keys = rng.sample(["zeta", "alpha", "Mid", "beta", "_x", "a", "A", "b10", "b9", "\xe9", "z", "0"], rng.randint(2, 6))
        if keys == sorted(keys):
            keys.reverse()
        obj = Obj((k, rand_scalar(rng)) for k in keys)
        data = ion_data(rng, new=Obj([("attributes", obj), ("list", Arr([obj]))]), old=Obj([("attributes", Obj())]))
        suite.add("nested keys in body order, not sorted (repr() keeps insertion order)", [],
                  rand_secret(rng), rand_url(rng), plain_body(rng, data))


def sec_js_key_order(rng, suite):
    fixed = [["10", "2", "1"], ["b", "1", "a", "0"], ["4294967294", "4294967295", "1"],
             ["01", "1", "-1", "1.5", "2"], ["x", "9", "10"], ["100", "99", "a"],
             ["0", "00"], [" 1", "1 ", "1"]]
    for i in range(40):
        keys = fixed[i % len(fixed)] if i < 2 * len(fixed) else rng.sample(
            ["3", "20", "1", "k", "007", "4294967294", "4294967296", "id", "-0", "5"], rng.randint(2, 5))
        obj = Obj((k, rng.randint(0, 99)) for k in keys)
        where = i % 3
        if where == 0:
            data = ion_data(rng, new=obj)
            w = "nested (order matters to repr)"
        elif where == 1:
            data = ion_data(rng, new=Obj([("m", Arr([obj]))]))
            w = "nested in a list"
        else:
            data = ion_data(rng, extra=list(obj.pairs))
            w = "top level (sorted anyway)"
        suite.add(f"integer-like keys {keys} {w}", ["ExtraDataKeys"] if where == 2 else [],
                  rand_secret(rng), rand_url(rng), plain_body(rng, data))
    for key in ("__proto__", "constructor", "toString", "hasOwnProperty"):
        for top in (True, False):
            val = Obj([("polluted", True)])
            data = ion_data(rng, extra=[(key, val)]) if top else ion_data(rng, new=Obj([(key, val), ("x", 1)]))
            suite.add(f"key {key} {'top level' if top else 'nested'}", ["ProtoKey"] + (["ExtraDataKeys"] if top else []),
                      rand_secret(rng), rand_url(rng), plain_body(rng, data))


def sec_duplicate_keys(rng, suite):
    for i in range(36):
        kind = i % 6
        if kind == 0:
            data = Obj([("id", 1), ("etag", "e1"), ("old", None), ("new", Obj([("s", 1)])), ("etag", "e2")])
            label = "top-level etag repeated: the last value is signed"
        elif kind == 1:
            data = ion_data(rng, extra=[("k", 1), ("k", None)])
            label = "top-level key repeated, last value null: left out"
        elif kind == 2:
            data = ion_data(rng, extra=[("k", None), ("k", "v")])
            label = "top-level key repeated, first value null: signed"
        elif kind == 3:
            data = ion_data(rng, new=Obj([("x", 1), ("y", 2), ("x", 3)]))
            label = "nested key repeated: last value, first position"
        elif kind == 4:
            data = ion_data(rng, new=Obj([("b", Obj([("z", 1), ("a", 2), ("z", Arr([3]))])), ("b", Obj([("q", 0), ("a", 1), ("q", 2)]))]))
            label = "nested key repeated with object values: only the last object survives"
        else:
            k = rand_key(rng, True)
            data = ion_data(rng, new=Obj([(k, rand_scalar(rng)), ("m", 0), (k, rand_scalar(rng)), (k, rand_scalar(rng))]))
            label = "nested key repeated three times"
        suite.add(label, [], rand_secret(rng), rand_url(rng), plain_body(rng, data))


def sec_sort(rng, suite):
    pairs_sets = [
        [("a", "1"), ("a-", "2")],
        [("a", 1), ("a-b", 2), ("a_b", 3), ("a.b", 4), ("a:b", 5)],
        [("x", "z"), ("x ", "y"), ("x!", "w")],
        [("id", 1), ("id-", 2), ("id_", 3)],
        [("k", 1), ("k\x00", 2), ("k9", 3)],
        [("B", 1), ("a", 2), ("_", 3), ("b", 4)],
        [("", "empty key"), (" ", "space key"), ("0", "zero")],
    ]
    for i in range(28):
        base = pairs_sets[i % len(pairs_sets)]
        extra = [(k, v if rng.random() < 0.5 else rand_scalar(rng) or v) for k, v in base]
        rng.shuffle(extra)
        data = ion_data(rng, extra=extra)
        suite.add("top-level keys where sorting by key differs from sorting 'key:value' strings",
                  ["ExtraDataKeys"], rand_secret(rng), rand_url(rng), plain_body(rng, data))
    cp_sets = [["\uff01", "\U0001f600"], ["\ue000", "\U00010000"], ["\ufb01", "\U0001d518", "a"],
               ["\U0001f511", "\uffff", "\ud7ff"]]
    for i in range(16):
        keys = cp_sets[i % len(cp_sets)][:]
        rng.shuffle(keys)
        data = ion_data(rng, extra=[(k, rand_text(rng, length=3)) for k in keys])
        suite.add(f"top-level keys sorted by code point, not UTF-16 ({' '.join(ascii(k) for k in keys)})",
                  ["ExtraDataKeys"], rand_secret(rng), rand_url(rng),
                  plain_body(rng, data, strings=rng.choice(["min", "ascii"])))


def sec_secrets(rng, suite):
    secrets = [
        ("ascii", rand_secret(rng)), ("ascii with punctuation", "p@ss w0rd!\"'\\&?:"),
        ("latin-1 letters", "p\xe4ssw\xf6rt-\xdf"), ("CJK", "\u79d8\u5bc6\u306e\u9375"),
        ("emoji", "\U0001f511\U0001f510 key"), ("RTL", "\u05e1\u05d5\u05d3"), ("combining", "e\u0301e\u0301"),
        ("empty", ""), ("one char", "x"), ("63 bytes", "a" * 63), ("64 bytes", "b" * 64), ("65 bytes", "c" * 65),
        ("40 x 2-byte chars = 80 bytes", "\xe9" * 40), ("21 x 3-byte chars = 63 bytes", "\u20ac" * 21),
        ("22 x 3-byte chars = 66 bytes", "\u20ac" * 22), ("128 chars", rand_secret(rng, 128)),
        ("1000 chars", rand_secret(rng, 1000)), ("4096 chars", rand_secret(rng, 4096)),
        ("with newline", "abc\ndef"), ("looks like base64", "c2VjcmV0LWtleS1ieXRlcw=="),
        ("looks like hex", "deadbeef" * 4), ("whsec_ prefixed (used as text)", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
        ("with NUL", "abc\x00"), ("control characters", "\x01\x02\x7f\x85"),
        ("non-printable", "\xa0\u2028\U000e0001"), ("whitespace only", "   "),
    ]
    for label, secret in secrets:
        data = ion_data(rng)
        suite.add(f"secret: {label}", [], secret, rand_url(rng), plain_body(rng, data))
    for _ in range(10):
        secret = rand_text(rng, length=rng.randint(1, 40), ascii_share=0.6).replace("\x00", "")
        secret = "".join(c for c in secret if not 0xD800 <= ord(c) <= 0xDFFF)
        suite.add("secret: random unicode", [], secret, rand_url(rng), plain_body(rng, ion_data(rng)))
    # HMAC pads keys with zero bytes: a trailing NUL does not change the MAC.
    for base in ("secret", "k"):
        data = ion_data(rng)
        body = plain_body(rng, data)
        url = rand_url(rng)
        sig = sig_for(base, url, body)
        suite.add(f"secret {base!r} + NUL: same signature as {base!r}", ["SecretZeroPadding"],
                  base + "\x00\x00", url, body, signature=sig)


def sec_urls(rng, suite):
    urls = [
        "https://hooks.example.com/ion-events?token=abc123", "https://hooks.example.com/ion-events?a=1&b=2:3",
        "https://hooks.example.com/ion-events/", "https://hooks.example.com/", "https://hooks.example.com",
        "https://hooks.example.com:8443/ion-events", "http://localhost:8080/hook",
        "https://hooks.example.com/webhooks/\xe9v\xe9nements", "https://b\xfccher.example/hook",
        "https://xn--bcher-kva.example/hook", "https://hooks.example.com/a%20b/%E2%9C%93?x=%2F&y=%3F",
        "https://hooks.example.com/a b", "https://user:p%40ss@hooks.example.com/hook",
        "https://[::1]:8443/hook", "https://hooks.example.com/hook#fragment", "HTTPS://HOOKS.EXAMPLE.COM/Hook",
        "https://hooks.example.com/\u6f22\u5b57/\U0001f600", "https://hooks.example.com/hook?", "", "not a url",
        "https://hooks.example.com/" + "p" * 2000,
    ]
    for i, url in enumerate(urls * 2):
        data = ion_data(rng, extra=[("n", rng.randint(0, 9))] if i >= len(urls) else [])
        suite.add(f"URL {url[:60]!r} used verbatim", ["UrlVariant"], rand_secret(rng), url, plain_body(rng, data))


def sec_envelope(rng, suite):
    for i in range(48):
        kind = i % 12
        data = ion_data(rng, extra=[("x", rand_scalar(rng))] if i % 2 else [])
        env = envelope(rng, data)
        layout, strings = rng.choice(["compact", "spaced"]), "min"
        if kind == 0:
            env.pairs.insert(0, env.pairs.pop())
            label = "data first"
        elif kind == 1:
            env.pairs.insert(3, env.pairs.pop())
            label = "data in the middle"
        elif kind == 2:
            env.pairs += [("version", 2), ("meta", Obj([("data", Obj([("id", 0)]))])), ("data2", Obj([("id", 1)]))]
            label = "extra top-level fields, a decoy 'data' inside meta"
        elif kind == 3:
            env.pairs.insert(0, ("data", Obj([("id", 0), ("decoy", True)])))
            label = "'data' repeated at top level: the last one counts"
        elif kind == 4:
            env.pairs.append(("data", Obj([("id", 7), ("etag", "late")])))
            label = "'data' repeated at top level, the later one is a different object"
        elif kind == 5:
            env.pairs[-1] = (Raw('"d\\u0061ta"'), env.pairs[-1][1])
            label = "the key 'data' spelled with an escape"
        elif kind == 6:
            layout = "pretty2"
            label = "pretty-printed with two spaces"
        elif kind == 7:
            layout = "tab"
            label = "pretty-printed with tabs"
        elif kind == 8:
            layout = "pretty2-crlf"
            label = "pretty-printed with CRLF line ends"
        elif kind == 9:
            layout = "noisy"
            label = "random whitespace (space, tab, CR, LF) between all tokens"
        elif kind == 10:
            env.pairs.insert(2, ("note", '"data": {"id": 1}'))
            rng.shuffle(env.pairs)
            label = "shuffled envelope with a string that looks like data"
        else:
            strings = "mixed"
            layout = "noisy"
            label = "random escapes in every string and random whitespace"
        body = Writer(rng, layout, strings).dump(env)
        suite.add(f"envelope: {label}", ["EnvelopeVariant"] + (["ExtraDataKeys"] if i % 2 else []),
                  rand_secret(rng), rand_url(rng), body)


def sec_fuzz(rng, suite):
    for i in range(260):
        extra = [(rand_key(rng, False), rand_tree(rng, 0, 4)) for _ in range(rng.randint(0, 8))]
        front = [(rand_key(rng, False), rand_scalar(rng)) for _ in range(rng.randint(0, 2))]
        old = rand_tree(rng, 0, 4) if rng.random() < 0.3 else "auto"
        new = rand_tree(rng, 0, 4) if rng.random() < 0.3 else "auto"
        data = ion_data(rng, old=old, new=new, extra=extra, front=front)
        env = envelope(rng, data)
        secret = rand_secret(rng, rng.randint(8, 48)) if rng.random() < 0.9 else rand_text(rng, ascii_share=0.7).replace("\ud800", "")
        secret = "".join(c for c in secret if not 0xD800 <= ord(c) <= 0xDFFF)
        body = Writer(rng, rng.choice(LAYOUTS), rng.choice(STRING_STYLES)).dump(env)
        canonical, _ = ion_try_sign(secret, "u", body)
        if canonical is None:
            continue   # a lone surrogate reached the top level; the Unencodable section covers that
        suite.add("random data object", ["ExtraDataKeys"] if extra or front else [], secret, rand_url(rng), body)


def sec_collisions(rng, suite):
    pairs = [
        ("'&' and ':' inside a value imitate another key",
         [("a", "1&b:2")], [("a", "1"), ("b", "2")]),
        ("a string holding a dict's repr vs the dict",
         [("new", "{'status': 'done'}")], [("new", Obj([("status", "done")]))]),
        ("the integer 1 vs the string '1'", [("n", 1)], [("n", "1")]),
        ("the float 1.0 vs the string '1.0'", [("f", 1.0)], [("f", "1.0")]),
        ("true vs the string 'True'", [("b", True)], [("b", "True")]),
        ("a null key vs no key", [("x", None), ("y", 1)], [("y", 1)]),
        ("':' in a key vs ':' in a value", [("a:b", "c")], [("a", "b:c")]),
        ("a list vs its repr", [("l", Arr([1, "x", None]))], [("l", "[1, 'x', None]")]),
    ]
    for label, a, b in pairs:
        secret, url = rand_secret(rng), rand_url(rng)
        ida = rng.randint(1, 99)
        body_a = plain_body(rng, Obj([("id", ida)] + a))
        body_b = plain_body(rng, Obj([("id", ida)] + b))
        ca, sa = suite.add(f"collision ({label}), first form", ["CanonicalCollision"], secret, url, body_a)
        cb, sb = suite.add(f"collision ({label}), second form with the same signature", ["CanonicalCollision"],
                           secret, url, body_b, signature=sa)
        assert ca == cb and sa == sb
    for i in range(8):
        secret, url = rand_secret(rng), rand_url(rng)
        data = ion_data(rng)
        env = envelope(rng, data)
        body = plain_body_env(rng, env)
        sig = sig_for(secret, url, body)
        env.pairs[i % 6] = (env.pairs[i % 6][0], rng.choice([999, "delete", "part", rand_iso(rng)]))
        env.pairs.append(("injected", "not signed"))
        suite.add(f"envelope field {env.pairs[i % 6][0]} changed and a field added: data unchanged, still valid",
                  ["UnsignedEnvelope"], secret, url, plain_body_env(rng, env), signature=sig)


def plain_body_env(rng, env):
    return Writer(rng, "spaced", "min").dump(env)


# ---- invalid ION sections -------------------------------------------------

def mixed_data(rng):
    extra = [(rand_key(rng, False), rand_tree(rng, 0, 3)) for _ in range(rng.randint(0, 4))]
    return ion_data(rng, extra=extra)


def safe_secret(rng):
    return rand_secret(rng, rng.randint(8, 40))


def sec_wrong_secret(rng, suite):
    for i in range(40):
        secret, url = safe_secret(rng), rand_url(rng)
        body = plain_body(rng, mixed_data(rng))
        canonical, _ = ion_try_sign(secret, url, body)
        if canonical is None:
            continue
        kind = i % 5
        other = {0: rand_secret(rng), 1: secret[:-1], 2: secret + " ", 3: secret.upper() if secret.upper() != secret else secret + "x",
                 4: ""}[kind]
        suite.add(["another random secret", "secret missing its last character", "secret with a trailing space",
                   "secret in upper case", "the empty secret"][kind], ["WrongSecret"], secret, url, body,
                  signature=sig_for(other, url, body), result="invalid")


def url_variants(url):
    out = []
    out.append(url[:-1] if url.endswith("/") else url + "/")
    out.append(url.replace("https://", "http://", 1))
    host_end = url.index("/", 8) if "/" in url[8:] else len(url)
    out.append(url[:host_end] + ":443" + url[host_end:])
    out.append(url + "?x=1")
    out.append(url.upper())
    out.append(url[:host_end])
    return out


def sec_wrong_url(rng, suite):
    labels = ["trailing slash toggled", "http instead of https", "explicit :443", "query string added",
              "upper-cased URL", "path dropped"]
    for i in range(42):
        secret, url = safe_secret(rng), rand_url(rng)
        if i % 7 == 6:
            url += "/"
        body = plain_body(rng, mixed_data(rng))
        if ion_try_sign(secret, url, body)[0] is None:
            continue
        kind = i % 6
        other = url_variants(url)[kind]
        suite.add(f"signed for another URL: {labels[kind] if not (kind == 0 and url.endswith('/')) else 'trailing slash removed'}",
                  ["WrongUrl"], secret, url, body, signature=sig_for(secret, other, body), result="invalid")


def sec_modified_data(rng, suite):
    templates = [
        ("an integer changed by one", lambda v: Obj([("n", v)]), lambda: rng.randint(0, 10**6), lambda v: v + 1),
        ("1.0 became 1", lambda v: Obj([("f", v)]), lambda: Raw("1.0"), lambda v: Raw("1")),
        ("1 became 1.0", lambda v: Obj([("f", Arr([v]))]), lambda: Raw("1"), lambda v: Raw("1.0")),
        ("-0.0 became 0.0", lambda v: Obj([("z", v)]), lambda: Raw("-0.0"), lambda v: Raw("0.0")),
        ("one character of a string", lambda v: Obj([("s", v)]), lambda: rand_text(rng, length=6) + "a", lambda v: v[:-1] + "b"),
        ("true became false", lambda v: Obj([("b", v)]), lambda: True, lambda v: False),
        ("nested key order swapped", lambda v: Obj([("o", v)]), lambda: Obj([("a", 1), ("b", 2)]), lambda v: Obj(list(reversed(v.pairs)))),
        ("null became a value", lambda v: Obj([("q", v)]), lambda: None, lambda v: 0),
        ("a value became null (key left out)", lambda v: Obj([("q", v)]), lambda: "x", lambda v: None),
        ("NFC vs NFD", lambda v: Obj([("s", v)]), lambda: "caf\xe9", lambda v: "cafe\u0301"),
        ("a big integer changed in the last digit", lambda v: Obj([("big", v)]), lambda: 2**64 + 1, lambda v: v + 1),
        ("2^53+1 became 2^53 (a float64 rounding)", lambda v: Obj([("big", v)]), lambda: 2**53 + 1, lambda v: 2**53),
    ]
    for i in range(48):
        label, shape, make, mutate = templates[i % len(templates)]
        top = i % 2 == 0
        v = make()
        secret, url = safe_secret(rng), rand_url(rng)

        def build(value, rng_state):
            r = random.Random(rng_state)
            inner = shape(value)
            if top:
                data = ion_data(r, extra=inner.pairs if isinstance(inner, Obj) else [("v", inner)])
            else:
                data = ion_data(r, new=Obj([("v", inner)]))
            return Writer(r, "spaced", "min").dump(envelope(r, data))
        state = rng.getrandbits(64)
        original, modified = build(v, state), build(mutate(v), state)
        suite.add(f"data modified after signing: {label} ({'top level' if top else 'nested'})", ["ModifiedData"],
                  secret, url, modified, signature=sig_for(secret, url, original), result="invalid")


def flip_b64(rng, sig):
    pos = rng.randrange(0, len(sig.rstrip("=")) - 1)  # never the last data character (unused bits)
    alt = rng.choice([c for c in B64_ALPHABET if c != sig[pos]])
    return sig[:pos] + alt + sig[pos + 1:]


def sec_modified_signature(rng, suite):
    for i in range(40):
        secret, url = safe_secret(rng), rand_url(rng)
        body = plain_body(rng, mixed_data(rng))
        if ion_try_sign(secret, url, body)[0] is None:
            continue
        good = sig_for(secret, url, body)
        suite.add("one base64 character of the signature changed", ["ModifiedSignature"], secret, url, body,
                  signature=flip_b64(rng, good), result="invalid")


def noncanonical_b64(sig):
    """The same bytes with the unused low bits of the last data character set."""
    stripped = sig.rstrip("=")
    last = B64_ALPHABET.index(stripped[-1])
    unused = {1: 2, 2: 4}[len(sig) - len(stripped)]  # "=" -> 2 unused bits, "==" -> 4
    alt = B64_ALPHABET[last | ((1 << unused) - 1)]
    if alt == stripped[-1]:
        alt = B64_ALPHABET[last & ~((1 << unused) - 1)]
    out = stripped[:-1] + alt + sig[len(stripped):]
    assert base64.b64decode(out) == base64.b64decode(sig) and out != sig
    return out


def sec_malformed_signature(rng, suite):
    kinds = [
        ("empty signature", [], lambda s, k, m: ""),
        ("truncated by one character", [], lambda s, k, m: s[:-1]),
        ("truncated to 10 characters", [], lambda s, k, m: s[:10]),
        ("padding removed", ["NonCanonicalBase64"], lambda s, k, m: s.rstrip("=")),
        ("unused padding bits set", ["NonCanonicalBase64"], lambda s, k, m: noncanonical_b64(s)),
        ("URL-safe base64 alphabet", ["NonCanonicalBase64"], lambda s, k, m: s.replace("+", "-").replace("/", "_") if ("+" in s or "/" in s) else s.rstrip("=")),
        ("hex digest instead of base64", ["WrongAlgorithm"], lambda s, k, m: hmac.new(k, m, hashlib.sha1).hexdigest()),
        ("HMAC-SHA256 instead of SHA-1", ["WrongAlgorithm"], lambda s, k, m: base64.b64encode(hmac.new(k, m, hashlib.sha256).digest()).decode()),
        ("leading space", [], lambda s, k, m: " " + s),
        ("trailing newline", [], lambda s, k, m: s + "\n"),
        ("sha1= prefix", [], lambda s, k, m: "sha1=" + s),
        ("signature repeated twice", [], lambda s, k, m: s + s),
        ("lower-cased", [], lambda s, k, m: s.lower() if s.lower() != s else s.upper()),
        ("garbage text", [], lambda s, k, m: "not-a-signature"),
        ("non-ASCII text (compare_digest raises TypeError)", [], lambda s, k, m: "s\xefgn\xe4ture=="),
        ("base64 of the empty string", [], lambda s, k, m: base64.b64encode(hmac.new(k, b"", hashlib.sha1).digest()).decode()),
    ]
    for i in range(2 * len(kinds)):
        label, extra_flags, make = kinds[i % len(kinds)]
        secret, url = safe_secret(rng), rand_url(rng)
        body = plain_body(rng, mixed_data(rng))
        canonical, good = ion_try_sign(secret, url, body)
        if canonical is None:
            continue
        bad = make(good, secret.encode(), canonical.encode())
        if bad == good:
            bad = good.rstrip("=")
        suite.add(f"malformed signature: {label}", ["MalformedSignature"] + extra_flags, secret, url, body,
                  signature=bad, result="invalid")


def sec_unencodable(rng, suite):
    encodings = [
        ("UTF-8 with surrogatepass (WTF-8)", lambda c: c.encode("utf-8", "surrogatepass")),
        ("U+FFFD replacement", lambda c: "".join("\ufffd" if 0xD800 <= ord(ch) <= 0xDFFF else ch for ch in c).encode()),
        ("'?' replacement", lambda c: c.encode("utf-8", "replace")),
        ("surrogates dropped", lambda c: c.encode("utf-8", "ignore")),
    ]
    cases = [
        ("lone high surrogate as a top-level value", lambda: [("bad", "x\ud800y")]),
        ("lone low surrogate as a top-level value", lambda: [("bad", "\udc00")]),
        ("low-then-high escapes as a top-level value", lambda: [("bad", "\ude00\ud83d")]),
        ("lone surrogate in a top-level key", lambda: [("k\udfff", 1)]),
    ]
    for i in range(16):
        label, make = cases[i % len(cases)]
        enc_label, enc = encodings[(i // len(cases)) % len(encodings)]
        secret, url = safe_secret(rng), rand_url(rng)
        data = ion_data(rng, extra=make())
        body = plain_body(rng, data)
        assert ion_try_sign(secret, url, body)[0] is None
        d = json.loads(body)["data"]
        text = url + "?" + "&".join(f"{k}:{v}" for k, v in sorted(d.items()) if v is not None)
        sig = base64.b64encode(hmac.new(secret.encode(), enc(text), hashlib.sha1).digest()).decode()
        suite.add(f"{label}: cannot be UTF-8 encoded; signature over {enc_label}", ["Unencodable"],
                  secret, url, body, signature=sig, result="invalid")


def sec_bad_data(rng, suite):
    cases = [
        ("data is null", Raw("null")), ("data is an empty list", Arr()), ("data is a list of pairs", Arr([Arr(["id", 1])])),
        ("data is a string", "id:1"), ("data is a number", 1), ("data key missing", None), ("body is not JSON", None),
        ("body is a JSON array", None),
    ]
    for i, (label, value) in enumerate(cases):
        secret, url = safe_secret(rng), rand_url(rng)
        if label == "data key missing":
            env = envelope(rng, Obj())
            env.pairs.pop()
            body = plain_body_env(rng, env)
        elif label == "body is not JSON":
            body = "id=1&etag=abc"
        elif label == "body is a JSON array":
            body = "[]"
        else:
            body = plain_body_env(rng, envelope(rng, value, action="update"))
        # The signature of an empty data object: "url?".
        sig = base64.b64encode(hmac.new(secret.encode(), (url + "?").encode(), hashlib.sha1).digest()).decode()
        suite.add(f"{label}: the reference raises; signature is that of an empty data object", ["BadData"],
                  secret, url, body, signature=sig, result="invalid")
    # The contrast: data {} is fine and signs "url?".
    secret, url = safe_secret(rng), rand_url(rng)
    suite.add("data is an empty object: signs the URL and '?'", [], secret, url,
              plain_body_env(rng, envelope(rng, Obj(), action="update")))


def sec_plain(rng, suite):
    """Data with only top-level strings and safe integers: no repr() needed."""
    for i in range(40):
        extra = []
        for _ in range(rng.randint(0, 4)):
            value = rng.choice([rand_text(rng, ascii_share=0.8), rng.randint(-MAX_SAFE, MAX_SAFE),
                                rng.randint(-1000, 1000), rand_ident(rng), None])
            extra.append((rand_ident(rng) if rng.random() < 0.8 else rand_key(rng, False), value))
        data = ion_data(rng, old=None, new=None, extra=extra)
        if i % 4 == 3:
            data.pairs = [p for p in data.pairs if p[0] not in ("old", "new")]
        suite.add("only top-level strings and safe integers", ["ExtraDataKeys"] if extra else [],
                  rand_secret(rng), rand_url(rng), plain_body(rng, data, strings=rng.choice(STRING_STYLES)))
    for label, data in [("every value null", Obj([("id", None), ("etag", None), ("old", None), ("new", None)])),
                        ("only old and new, both null", Obj([("old", None), ("new", None)])),
                        ("empty data object, pretty-printed", Obj())]:
        suite.add(f"{label}: signs the URL and '?'", [], rand_secret(rng), rand_url(rng),
                  Writer(rng, "pretty2" if "pretty" in label else "spaced").dump(envelope(rng, data, action="update")))


def sec_int_digit_limit(rng, suite):
    """Python 3.11 refuses int literals longer than 4300 digits (sys.get_int_max_str_digits())."""
    for digits, nested in ((4300, False), (4300, True), (4301, False), (4301, True)):
        secret, url = safe_secret(rng), rand_url(rng)
        number = str(rng.randint(1, 9)) + "".join(rng.choice(string.digits) for _ in range(digits - 1))
        data = Obj([("id", 1), ("new", Obj([("n", Raw(number))]))]) if nested else Obj([("id", 1), ("n", Raw(number))])
        body = plain_body_env(rng, envelope(rng, data, action="update"))
        where = "nested" if nested else "top level"
        if digits == 4300:
            suite.add(f"{digits}-digit integer, {where}: at the limit, parses", ["IntDigitLimit"], secret, url, body)
            continue
        # What an implementation without the limit would sign.
        text = url + "?id:1&" + (f"new:{{'n': {number}}}" if nested else f"n:{number}")
        sig = base64.b64encode(hmac.new(secret.encode(), text.encode(), hashlib.sha1).digest()).decode()
        suite.add(f"{digits}-digit integer, {where}: json.loads raises ValueError; signature as if there were no limit",
                  ["IntDigitLimit"], secret, url, body, signature=sig, result="invalid")


def sec_float_ties(rng, suite):
    """Doubles exactly halfway between two shortest spellings: Python's repr
    keeps the even last digit (`8796093022208.0625` -> `8796093022208.062`).
    Each case is checked here: both candidates read back as the same double,
    and they are equally far from its exact value."""
    from decimal import Decimal
    found = []
    while len(found) < 40:
        n = rng.randrange(2 ** 43, 2 ** 46)
        x = n + rng.choice([1, 3, 5, 7, 9, 11, 13, 15]) / 16
        r = repr(x)
        if "e" in r or "." not in r:
            continue
        head, frac = r.split(".")
        last = int(frac[-1])
        for alt_last in (last - 1, last + 1):
            if not 0 <= alt_last <= 9:
                continue
            alt = f"{head}.{frac[:-1]}{alt_last}"
            if float(alt) == x and abs(Decimal(alt) - Decimal(x)) == abs(Decimal(r) - Decimal(x)):
                found.append(x)
                break
    for i, x in enumerate(found):
        sp = repr(x) if i % 3 else str(Decimal(x))
        node = Raw(sp)
        top = i % 2 == 0
        data = ion_data(rng, extra=[("t", node)]) if top else ion_data(rng, new=Obj([("t", node), ("ts", Arr([node]))]))
        suite.add(f"float tie {x!r} (round half to even) spelled {sp}, {'top level' if top else 'nested'}",
                  ["ExtraDataKeys"] if top else [], rand_secret(rng), rand_url(rng), plain_body(rng, data))


ION_SECTIONS = [
    ("realistic", sec_realistic), ("top_strings", sec_top_strings), ("nested_quotes", sec_nested_quotes),
    ("nested_classes", sec_nested_classes), ("long_strings", sec_long_strings), ("unicode_keys", sec_unicode_keys),
    ("surrogates", sec_surrogates), ("unicode_version", sec_unicode_version), ("emoji_sequences", sec_emoji_sequences),
    ("ints", sec_ints), ("floats_special", sec_floats_special), ("floats_random", sec_floats_random),
    ("nonfinite", sec_nonfinite), ("bool_null", sec_bool_null), ("null_transitions", sec_null_transitions),
    ("containers", sec_containers), ("deep", sec_deep), ("nested_key_order", sec_nested_key_order),
    ("js_key_order", sec_js_key_order), ("duplicate_keys", sec_duplicate_keys), ("sort", sec_sort),
    ("secrets", sec_secrets), ("urls", sec_urls), ("envelope", sec_envelope), ("fuzz", sec_fuzz),
    ("collisions", sec_collisions),
    ("wrong_secret", sec_wrong_secret), ("wrong_url", sec_wrong_url), ("modified_data", sec_modified_data),
    ("modified_signature", sec_modified_signature), ("malformed_signature", sec_malformed_signature),
    ("unencodable", sec_unencodable), ("bad_data", sec_bad_data), ("plain", sec_plain),
    ("int_digit_limit", sec_int_digit_limit),
    ("float_ties", sec_float_ties),
    # Append new sections here, with new names; never edit or reorder the ones above.
]


# ---- Standard Webhooks ----------------------------------------------------

TOLERANCE = 300
BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase


class SwSuite:
    def __init__(self):
        self.tests = []
        self.sections = []
        self.section = None

    def add(self, comment, flags, secret, msg_id, timestamp, now, body, header, result):
        expected = sw_sign(secret, msg_id, timestamp, body)
        ok = independent_sw_verify(secret, msg_id, timestamp, now, body, header, TOLERANCE)
        assert ok == (result == "valid"), comment
        flags = set(flags)
        if result == "valid":
            flags.add("Valid")
        if not secret.startswith("whsec_"):
            flags.add("NoPrefix")
        key = sw_key(secret)
        if len(key) < 24:
            flags.add("ShortKey")
        if len(key) > 64:
            flags.add("LongKey")
        if any(ord(c) > 0x7F for c in body):
            flags.add("UnicodeBody")
        if len(body.encode()) >= 65536:
            flags.add("LargeBody")
        if body == "":
            flags.add("EmptyBody")
        if abs(now - timestamp) in (TOLERANCE, TOLERANCE + 1):
            flags.add("ToleranceBoundary")
        if now - timestamp > TOLERANCE:
            flags.add("StaleTimestamp")
        if timestamp - now > TOLERANCE:
            flags.add("FutureTimestamp")
        unknown = flags - set(SW_NOTES)
        assert not unknown, unknown
        self.tests.append({
            "tcId": len(self.tests) + 1, "comment": comment, "flags": [f for f in SW_NOTES if f in flags],
            "secret": secret, "msgId": msg_id, "timestamp": timestamp, "now": now, "body": body,
            "signatureHeader": header, "expectedSignature": expected, "result": result,
        })
        self.sections.append(self.section)


def sw_secret(rng, n=None, prefix=True):
    key = rng.randbytes(n or rng.choice([24, 32, 32, 32, 64]))
    return ("whsec_" if prefix else "") + base64.b64encode(key).decode()


def sw_msg_id(rng):
    return "msg_" + "".join(rng.choice(BASE62) for _ in range(27))


def sw_body(rng, unicode=False):
    data = mixed_data(rng) if rng.random() < 0.5 else ion_data(rng)
    if unicode:
        data.pairs.append(("text", rand_text(rng, length=rng.randint(3, 20), ascii_share=0.2).replace("\ud800", "")))
    strings = "min" if unicode else rng.choice(["min", "ascii"])
    body = Writer(rng, rng.choice(["compact", "spaced", "pretty2"]), strings).dump(envelope(rng, data))
    if any(0xD800 <= ord(c) <= 0xDFFF for c in body):
        body = "".join(c for c in body if not 0xD800 <= ord(c) <= 0xDFFF)
    return body


def sw_ts(rng):
    return 1764000000 + rng.randint(-10**6, 10**6)


def sw_fake_sig(rng):
    return "v1," + base64.b64encode(rng.randbytes(32)).decode()


def sw_case(rng, unicode=False):
    ts = sw_ts(rng)
    return sw_secret(rng), sw_msg_id(rng), ts, ts + rng.randint(-TOLERANCE, TOLERANCE), sw_body(rng, unicode)


def swsec_valid(rng, suite):
    for i in range(40):
        secret, mid, ts, now, body = sw_case(rng, unicode=i % 4 == 3)
        suite.add("one correct v1 signature", ["Valid"], secret, mid, ts, now, body,
                  sw_sign(secret, mid, ts, body), "valid")
    for label, body in [("empty body", ""), ("non-JSON body", "hello world"), ("body with CRLF", "a\r\nb\r\n"),
                        ("body with dots", "...."), ("body with only unicode", "\u00e9\u6f22\U0001f600\u2028"),
                        ("body with NUL", "a\x00b")]:
        secret, mid, ts, now, _ = sw_case(rng)
        flags = ["Valid"] + (["NonJsonBody"] if body else [])
        suite.add(label, flags, secret, mid, ts, now, body, sw_sign(secret, mid, ts, body), "valid")
    for label, mid in [("UUID webhook-id", "2f1d6e7c-5b1a-4b7e-9c3d-0e8f7a6b5c4d"), ("webhook-id with dots", "evt.1.2"),
                       ("unicode webhook-id", "msg_\xe9v\xe9nement"), ("long webhook-id", "msg_" + "x" * 300),
                       ("webhook-id with spaces", "msg 1")]:
        secret, _, ts, now, body = sw_case(rng)
        suite.add(label, ["Valid", "UnusualMsgId"], secret, mid, ts, now, body, sw_sign(secret, mid, ts, body), "valid")


def swsec_rotation(rng, suite):
    for i in range(36):
        secret, mid, ts, now, body = sw_case(rng)
        good = sw_sign(secret, mid, ts, body)
        others = [sw_sign(sw_secret(rng), mid, ts, body) for _ in range(rng.randint(1, 4))]
        pos = ["first", "last", "middle"][i % 3]
        if pos == "first":
            entries = [good] + others
        elif pos == "last":
            entries = others + [good]
        else:
            others.append(sw_fake_sig(rng)) if len(others) < 2 else None
            entries = others[:1] + [good] + others[1:]
        suite.add(f"rotation: the correct signature {pos} of {len(entries)}", ["Valid", "Rotation"],
                  secret, mid, ts, now, body, " ".join(entries), "valid")
    for i in range(10):
        secret, mid, ts, now, body = sw_case(rng)
        entries = [sw_sign(sw_secret(rng), mid, ts, body) for _ in range(rng.randint(2, 4))]
        suite.add("rotation: several signatures, none from this secret", ["Rotation", "WrongSecret"],
                  secret, mid, ts, now, body, " ".join(entries), "invalid")


def swsec_versions(rng, suite):
    for i in range(18):
        secret, mid, ts, now, body = sw_case(rng)
        good = sw_sign(secret, mid, ts, body)
        tag = good[3:]
        kind = i % 6
        if kind == 0:
            header, result, label = "v2," + tag, "invalid", "the correct tag under version v2 only"
        elif kind == 1:
            header, result, label = "v1a," + base64.b64encode(rng.randbytes(64)).decode() + " " + good, "valid", "an asymmetric v1a signature, then the v1 one"
        elif kind == 2:
            header, result, label = "v2," + tag + " " + good, "valid", "v2 and v1 both present"
        elif kind == 3:
            header, result, label = "V1," + tag, "invalid", "upper-case V1 is another version"
        elif kind == 4:
            header, result, label = "v0," + tag + " v2," + tag, "invalid", "the correct tag only under other versions"
        else:
            header, result, label = good + " v9,whatever", "valid", "v1 then an unknown version"
        suite.add(label, ["OtherVersion"] + (["Valid"] if result == "valid" else []), secret, mid, ts, now, body, header, result)


def swsec_invalid(rng, suite):
    for i in range(16):
        secret, mid, ts, now, body = sw_case(rng)
        good = sw_sign(secret, mid, ts, body)
        suite.add("one base64 character of the tag changed", ["ModifiedTag"], secret, mid, ts, now, body,
                  "v1," + flip_b64(rng, good[3:]), "invalid")
    mods = [("one byte changed", lambda b: (b[:-2] + ("x" if b[-2] != "x" else "y") + b[-1:]) if len(b) > 2 else b + "x"),
            ("trailing newline added", lambda b: b + "\n"), ("whitespace added after the first brace", lambda b: b[:1] + " " + b[1:]),
            ("re-serialised compactly", lambda b: json.dumps(json.loads(b), separators=(",", ":"))
             if json.dumps(json.loads(b), separators=(",", ":")) != b else b + " ")]
    for i in range(16):
        secret, mid, ts, now, body = sw_case(rng, unicode=i % 2 == 1)
        label, mod = mods[i % len(mods)]
        other = mod(body)
        assert other != body
        suite.add(f"body modified after signing: {label}", ["ModifiedBody"], secret, mid, ts, now, other,
                  sw_sign(secret, mid, ts, body), "invalid")
    for i in range(16):
        secret, mid, ts, now, body = sw_case(rng)
        kind = i % 4
        if kind == 0:
            sig, flags, label = sw_sign(sw_secret(rng), mid, ts, body), ["WrongSecret"], "signed with another key"
        elif kind == 1:
            content = f"{mid}.{ts}.{body}".encode()
            sig = "v1," + base64.b64encode(hmac.new(secret.encode(), content, hashlib.sha256).digest()).decode()
            flags, label = ["WrongSecret", "SecretNotDecoded"], "keyed with the whsec_ secret text"
        elif kind == 2:
            content = f"{mid}.{ts}.{body}".encode()
            sig = "v1," + base64.b64encode(hmac.new(secret[6:].encode(), content, hashlib.sha256).digest()).decode()
            flags, label = ["WrongSecret", "SecretNotDecoded"], "keyed with the base64 text of the key"
        else:
            secret2 = "whsec_" + base64.b64encode(sw_key(secret)[:-1]).decode()
            sig, flags, label = sw_sign(secret2, mid, ts, body), ["WrongSecret"], "key missing its last byte"
        suite.add(label, flags, secret, mid, ts, now, body, sig, "invalid")
    for i in range(12):
        secret, mid, ts, now, body = sw_case(rng)
        if i % 2 == 0:
            sig, flags, label = sw_sign(secret, mid + "x", ts, body), ["ModifiedMsgId"], "signed for another webhook-id"
        else:
            sig, flags, label = sw_sign(secret, mid, ts + rng.choice([-1, 1, 60]), body), ["ModifiedTimestamp"], "signed for another timestamp"
        suite.add(label, flags, secret, mid, ts, now, body, sig, "invalid")


def swsec_timestamps(rng, suite):
    deltas = [(301, "invalid", "too old by one second"), (302, "invalid", "too old"), (3600, "invalid", "an hour old"),
              (86400 * 30, "invalid", "a month old"), (-301, "invalid", "too new by one second"),
              (-3600, "invalid", "an hour in the future"), (-86400 * 365, "invalid", "a year in the future"),
              (300, "valid", "exactly 300 s old"), (-300, "valid", "exactly 300 s in the future"),
              (299, "valid", "299 s old"), (0, "valid", "now"), (-1, "valid", "one second in the future")]
    for i in range(2 * len(deltas)):
        delta, result, label = deltas[i % len(deltas)]
        secret, mid, ts, _, body = sw_case(rng)
        now = ts + delta
        suite.add(f"timestamp {label}, correct signature", ["Valid"] if result == "valid" else [],
                  secret, mid, ts, now, body, sw_sign(secret, mid, ts, body), result)


def swsec_malformed(rng, suite):
    kinds = [
        ("empty header", [], lambda g: ""),
        ("no comma", [], lambda g: "v1" + g[3:]),
        ("version only", [], lambda g: "v1"),
        ("empty signature after the comma", [], lambda g: "v1,"),
        ("not base64", [], lambda g: "v1,!!!!not-base64!!!!"),
        ("tag without the version", [], lambda g: g[3:]),
        ("padding removed", ["NonCanonicalBase64"], lambda g: g.rstrip("=")),
        ("unused bits set", ["NonCanonicalBase64"], lambda g: "v1," + noncanonical_b64(g[3:])),
        ("URL-safe alphabet", ["NonCanonicalBase64"], lambda g: g.replace("+", "-").replace("/", "_") if ("+" in g[3:] or "/" in g[3:]) else g.rstrip("=")),
        ("hex tag", [], None),
        ("tag truncated", [], lambda g: g[:20]),
        ("colon instead of comma", [], lambda g: "v1:" + g[3:]),
    ]
    for i in range(2 * len(kinds)):
        label, flags, make = kinds[i % len(kinds)]
        secret, mid, ts, now, body = sw_case(rng)
        good = sw_sign(secret, mid, ts, body)
        if make is None:
            header = "v1," + hmac.new(sw_key(secret), f"{mid}.{ts}.{body}".encode(), hashlib.sha256).hexdigest()
        else:
            header = make(good)
        suite.add(f"malformed header: {label}", ["MalformedHeader"] + flags, secret, mid, ts, now, body, header, "invalid")


def swsec_secrets(rng, suite):
    for i in range(24):
        n = [1, 8, 16, 23, 24, 32, 63, 64, 65, 100, 128, 32][i % 12]
        prefix = i % 2 == 1 or n not in (24, 32)
        secret = sw_secret(rng, n, prefix=prefix if i < 12 else not prefix)
        _, mid, ts, now, body = sw_case(rng)
        suite.add(f"{n}-byte key, {'with' if secret.startswith('whsec_') else 'without'} the whsec_ prefix",
                  ["Valid"], secret, mid, ts, now, body, sw_sign(secret, mid, ts, body), "valid")
    for i in range(4):
        secret = sw_secret(rng, prefix=False)
        _, mid, ts, now, body = sw_case(rng)
        suite.add("no prefix, wrong signature", ["WrongSecret"], secret, mid, ts, now, body,
                  sw_sign(sw_secret(rng), mid, ts, body), "invalid")


def swsec_large(rng, suite):
    for target, uni in ((65536, False), (65536, True), (200000, False)):
        secret, mid, ts, now, _ = sw_case(rng)
        items = []
        size = 0
        while size < target:
            text = rand_text(rng, length=rng.randint(10, 60), ascii_share=0.5 if uni else 1.0)
            text = "".join(c for c in text if not 0xD800 <= ord(c) <= 0xDFFF)
            item = Obj([("i", len(items)), ("text", text), ("v", rand_double(rng))])
            items.append(item)
            size += len(text.encode()) + 40
        data = ion_data(rng, new=Obj([("items", Arr(items))]))
        body = Writer(rng, "compact", "min").dump(envelope(rng, data))
        good = sw_sign(secret, mid, ts, body)
        suite.add(f"large body ({len(body.encode())} bytes)", ["Valid"], secret, mid, ts, now, body, good, "valid")
        if uni:
            continue
        tampered = body[:len(body) // 2] + ("0" if body[len(body) // 2] != "0" else "1") + body[len(body) // 2 + 1:]
        suite.add("large body with one character changed in the middle", ["ModifiedBody"], secret, mid, ts, now,
                  tampered, good, "invalid")


SW_SECTIONS = [
    ("valid", swsec_valid), ("rotation", swsec_rotation), ("versions", swsec_versions), ("invalid", swsec_invalid),
    ("timestamps", swsec_timestamps), ("malformed", swsec_malformed), ("secrets", swsec_secrets), ("large", swsec_large),
    # Append new sections here, with new names; never edit or reorder the ones above.
]


# ---- Standard Webhooks, asymmetric (v1a, Ed25519) -------------------------
#
# Expected signatures come from rfc8032.py (pure Python, checked against
# RFC 8032's TEST 1-3 before anything is written), never from changewire.

ED_FILE = "standard_webhooks_ed25519.json"


def ed_secret(seed):
    return "whsk_" + base64.b64encode(seed).decode()


def ed_public(seed):
    return "whpk_" + base64.b64encode(rfc8032.public_key(seed)).decode()


def ed_content(msg_id, timestamp, body):
    return f"{msg_id}.{timestamp}.{body}".encode("utf-8")


def ed_sign(seed, msg_id, timestamp, body):
    return "v1a," + base64.b64encode(rfc8032.sign(seed, ed_content(msg_id, timestamp, body))).decode()


def ed_seed_of(signing_key):
    assert signing_key.startswith("whsk_")
    seed = base64.b64decode(signing_key[5:], validate=True)
    assert len(seed) == 32
    return seed


def canonical_b64decode(text, size):
    """The bytes of `text` if it is exactly the padded base64 of `size` bytes."""
    if any(c not in B64_ALPHABET + "=" for c in text):
        return None
    raw = manual_b64decode(text)
    if len(raw) != size or manual_b64(raw) != text:
        return None
    return raw


def independent_ed_verify(public_key, msg_id, timestamp, now, body, header, tolerance):
    """The receiver's rules, written from the README: a whpk_ key of 32 bytes on
    the curve, the timestamp within the tolerance, and any v1a entry whose
    exact base64 holds 64 bytes that pass RFC 8032 verification."""
    if public_key[:5] != "whpk_":
        return False
    public = canonical_b64decode(public_key[5:], 32)
    if public is None or rfc8032.decompress(public) is None:
        return False
    if now - timestamp > tolerance or timestamp - now > tolerance:
        return False
    content = (msg_id + "." + _int_digits(timestamp) + "." + body).encode("utf-8")
    for entry in header.split(" "):
        version, comma, sig = entry.partition(",")
        if comma and version == "v1a":
            raw = canonical_b64decode(sig, 64)
            if raw is not None and rfc8032.verify(public, content, raw):
                return True
    return False


ED_NOTES = {
    "Valid": "The result is valid: some v1a signature in the header verifies with the public key and the timestamp is within the tolerance.",
    "Rotation": "The header holds two or more v1a signatures (signing key rotation); the test is valid if any of them verifies.",
    "BesideHmac": "The header holds v1 (HMAC) signatures, which a public key ignores.",
    "WrongKey": "The v1a signature was made with another signing key.",
    "ModifiedSignature": "One byte of the correct 64-byte signature was changed (in R or in S).",
    "NonCanonicalS": "The signature's S was replaced by S + L, which satisfies the same equation; RFC 8032 requires S < L, so it is invalid.",
    "ModifiedBody": "The signature was made for a different body (one byte, whitespace, trailing newline).",
    "ModifiedMsgId": "The signature was made for a different webhook-id.",
    "ModifiedTimestamp": "The signature was made for a different webhook-timestamp.",
    "StaleTimestamp": "now - timestamp > toleranceSeconds: too old, invalid even with a correct signature.",
    "FutureTimestamp": "timestamp - now > toleranceSeconds: too new, invalid even with a correct signature.",
    "ToleranceBoundary": "|now - timestamp| is exactly toleranceSeconds (valid) or one more (invalid).",
    "MissingV1a": "The header holds no v1a entry at all (empty, only v1, or versions such as V1A or v1b).",
    "MalformedSignature": "The only v1a entry is not the exact padded base64 of 64 bytes (not base64, padding removed, URL-safe alphabet, 63 or 65 bytes, hex, empty).",
    "NonCanonicalBase64": "The signature decodes to the right bytes but is not the exact base64 text (padding removed, unused bits set); it is invalid.",
    "MalformedHeader": "An entry of the header has no comma, so the header cannot be read.",
    "MalformedPublicKey": "publicKey is not whpk_ followed by the padded base64 of 32 bytes that encode a curve point of large order; verification must refuse the key.",
    "UnicodeBody": "The body contains non-ASCII characters (signed as UTF-8).",
    "LargeBody": "The body is at least 64 KiB.",
    "EmptyBody": "The body is the empty string.",
    "NonJsonBody": "The body is not JSON; Standard Webhooks signs bytes, not JSON.",
    "UnusualMsgId": "The webhook-id is not of the usual msg_<base62> form (UUID, dots, unicode, long).",
}


class EdSuite:
    def __init__(self):
        self.tests = []
        self.sections = []
        self.section = None

    def add(self, comment, flags, seed, msg_id, timestamp, now, body, header, result, public_key=None):
        public_key = ed_public(seed) if public_key is None else public_key
        ok = independent_ed_verify(public_key, msg_id, timestamp, now, body, header, TOLERANCE)
        assert ok == (result == "valid"), comment
        flags = set(flags)
        if result == "valid":
            flags.add("Valid")
        if any(e.startswith("v1,") for e in header.split(" ")):
            flags.add("BesideHmac")
        if sum(e.startswith("v1a,") for e in header.split(" ")) >= 2:
            flags.add("Rotation")
        if any(ord(c) > 0x7F for c in body):
            flags.add("UnicodeBody")
        if len(body.encode()) >= 65536:
            flags.add("LargeBody")
        if body == "":
            flags.add("EmptyBody")
        if abs(now - timestamp) in (TOLERANCE, TOLERANCE + 1):
            flags.add("ToleranceBoundary")
        if now - timestamp > TOLERANCE:
            flags.add("StaleTimestamp")
        if timestamp - now > TOLERANCE:
            flags.add("FutureTimestamp")
        unknown = flags - set(ED_NOTES)
        assert not unknown, unknown
        self.tests.append({
            "tcId": len(self.tests) + 1, "comment": comment, "flags": [f for f in ED_NOTES if f in flags],
            "signingKey": ed_secret(seed), "publicKey": public_key, "msgId": msg_id, "timestamp": timestamp,
            "now": now, "body": body, "signatureHeader": header,
            "expectedSignature": ed_sign(seed, msg_id, timestamp, body), "result": result,
        })
        self.sections.append(self.section)


def ed_case(rng, unicode=False):
    ts = sw_ts(rng)
    return rng.randbytes(32), sw_msg_id(rng), ts, ts + rng.randint(-TOLERANCE, TOLERANCE), sw_body(rng, unicode)


def edsec_valid(rng, suite):
    for i in range(24):
        seed, mid, ts, now, body = ed_case(rng, unicode=i % 4 == 3)
        suite.add("one correct v1a signature", [], seed, mid, ts, now, body, ed_sign(seed, mid, ts, body), "valid")
    for label, body in [("empty body", ""), ("non-JSON body", "hello world"), ("body with CRLF", "a\r\nb\r\n"),
                        ("body with dots", "...."), ("body with only unicode", "\u00e9\u6f22\U0001f600\u2028"),
                        ("body with NUL", "a\x00b")]:
        seed, mid, ts, now, _ = ed_case(rng)
        flags = ["NonJsonBody"] if body else []
        suite.add(label, flags, seed, mid, ts, now, body, ed_sign(seed, mid, ts, body), "valid")
    for label, mid in [("UUID webhook-id", "2f1d6e7c-5b1a-4b7e-9c3d-0e8f7a6b5c4d"), ("webhook-id with dots", "evt.1.2"),
                       ("unicode webhook-id", "msg_\xe9v\xe9nement"), ("long webhook-id", "msg_" + "x" * 300)]:
        seed, _, ts, now, body = ed_case(rng)
        suite.add(label, ["UnusualMsgId"], seed, mid, ts, now, body, ed_sign(seed, mid, ts, body), "valid")
    for label, seed in [("all-zero seed", bytes(32)), ("all-ones seed", b"\xff" * 32)]:
        _, mid, ts, now, body = ed_case(rng)
        suite.add(label, [], seed, mid, ts, now, body, ed_sign(seed, mid, ts, body), "valid")
    seed, mid, ts, now, _ = ed_case(rng)
    body = sw_body(rng)
    while len(body.encode()) < 65536:
        body += " " * rng.randint(1, 3) + sw_body(rng, unicode=True)
    suite.add(f"large body ({len(body.encode())} bytes)", [], seed, mid, ts, now, body,
              ed_sign(seed, mid, ts, body), "valid")


def hmac_entry(rng, mid, ts, body):
    return sw_sign(sw_secret(rng), mid, ts, body)


def edsec_rotation(rng, suite):
    for i in range(12):
        seed, mid, ts, now, body = ed_case(rng)
        good, other = ed_sign(seed, mid, ts, body), ed_sign(rng.randbytes(32), mid, ts, body)
        entries = [good, other] if i % 2 == 0 else [other, good]
        suite.add(f"rotation: the key's v1a signature {'first' if i % 2 == 0 else 'last'} of two", [],
                  seed, mid, ts, now, body, " ".join(entries), "valid")
    for i in range(12):
        seed, mid, ts, now, body = ed_case(rng)
        good = ed_sign(seed, mid, ts, body)
        kind = i % 4
        if kind == 0:
            entries, label = [hmac_entry(rng, mid, ts, body), good], "v1 then v1a"
        elif kind == 1:
            entries, label = [good, hmac_entry(rng, mid, ts, body)], "v1a then v1"
        elif kind == 2:
            entries = [hmac_entry(rng, mid, ts, body), hmac_entry(rng, mid, ts, body), ed_sign(rng.randbytes(32), mid, ts, body), good]
            label = "two v1 and two v1a (rotation of both)"
        else:
            entries, label = [good, "v2," + base64.b64encode(rng.randbytes(32)).decode()], "v1a then an unknown version"
        suite.add(f"{label}; the v1a signature verifies", [], seed, mid, ts, now, body, " ".join(entries), "valid")
    for i in range(6):
        seed, mid, ts, now, body = ed_case(rng)
        entries = [ed_sign(rng.randbytes(32), mid, ts, body) for _ in range(2)]
        if i % 2:
            entries.insert(1, hmac_entry(rng, mid, ts, body))
        suite.add("rotation: two v1a signatures, neither from this key", ["WrongKey"],
                  seed, mid, ts, now, body, " ".join(entries), "invalid")


def flip_byte(rng, raw, lo, hi):
    pos = rng.randrange(lo, hi)
    return raw[:pos] + bytes([raw[pos] ^ (1 << rng.randrange(8))]) + raw[pos + 1:]


def edsec_invalid(rng, suite):
    for i in range(8):
        seed, mid, ts, now, body = ed_case(rng)
        raw = base64.b64decode(ed_sign(seed, mid, ts, body)[4:])
        half = "R" if i % 2 == 0 else "S"
        bad = flip_byte(rng, raw, 0, 32) if half == "R" else flip_byte(rng, raw, 32, 64)
        suite.add(f"one bit of {half} flipped", ["ModifiedSignature"], seed, mid, ts, now, body,
                  "v1a," + base64.b64encode(bad).decode(), "invalid")
    for _ in range(4):
        seed, mid, ts, now, body = ed_case(rng)
        raw = base64.b64decode(ed_sign(seed, mid, ts, body)[4:])
        s = int.from_bytes(raw[32:], "little") + rfc8032.L
        assert s < 2**256
        suite.add("S + L instead of S (malleated signature)", ["NonCanonicalS"], seed, mid, ts, now, body,
                  "v1a," + base64.b64encode(raw[:32] + s.to_bytes(32, "little")).decode(), "invalid")
    for _ in range(6):
        seed, mid, ts, now, body = ed_case(rng)
        suite.add("signed with another key", ["WrongKey"], seed, mid, ts, now, body,
                  ed_sign(rng.randbytes(32), mid, ts, body), "invalid")
    seed, mid, ts, now, body = ed_case(rng)
    other = rng.randbytes(32)
    suite.add("verified with another key's public key", ["WrongKey"], seed, mid, ts, now, body,
              ed_sign(seed, mid, ts, body), "invalid", public_key=ed_public(other))
    mods = [("one byte changed", lambda b: (b[:-2] + ("x" if b[-2] != "x" else "y") + b[-1:]) if len(b) > 2 else b + "x"),
            ("trailing newline added", lambda b: b + "\n"), ("whitespace added after the first brace", lambda b: b[:1] + " " + b[1:])]
    for i in range(6):
        seed, mid, ts, now, body = ed_case(rng, unicode=i % 2 == 1)
        label, mod = mods[i % len(mods)]
        other = mod(body)
        assert other != body
        suite.add(f"body modified after signing: {label}", ["ModifiedBody"], seed, mid, ts, now, other,
                  ed_sign(seed, mid, ts, body), "invalid")
    for i in range(6):
        seed, mid, ts, now, body = ed_case(rng)
        if i % 2 == 0:
            sig, flags, label = ed_sign(seed, mid + "x", ts, body), ["ModifiedMsgId"], "signed for another webhook-id"
        else:
            sig, flags, label = ed_sign(seed, mid, ts + rng.choice([-1, 1, 60]), body), ["ModifiedTimestamp"], "signed for another timestamp"
        suite.add(label, flags, seed, mid, ts, now, body, sig, "invalid")


def edsec_timestamps(rng, suite):
    deltas = [(301, "invalid", "too old by one second"), (3600, "invalid", "an hour old"),
              (-301, "invalid", "too new by one second"), (-86400, "invalid", "a day in the future"),
              (300, "valid", "exactly 300 s old"), (-300, "valid", "exactly 300 s in the future"), (0, "valid", "now")]
    for delta, result, label in deltas:
        seed, mid, ts, _, body = ed_case(rng)
        suite.add(f"timestamp {label}, correct signature", [], seed, mid, ts, ts + delta, body,
                  ed_sign(seed, mid, ts, body), result)


def edsec_malformed(rng, suite):
    missing = [
        ("empty header", lambda g, h: ""),
        ("only a v1 signature", lambda g, h: h),
        ("upper-case V1A is another version", lambda g, h: "V" + g[1:2] + "A" + g[3:]),
        ("the signature under version v1b", lambda g, h: "v1b" + g[3:]),
        ("the signature under version v1", lambda g, h: "v1" + g[3:]),
    ]
    for label, make in missing:
        seed, mid, ts, now, body = ed_case(rng)
        header = make(ed_sign(seed, mid, ts, body), hmac_entry(rng, mid, ts, body))
        suite.add(f"no v1a entry: {label}", ["MissingV1a"], seed, mid, ts, now, body, header, "invalid")
    malformed = [
        ("empty signature after the comma", [], lambda g: "v1a,"),
        ("not base64", [], lambda g: "v1a,!!!!not-base64!!!!"),
        ("padding removed", ["NonCanonicalBase64"], lambda g: g.rstrip("=")),
        ("unused bits set", ["NonCanonicalBase64"], lambda g: "v1a," + noncanonical_b64(g[4:])),
        ("URL-safe alphabet", [], lambda g: "v1a," + g[4:].replace("+", "-").replace("/", "_")),
        ("63 bytes (last byte dropped)", [], lambda g: "v1a," + base64.b64encode(base64.b64decode(g[4:])[:63]).decode()),
        ("65 bytes (a zero byte appended)", [], lambda g: "v1a," + base64.b64encode(base64.b64decode(g[4:]) + b"\0").decode()),
        ("hex instead of base64", [], lambda g: "v1a," + base64.b64decode(g[4:]).hex()),
    ]
    for label, flags, make in malformed:
        seed, mid, ts, now, body = ed_case(rng)
        good = ed_sign(seed, mid, ts, body)
        header = make(good)
        assert header != good, label   # (URL-safe: this seed's signature has a + or a /)
        suite.add(f"malformed v1a entry: {label}", ["MalformedSignature"] + flags, seed, mid, ts, now, body,
                  header, "invalid")
    for label, make in [("no comma", lambda g: "v1a" + g[4:]), ("colon instead of comma", lambda g: "v1a:" + g[4:])]:
        seed, mid, ts, now, body = ed_case(rng)
        suite.add(f"malformed header: {label}", ["MalformedHeader"], seed, mid, ts, now, body,
                  make(ed_sign(seed, mid, ts, body)), "invalid")


def not_a_point(rng):
    while True:
        y = rng.randrange(2, rfc8032.P)
        data = y.to_bytes(32, "little")
        if rfc8032.decompress(data) is None:
            return data


def edsec_keys(rng, suite):
    def b64(raw):
        return base64.b64encode(raw).decode()

    identity = (1).to_bytes(32, "little")
    kinds = [
        ("no whpk_ prefix", lambda s, pk: b64(pk)),
        ("whsec_ prefix", lambda s, pk: "whsec_" + b64(pk)),
        ("the whsk_ signing key instead of the public key", lambda s, pk: ed_secret(s)),
        ("upper-case WHPK_ prefix", lambda s, pk: "WHPK_" + b64(pk)),
        ("31 bytes", lambda s, pk: "whpk_" + b64(pk[:31])),
        ("33 bytes", lambda s, pk: "whpk_" + b64(pk + b"\0")),
        ("not base64", lambda s, pk: "whpk_" + b64(pk)[:-4] + "!!!="),
        ("padding removed", lambda s, pk: "whpk_" + b64(pk).rstrip("=")),
        ("empty after the prefix", lambda s, pk: "whpk_"),
        ("32 bytes that are not a curve point", lambda s, pk: "whpk_" + b64(not_a_point(rng))),
        ("the identity point (small order)", lambda s, pk: "whpk_" + b64(identity)),
    ]
    for label, make in kinds:
        seed, mid, ts, now, body = ed_case(rng)
        public_key = make(seed, rfc8032.public_key(seed))
        suite.add(f"malformed public key: {label}", ["MalformedPublicKey"], seed, mid, ts, now, body,
                  ed_sign(seed, mid, ts, body), "invalid", public_key=public_key)


ED_SECTIONS = [
    ("ed25519-valid", edsec_valid), ("ed25519-rotation", edsec_rotation), ("ed25519-invalid", edsec_invalid),
    ("ed25519-timestamps", edsec_timestamps), ("ed25519-malformed", edsec_malformed), ("ed25519-keys", edsec_keys),
    # Append new sections here, with new names; never edit or reorder the ones above.
]


# --------------------------------------------------------------------------
# Self-check and output.
# --------------------------------------------------------------------------

def self_check_ion(tests):
    for t in tests:
        ok, canonical = independent_ion_verify(t["secret"], t["url"], t["body"], t["signature"])
        assert canonical == t["canonical"], (t["tcId"], t["comment"])
        assert ok == (t["result"] == "valid"), (t["tcId"], t["comment"])
        if t["canonical"] is not None:
            ref_canonical, ref_sig = ion_sign(t["secret"], t["url"], t["body"])
            assert ref_canonical == t["canonical"]
            assert (ref_sig == t["signature"]) == (t["result"] == "valid")
    flags = [f for t in tests for f in t["flags"]]
    for required in ("PythonStr", "JsLossy", "JsKeyOrder", "DuplicateKey", "SortByKey", "NullTransition",
                     "WrongSecret", "WrongUrl", "ModifiedData", "ModifiedSignature", "MalformedSignature",
                     "Unencodable"):
        assert required in flags, required
    assert sum(t["result"] == "invalid" for t in tests) >= 150
    assert len(tests) >= 1000


def self_check_sw(tests):
    for t in tests:
        ok = independent_sw_verify(t["secret"], t["msgId"], t["timestamp"], t["now"], t["body"],
                                   t["signatureHeader"], TOLERANCE)
        assert ok == (t["result"] == "valid"), (t["tcId"], t["comment"])
        assert t["expectedSignature"] == sw_sign(t["secret"], t["msgId"], t["timestamp"], t["body"])
    assert len(tests) >= 200


def self_check_ed(tests):
    for t in tests:
        ok = independent_ed_verify(t["publicKey"], t["msgId"], t["timestamp"], t["now"], t["body"],
                                   t["signatureHeader"], TOLERANCE)
        assert ok == (t["result"] == "valid"), (t["tcId"], t["comment"])
        seed = ed_seed_of(t["signingKey"])
        assert t["expectedSignature"] == ed_sign(seed, t["msgId"], t["timestamp"], t["body"])
        raw = base64.b64decode(t["expectedSignature"][4:], validate=True)
        assert rfc8032.verify(rfc8032.public_key(seed), ed_content(t["msgId"], t["timestamp"], t["body"]), raw)
        if "MalformedPublicKey" not in t["flags"] and "WrongKey" not in t["flags"]:
            assert t["publicKey"] == ed_public(seed), t["tcId"]
    flags = {f for t in tests for f in t["flags"]}
    assert flags == set(ED_NOTES), set(ED_NOTES) - flags
    assert len(tests) >= 100


SECTION_SIZES = {}


def build(sections, suite):
    for name, fn in sections:
        suite.section = name     # every section has its own random stream
        fn(random.Random(f"{SEED}:{name}"), suite)
    for name, test in zip(suite.sections, suite.tests):
        n, size = SECTION_SIZES.get(name, (0, 0))
        SECTION_SIZES[name] = (n + 1, size + len(json.dumps(test)))
    return suite.tests


def render(header, tests):
    """JSON text: header fields indented, one field per line in each test, pure ASCII."""
    lines = ["{"]
    for key, value in header.items():
        if key == "notes":
            lines.append('  "notes": {')
            items = list(value.items())
            for i, (k, v) in enumerate(items):
                lines.append(f"    {json.dumps(k)}: {json.dumps(v)}" + ("," if i < len(items) - 1 else ""))
            lines.append("  },")
        else:
            lines.append(f"  {json.dumps(key)}: {json.dumps(value)},")
    lines.append('  "tests": [')
    for i, test in enumerate(tests):
        lines.append("    {")
        fields = list(test.items())
        for j, (k, v) in enumerate(fields):
            lines.append(f"      {json.dumps(k)}: {json.dumps(v)}" + ("," if j < len(fields) - 1 else ""))
        lines.append("    }" + ("," if i < len(tests) - 1 else ""))
    lines.append("  ]")
    lines.append("}")
    text = "\n".join(lines) + "\n"
    assert json.loads(text)["tests"] == tests
    text.encode("ascii")
    return text


def generate():
    ion_tests = build(ION_SECTIONS, IonSuite())
    self_check_ion(ion_tests)
    sw_tests = build(SW_SECTIONS, SwSuite())
    self_check_sw(sw_tests)
    common = {"generator": GENERATOR, "python": PYTHON,
              "unicodeVersion": unicodedata.unidata_version}
    ion = render({"scheme": "ion", **common, "notes": ION_NOTES, "numberOfTests": len(ion_tests)}, ion_tests)
    sw = render({"scheme": "standard-webhooks", **common, "toleranceSeconds": TOLERANCE, "notes": SW_NOTES,
                 "numberOfTests": len(sw_tests)}, sw_tests)
    rfc8032.self_test()   # RFC 8032 TEST 1-3, before any Ed25519 vector is made
    ed_tests = build(ED_SECTIONS, EdSuite())
    self_check_ed(ed_tests)
    ed = render({"scheme": "standard-webhooks-ed25519", **common, "toleranceSeconds": TOLERANCE,
                 "notes": ED_NOTES, "numberOfTests": len(ed_tests)}, ed_tests)
    return {ION_FILE: ion, SW_FILE: sw, ED_FILE: ed}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="do not write; exit 1 if the files on disk differ from what would be written")
    parser.add_argument("--stats", action="store_true", help="print the number of tests per flag")
    args = parser.parse_args()
    if unicodedata.unidata_version != REQUIRED_UNICODE:
        sys.exit(f"generate.py needs Unicode {REQUIRED_UNICODE} (Python 3.11); this Python has "
                 f"{unicodedata.unidata_version}, whose repr() escapes differ")
    running = "%d.%d.%d" % sys.version_info[:3]
    if running != PYTHON:
        print(f"note: running Python {running}; the vectors were made with {PYTHON}", file=sys.stderr)
    outputs = generate()
    if args.stats:
        for name, text in outputs.items():
            doc = json.loads(text)
            counts = {}
            for t in doc["tests"]:
                for f in t["flags"]:
                    counts[f] = counts.get(f, 0) + 1
            results = {r: sum(t["result"] == r for t in doc["tests"]) for r in ("valid", "invalid")}
            print(f"{name}: {doc['numberOfTests']} tests {results}, {len(text.encode())} bytes")
            for f in doc["notes"]:
                print(f"  {f}: {counts.get(f, 0)}")
        print("sections (tests, bytes):")
        for name, (n, size) in SECTION_SIZES.items():
            print(f"  {name}: {n} {size}")
    if args.check:
        stale = []
        for name, text in outputs.items():
            path = os.path.join(HERE, name)
            try:
                with open(path, "rb") as fh:
                    current = fh.read()
            except FileNotFoundError:
                current = None
            if current != text.encode("ascii"):
                stale.append(name)
        if stale:
            print("out of date: " + ", ".join(stale) + " (the generator no longer reproduces them)", file=sys.stderr)
            sys.exit(1)
        print("vectors are up to date")
        return
    for name, text in outputs.items():
        with open(os.path.join(HERE, name), "wb") as fh:
            fh.write(text.encode("ascii"))
        print(f"wrote {name}")


if __name__ == "__main__":
    main()
