"""The fast paths against the reference, at their edges.

``verify_signature`` formats plain JSON data straight from the Python objects
and hands everything else (subclasses, big ints, lone surrogates where the
reference encodes them, cycles, very deep data) to the general path;
``verify_request`` reads plain ``str`` arguments and a plain ``dict`` of
headers directly. Each case here checks the outcome (result or exception type)
equals the reference's, for the right signature and a tampered one.
"""

import collections
import enum
import json

import pytest

import changewire
from reference import outcome, sign, verify_signature as reference_verify

URL = "https://hooks.example.com/ion-events"
SECRET = "s3cret"


def agrees(data, secret=SECRET, url=URL):
    """verify_signature gives the reference's outcome, signed and tampered."""
    good = outcome(sign, secret, url, data)
    if not isinstance(good, str):
        good = "AAAAAAAAAAAAAAAAAAAAAAAAAAA="
    tampered = ("B" if good[0] != "B" else "C") + good[1:]
    for signature in (good, tampered):
        ours = outcome(changewire.verify_signature, secret, url, data, signature)
        theirs = outcome(reference_verify, secret, url, data, signature)
        assert ours == theirs, (data, signature, ours, theirs)
    return outcome(changewire.verify_signature, secret, url, data, good)


# Floats exactly halfway between two shortest spellings (Python keeps the
# even last digit), and powers of two (a lopsided rounding interval).
TIE_FLOATS = [8796093022208.0625, 1410136567754626.25, 129749159896432.375, 1815433045617138.75,
              177583739449041.125, -8796093022208.0625, 2.0**-24, 2.0**-30, 2.0**70, 2.0**-1074,
              2.0**1023, 9007199254740993.0, 0.1 + 0.2]


def test_floats_print_as_python_prints_them():
    assert agrees({"t": TIE_FLOATS[0], "l": TIE_FLOATS, "d": {"x": TIE_FLOATS[-1]}}) is True
    body = ('{"data": {"l": [' + ", ".join(repr(x) for x in TIE_FLOATS) + "]}}").encode()
    assert changewire.explain("u", body) == "u?l:" + repr(TIE_FLOATS)


class Str(str):
    pass


class Int(int):
    pass


class Color(enum.IntEnum):
    RED = 1


class Float(float):
    pass


class List(list):
    pass


class Dict(dict):
    pass


SPECIALS = ["'", '"', "\\", "\n", "\t", "\r", "\x00", "\x1f", "\x7f", "\x85", "\xa0", "\xad", "é",
            "\u2028", "\ufeff", "\ue000", "😀", "\U000e0001", "\U0001f6dc", "\udc00", "\ud800"]


@pytest.mark.parametrize("special", SPECIALS, ids=[repr(s) for s in SPECIALS])
def test_strings_with_a_special_character_at_every_offset(special):
    for length in range(0, 20):
        for at in range(0, length + 1):
            text = "a" * at + special + "b" * (length - at)
            # Nested (repr), as a nested key, and at the top level (bare; a
            # lone surrogate there makes the reference raise).
            agrees({"n": [text, "x" + text + "'\""], "d": {text: 1}})
            agrees({"t": text})
            agrees({text: 1})


def test_quote_choice():
    for text in ["it's", 'say "hi"', "it's \"x\"", "'", '"', "''\"\"", "a'b'c", 'a"b"c', "\\'", '\\"']:
        assert agrees({"n": [text], "k": {text: text}}) is True


def test_long_strings():
    long = "x" * 100_000
    assert agrees({"a": long, "b": [long + "'" + long + "é\n"], long: {long: long}}) is True


@pytest.mark.parametrize(
    "value",
    [0, 1, -1, 2**31, 2**63 - 1, -(2**63), 2**63, -(2**63) - 1, 10**40, -(10**40), True, False,
     0.0, -0.0, 0.1, 0.1 + 0.2, 3748.5, 4012.25, 1e-4, 1e-5, 9.99e-5, 1e15, 1e16, 9999999999999998.0,
     123456789012345.6, 1.7976931348623157e308, 5e-324, float("inf"), float("-inf"), float("nan")],
    ids=repr,
)
def test_numbers(value):
    assert agrees({"top": value, "nested": [value, {"k": value}]}) is True


