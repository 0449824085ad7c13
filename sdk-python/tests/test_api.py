"""The Python API beyond the vectors: argument forms, errors, events."""

import ast
import collections
import datetime
import decimal
import json
import pathlib
import time

import pytest

import changewire
from reference import outcome, sign, verify_signature as reference_verify

URL = "https://hooks.example.com/ion-events"
SECRET = "s3cret"
BODY = (
    b'{"event_id": 17, "subscription_id": 3, "resource": "run_steps", "action": "update", '
    b'"transaction_id": 99, "occurred_at": "2026-04-26T19:33:42.108Z", "data": {"id": 7, '
    b'"etag": "e1", "old": {"status": "open", "qty": 1.0}, "new": {"status": "done", "10": 1, "2": 2}, '
    b'"record": {"id": 7}}}'
)
SIGNATURE = changewire.sign_body(SECRET, URL, BODY)


def test_verify_signature_is_a_drop_in_for_the_reference():
    data = json.loads(BODY)["data"]
    assert reference_verify(SECRET, URL, data, SIGNATURE) is True
    assert changewire.verify_signature(SECRET, URL, data, SIGNATURE) is True
    assert changewire.verify_signature(SECRET, URL + "/", data, SIGNATURE) is False
    assert changewire.verify_signature("other", URL, data, SIGNATURE) is False
    tampered = dict(data, new={**data["new"], "status": "paid"})
    assert changewire.verify_signature(SECRET, URL, tampered, SIGNATURE) is False


def test_signature_argument_types_follow_compare_digest():
    data = {"id": 1}
    good = sign(SECRET, URL, data)
    assert changewire.verify_signature(SECRET, URL, data, good) is True
    for bad in (good.encode(), None, 1):
        assert outcome(changewire.verify_signature, SECRET, URL, data, bad) is TypeError
        assert outcome(reference_verify, SECRET, URL, data, bad) is TypeError
    with pytest.raises(TypeError, match="non-ASCII"):
        changewire.verify_signature(SECRET, URL, data, "sïgnäture==")


@pytest.mark.parametrize(
    "data",
    [
        collections.OrderedDict([("b", 1), ("a", {"z": 1, "y": [1.5, None, True]})]),
        {"when": datetime.date(2026, 1, 2), "amount": decimal.Decimal("1.10"), "pair": (1, "a")},
        {"nested": {"when": datetime.datetime(2026, 1, 2, 3, 4, 5)}, "ok": [1, {2: "int key"}]},
        {"sub": collections.OrderedDict(a=1), "f": float("nan"), "big": 10**40, "neg0": -0.0},
        {"s": "\u00e9\u2028\U0001F600'\"", "esc": ["\x00\x7f\u00ad\U000e0001", "it's"]},
    ],
    ids=["ordereddict", "decimal-date-tuple", "nested-exotic", "floats-bigint", "unicode"],
)
def test_python_objects_are_formatted_as_python_formats_them(data):
    good = sign(SECRET, URL, data)
    assert changewire.verify_signature(SECRET, URL, data, good) is True
    tampered = ("B" if good[0] != "B" else "C") + good[1:]
    assert changewire.verify_signature(SECRET, URL, data, tampered) is False


def test_self_referencing_and_very_deep_data_follow_python():
    loop = {}
    loop["self"] = loop
    assert changewire.verify_signature(SECRET, URL, loop, sign(SECRET, URL, loop)) is True
    deep = current = []
    for _ in range(700):
        current.append([])
        current = current[0]
    assert changewire.verify_signature(SECRET, URL, {"d": deep}, sign(SECRET, URL, {"d": deep})) is True


def test_unencodable_and_bad_data_raise_what_the_reference_raises():
    for data in ({"k": "\udc00"}, {"\udc00": 1}, ["not", "a", "dict"], None, {1: "int key"}):
        ours = outcome(changewire.verify_signature, SECRET, URL, data, "x")
        theirs = outcome(reference_verify, SECRET, URL, data, "x")
        if data == {1: "int key"}:
            # The reference accepts non-str keys when they all compare; we refuse them.
            assert ours is TypeError and theirs is False
        else:
            assert ours is theirs, data
    # Nested, a lone surrogate is escaped by repr(), so it signs.
    data = {"k": ["\udc00"]}
    assert changewire.verify_signature(SECRET, URL, data, sign(SECRET, URL, data)) is True
    # A None value is left out even when its key cannot be encoded.
    assert changewire.verify_signature(SECRET, URL, {"\udc00": None}, sign(SECRET, URL, {})) is True