@pytest.mark.parametrize(
    "data",
    [
        {"s": Str("sub")},
        {"n": [Str("sub")]},
        {"n": {Str("key"): 1}},
        {"i": Int(5)},
        {"i": [Color.RED]},
        {"f": Float(1.5)},
        {"l": List([1, 2])},
        {"d": [Dict(a=1)]},
        {"d": collections.OrderedDict(a=1)},
        {"t": (1, "a")},
        {"n": [(1, "a")]},
        {"n": {1: "int key"}},
        {"n": {None: 1}},
        {"b": b"bytes"},
        {"set": [{1}]},
    ],
    ids=lambda d: repr(d)[:40],
)
def test_exotic_objects_take_the_general_path(data):
    assert agrees(data) is True


def test_str_subclass_top_level_keys_are_refused_as_before():
    # Known difference, older than the fast path: the general path refuses
    # top-level keys that are not exactly `str`; the reference accepts them.
    data = {Str("key"): 1}
    assert outcome(changewire.verify_signature, SECRET, URL, data, sign(SECRET, URL, data)) is TypeError


def test_nesting_depth_around_the_limit():
    for depth in (1, 2, 498, 499, 500, 501, 502, 700):
        nested_list = current = []
        for _ in range(depth - 1):
            current.append([])
            current = current[0]
        current.append("leaf")
        assert agrees({"l": nested_list}) is True
        nested_dict = current = {}
        for _ in range(depth - 1):
            current["k"] = {}
            current = current["k"]
        current["k"] = 1
        assert agrees({"d": nested_dict}) is True


def test_cycles():
    loop = []
    loop.append(loop)
    assert agrees({"loop": loop}) is True
    mapping = {}
    mapping["self"] = mapping
    assert agrees({"m": mapping}) is True


def test_none_values_are_left_out_and_keys_sort_by_code_point():
    assert agrees({"b": 1, "a": None, "a-": 2, "A": 3, "é": 4, "😀": 5, "\uffff": 6, "": 7}) is True
    assert agrees({"\udc00": None, "k": 1}) is True


def test_unencodable_arguments_and_signatures():
    data = {"id": 1}
    assert agrees(data, secret="sécret") is True
    assert agrees(data, secret="") is True
    assert agrees(data, url="https://ü.test/é?x=1") is True
    # Lone surrogates in the secret or URL: the reference's encode raises.
    for secret, url in (("\udc00", URL), (SECRET, "https://x.test/\udc00")):
        ours = outcome(changewire.verify_signature, secret, url, data, "x")
        assert ours is outcome(reference_verify, secret, url, data, "x") is UnicodeEncodeError
    good = sign(SECRET, URL, data)
    assert changewire.verify_signature(Str(SECRET), Str(URL), data, Str(good)) is True
    assert changewire.verify_signature(SECRET, URL, data, good + " ") is False
    with pytest.raises(TypeError, match="non-ASCII"):
        changewire.verify_signature(SECRET, URL, data, good[:-1] + "é")
    with pytest.raises(TypeError, match="secret"):
        changewire.verify_signature(1, URL, data, good)


def test_json_loads_output_agrees():
    body = {
        "id": 508241,
        "old": {"status": "in_progress", "n": 3748.5, "passed": None, "attrs": {"ok": False}},
        "new": {"status": "complete", "n": 4012.25, "who": "Zoë Müller", "tags": ["a", "b'", 'c"']},
        "empty": {"l": [], "d": {}, "s": ""},
    }
    data = json.loads(json.dumps(body))
    assert agrees(data) is True
    assert agrees(json.loads(json.dumps(body, ensure_ascii=False))) is True


BODY = b'{"event_id": 1, "data": {"id": 7, "new": {"status": "done"}}}'
SIGNATURE = changewire.sign_body(SECRET, URL, BODY)