def test_url_is_formatted_like_an_f_string():
    class Url:
        def __format__(self, spec):
            return URL

    data = json.loads(BODY)["data"]
    assert changewire.verify_signature(SECRET, Url(), data, SIGNATURE) is True


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Ion-Signature": SIGNATURE},
        {"x-ion-signature": SIGNATURE, "content-type": "application/json"},
        [("X-ION-SIGNATURE", SIGNATURE)],
        ((b"x-ion-signature", SIGNATURE.encode()),),
        collections.OrderedDict(content_type="x", **{"x-ion-signature": SIGNATURE}),
    ],
    ids=["dict", "lowercase", "pairs", "asgi-bytes", "mapping"],
)
def test_verify_request_reads_every_header_shape(headers):
    assert changewire.verify_request(SECRET, URL, BODY, headers) == "ion"


@pytest.mark.parametrize("body", [BODY, bytearray(BODY), memoryview(BODY), BODY.decode()])
def test_verify_request_accepts_bytes_like_bodies(body):
    assert changewire.verify_request(SECRET, URL, body, {"x-ion-signature": SIGNATURE}) == "ion"


def test_verify_request_refuses_a_parsed_body():
    with pytest.raises(TypeError, match="raw request body"):
        changewire.verify_request(SECRET, URL, json.loads(BODY), {"x-ion-signature": SIGNATURE})
    with pytest.raises(TypeError, match="headers"):
        changewire.verify_request(SECRET, URL, BODY, 42)


def test_errors_are_value_errors_with_a_code_and_core_s_reason():
    cases = [
        (BODY, {}, "missing_header", "missing `x-ion-signature` header"),
        (BODY, {"x-ion-signature": SIGNATURE[::-1]}, "signature_mismatch", "signature does not match"),
        (b"id=1", {"x-ion-signature": SIGNATURE}, "invalid_json", "body is not valid JSON: invalid JSON at byte 0: expected a value"),
        (b"{}", {"x-ion-signature": SIGNATURE}, "missing_data", "body has no `data` field"),
        (b'{"data": []}', {"x-ion-signature": SIGNATURE}, "not_an_object", "`data` must be a JSON object, found a JSON array"),
        (b'{"data": {"k": "\\udc00"}}', {"x-ion-signature": SIGNATURE}, "unencodable",
         "`data.k` holds a lone surrogate, which Python cannot encode as UTF-8"),
    ]
    for body, headers, code, message in cases:
        with pytest.raises(changewire.WebhookVerificationError) as info:
            changewire.verify_request(SECRET, URL, body, headers)
        assert isinstance(info.value, ValueError)
        assert (info.value.code, str(info.value)) == (code, message)


def test_standard_webhooks_scheme_options_and_clock():
    secret = "whsec_c2VjcmV0LWtleS1ieXRlcw=="
    now = int(time.time())
    headers = {
        "webhook-id": "17",
        "webhook-timestamp": str(now),
        "webhook-signature": changewire.sign_standard(secret, "17", now, BODY),
    }
    assert changewire.verify_request(secret, URL, BODY, headers) == "standard"
    assert changewire.verify_request(secret, URL, BODY, headers, now=now + 300.9) == "standard"
    with pytest.raises(changewire.WebhookVerificationError, match=r"^timestamp is 301s old") as info:
        changewire.verify_request(secret, URL, BODY, headers, now=now + 301)
    assert info.value.code == "timestamp_too_old"
    with pytest.raises(changewire.WebhookVerificationError) as info:
        changewire.verify_request(secret, URL, BODY, headers, now=now - 11, tolerance=10)
    assert str(info.value) == "timestamp is 11s in the future, beyond the 10s tolerance (clock skew?)"
    with pytest.raises(changewire.WebhookVerificationError, match="missing `x-ion-signature`"):
        changewire.verify_request(secret, URL, BODY, headers, require="ion")
    with pytest.raises(ValueError) as info:
        changewire.verify_request(secret, URL, BODY, headers, require="hmac")
    assert type(info.value) is ValueError
    assert str(info.value) == "require: unknown signature scheme `hmac`; expected `ion`, `standard` or `ed25519`"
    # Scheme names are read in any case; the scheme returned is always lowercase.
    assert changewire.verify_request(secret, URL, BODY, headers, require="Standard") == "standard"
    with pytest.raises(changewire.WebhookVerificationError, match="missing `x-ion-signature`"):
        changewire.verify_request(secret, URL, BODY, headers, require="ION")
    with pytest.raises(changewire.WebhookVerificationError) as info:
        changewire.verify_request("not base64!", URL, BODY, headers)
    assert info.value.code == "invalid_secret"