def test_request_headers_from_a_plain_dict():
    ok = {"x-ion-signature": SIGNATURE}
    assert changewire.verify_request(SECRET, URL, BODY, ok) == "ion"
    assert changewire.verify_request(SECRET, URL, BODY, {"X-ION-Signature": SIGNATURE}) == "ion"
    # First match in dict order, as before.
    both = {"X-Ion-Signature": "bogus", "x-ion-signature": SIGNATURE}
    with pytest.raises(changewire.WebhookVerificationError) as info:
        changewire.verify_request(SECRET, URL, BODY, both)
    assert info.value.code == "signature_mismatch"
    both = {"x-ion-signature": SIGNATURE, "X-Ion-Signature": "bogus"}
    assert changewire.verify_request(SECRET, URL, BODY, both) == "ion"
    # Rotation header, names that only share a length, non-ASCII names.
    rotated = {"x-ion-signature": "old", "x-ion-signature-next": SIGNATURE, "x-ion-signaturE": "x"}
    assert changewire.verify_request(SECRET, URL, BODY, rotated) == "ion"
    assert changewire.verify_request(SECRET, URL, BODY, {"x-ïon-signature": "x", **ok}) == "ion"
    # Values that are not plain ASCII str, and non-str keys: the general path, as before.
    for headers in ({"x-ion-signature": Str(SIGNATURE)}, {"x-ion-signature": SIGNATURE.encode()},
                    {b"x-ion-signature": SIGNATURE}, {Str("x-ion-signature"): SIGNATURE}):
        assert changewire.verify_request(SECRET, URL, BODY, headers) == "ion"
    with pytest.raises(changewire.WebhookVerificationError) as info:
        changewire.verify_request(SECRET, URL, BODY, {"x-ion-signature": SIGNATURE[:-1] + "é"})
    assert info.value.code == "signature_mismatch"
    with pytest.raises(TypeError, match="header names and values"):
        changewire.verify_request(SECRET, URL, BODY, {"x-ion-signature": 1})
    with pytest.raises(TypeError, match="header names and values"):
        changewire.verify_request(SECRET, URL, BODY, {1: SIGNATURE})


def test_request_secret_and_url_forms():
    assert changewire.verify_request(Str(SECRET), Str(URL), BODY, {"x-ion-signature": SIGNATURE}) == "ion"
    for secret, url in ((1, URL), (SECRET, None)):
        with pytest.raises(TypeError, match="secret" if secret == 1 else "url"):
            changewire.verify_request(secret, url, BODY, {"x-ion-signature": SIGNATURE})
    with pytest.raises(UnicodeEncodeError):
        changewire.verify_request("\udc00", URL, BODY, {"x-ion-signature": SIGNATURE})
    body = '{"data": {"k": "é"}}'.encode()
    secret, url = "sécret", "https://ü.test/é"
    signature = sign(secret, url, json.loads(body)["data"])
    assert changewire.verify_request(secret, url, body, {"x-ion-signature": signature}) == "ion"


def test_standard_scheme_still_reads_the_clock():
    import time

    secret = "whsec_c2VjcmV0LWtleS1ieXRlcw=="
    now = int(time.time())
    headers = {"webhook-id": "1", "webhook-timestamp": str(now),
               "webhook-signature": changewire.sign_standard(secret, "1", now, BODY)}
    assert changewire.verify_request(secret, URL, BODY, headers) == "standard"
    old = dict(headers, **{"webhook-timestamp": str(now - 3600)})
    old["webhook-signature"] = changewire.sign_standard(secret, "1", now - 3600, BODY)
    with pytest.raises(changewire.WebhookVerificationError) as info:
        changewire.verify_request(secret, URL, BODY, old)
    assert info.value.code == "timestamp_too_old"
    with pytest.raises(changewire.WebhookVerificationError) as info:
        changewire.verify_request(secret, URL, BODY, {"x-ion-signature": SIGNATURE}, require="standard")
    assert info.value.code == "missing_header"