def test_parse_event_reads_the_body_as_json_loads():
    event = changewire.parse_event(BODY)
    assert isinstance(event, changewire.Event)
    assert (event.event_id, event.subscription_id, event.resource, event.action) == (17, 3, "run_steps", "update")
    assert (event.transaction_id, event.occurred_at) == (99, "2026-04-26T19:33:42.108Z")
    assert event.data.id == 7 and event.data.etag == "e1"
    assert list(event.data.new.items()) == [("status", "done"), ("10", 1), ("2", 2)]
    assert event.data.old == {"status": "open", "qty": 1.0} and isinstance(event.data.old["qty"], float)
    assert event.data.extra == {"record": {"id": 7}}
    assert event == changewire.parse_event(BODY.decode())
    assert event != changewire.parse_event(BODY.replace(b'"done"', b'"paid"'))
    rebuilt = changewire.Event(17, 3, "run_steps", "update", 99, "2026-04-26T19:33:42.108Z",
                               changewire.EventData(7, "e1", {"status": "open", "qty": 1.0},
                                                    {"status": "done", "10": 1, "2": 2}, {"record": {"id": 7}}))
    assert rebuilt == event
    assert repr(event).startswith("Event(event_id=17, subscription_id=3, resource='run_steps', action='update'")
    with pytest.raises(AttributeError):
        event.event_id = 18  # frozen


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"event_id": 1}', "missing field `action`"),
        (b'[]', "expected a JSON object, found a JSON array"),
        (b'{"event_id": "1", "subscription_id": 1, "resource": "r", "action": "create", "transaction_id": 1, '
         b'"occurred_at": "t", "data": {"id": 1}}', "`event_id` must be an integer, found a JSON string"),
        (b'{"action": "merge", "data": {}}', 'unknown action "merge"'),
        (b'{"action": "create", "data": {"old": null}}', "missing field `data.id`"),
        (b'{"action": "create", "data": {"id": 1, "new": [1]}, "event_id": 1, "subscription_id": 1, '
         b'"resource": "r", "transaction_id": 1, "occurred_at": "t"}', "`data.new` must be an object or null"),
        (b"{", "invalid JSON at byte 1"),
    ],
)
def test_parse_event_says_what_is_wrong(body, message):
    with pytest.raises(changewire.InvalidEventError) as info:
        changewire.parse_event(body)
    assert isinstance(info.value, ValueError)
    assert str(info.value).startswith("body is not a changewire event: ")
    assert message in str(info.value)


def test_diagnose_and_explain():
    assert changewire.explain(URL, BODY) == (
        URL + "?etag:e1&id:7&new:{'status': 'done', '10': 1, '2': 2}"
        "&old:{'status': 'open', 'qty': 1.0}&record:{'id': 7}"
    )
    ok = changewire.diagnose(SECRET, URL, BODY, SIGNATURE)
    assert (ok.matches, ok.cause, ok.expected_signature) == (True, None, SIGNATURE)
    slash = changewire.diagnose(SECRET, URL + "/", BODY, SIGNATURE)
    assert slash.matches is False
    assert "verify with the URL exactly as registered" in slash.cause
    # Signed with integer-like keys first (JavaScript's order), checked against the body's order.
    js_order = BODY.replace(b'"status": "done", "10": 1, "2": 2', b'"2": 2, "10": 1, "status": "done"')
    js = changewire.diagnose(SECRET, URL, BODY, changewire.sign_body(SECRET, URL, js_order))
    assert "integer-like keys first" in js.cause and "verify the raw body bytes" in js.cause
    wrong = changewire.diagnose("other", URL, BODY, SIGNATURE)
    assert wrong.cause.startswith("no URL or ordering variant matches")
    assert repr(js).startswith("Diagnosis(matches=False, expected_signature='")


def test_constants_and_exports():
    assert changewire.UNICODE_VERSION == "14.0.0"
    assert changewire.DEFAULT_TOLERANCE == 300
    assert changewire.WebhookVerificationError.__module__ == "changewire"
    assert issubclass(changewire.WebhookVerificationError, ValueError)
    assert changewire.__version__ == "0.1.0"


def test_version_is_the_crates():
    """``__version__`` (the installed distribution's) is the workspace version
    the extension was compiled from: maturin takes it from Cargo.toml."""
    cargo = (pathlib.Path(__file__).parents[2] / "Cargo.toml").read_text(encoding="utf-8")
    section = cargo.split("[workspace.package]", 1)[1]
    version = next(
        line.split("=", 1)[1].strip().strip('"')
        for line in section.splitlines()
        if line.startswith("version")
    )
    assert changewire.__version__ == version


def test_stub_declares_exactly_the_public_api():
    stub = pathlib.Path(changewire.__file__).with_name("_changewire.pyi")
    tree = ast.parse(stub.read_text(encoding="utf-8"))
    declared = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            declared.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            declared.add(node.target.id)
    public = {name for name in declared if not name.startswith("_")}
    assert public == set(changewire.__all__)
    assert pathlib.Path(changewire.__file__).with_name("py.typed").exists()
