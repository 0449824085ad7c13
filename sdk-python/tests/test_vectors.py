"""Every shared vector in ``tests/vectors/``, through the Python API.

Expected values were computed by Python and are frozen: a failure here is a
bug in the SDK or the core, never a reason to change a vector.
"""

import json

import pytest

import changewire
from conftest import load
from reference import outcome, verify_signature as reference_verify

ION = load("ion_signature.json")
STANDARD = load("standard_webhooks.json")
ED25519 = load("standard_webhooks_ed25519.json")


def test_vector_files_are_complete():
    assert len(ION) >= 1000
    assert len(STANDARD) >= 200
    assert len(ED25519) >= 100


def ion_codes(case):
    if "Unencodable" in case["flags"]:
        return {"unencodable"}
    if "BadData" in case["flags"]:
        return {"invalid_json", "missing_data", "not_an_object"}
    return {"signature_mismatch"}


@pytest.mark.parametrize("case", ION, ids=lambda c: str(c["tcId"]))
def test_ion_verify_request(case):
    body = case["body"].encode("utf-8")
    signature = case["signature"]
    valid = case["result"] == "valid"
    if signature != signature.strip():
        # HTTP strips whitespace around header values, and so does
        # verify_request: such a signature verifies if its trimmed form does.
        valid = reference_verify(case["secret"], case["url"], json.loads(body)["data"], signature.strip())
    headers = {"X-Ion-Signature": signature}
    if valid:
        assert changewire.verify_request(case["secret"], case["url"], body, headers) == "ion"
        assert changewire.sign_body(case["secret"], case["url"], body) == signature.strip()
        assert changewire.explain(case["url"], body) == case["canonical"]
    else:
        with pytest.raises(changewire.WebhookVerificationError) as info:
            changewire.verify_request(case["secret"], case["url"], body, headers)
        assert info.value.code in ion_codes(case)
        if info.value.code == "signature_mismatch":
            assert str(info.value) == "signature does not match"
    # During a rotation the right signature may arrive in x-ion-signature-next.
    rotated = [("x-ion-signature", "AAAAAAAAAAAAAAAAAAAAAAAAAAA="), ("x-ion-signature-next", signature)]
    assert outcome(changewire.verify_request, case["secret"], case["url"], body, rotated) == (
        "ion" if valid else changewire.WebhookVerificationError
    )


NO_DATA = object()


def data_of(case):
    """``json.loads(body)["data"]``, or NO_DATA when that raises."""
    try:
        return json.loads(case["body"])["data"]
    except (ValueError, KeyError, TypeError):
        return NO_DATA


WITH_DATA = [c for c in ION if data_of(c) is not NO_DATA]


def test_only_bad_bodies_have_no_data_to_pass():
    without = [c for c in ION if c not in WITH_DATA]
    assert without and all("BadData" in c["flags"] for c in without)


@pytest.mark.parametrize("case", WITH_DATA, ids=lambda c: str(c["tcId"]))
def test_ion_verify_signature_matches_the_reference(case):
    data = data_of(case)
    ours = outcome(changewire.verify_signature, case["secret"], case["url"], data, case["signature"])
    reference = outcome(reference_verify, case["secret"], case["url"], data, case["signature"])
    assert ours == reference
    if isinstance(reference, bool):
        assert reference == (case["result"] == "valid")
    else:
        assert case["result"] == "invalid"


REALISTIC = [c for c in ION if "Realistic" in c["flags"] and c["result"] == "valid"]


def test_there_are_realistic_events():
    assert len(REALISTIC) >= 40


@pytest.mark.parametrize("case", REALISTIC, ids=lambda c: str(c["tcId"]))
def test_ion_realistic_events_parse(case):
    body = case["body"].encode("utf-8")
    parsed = json.loads(body)
    event = changewire.parse_event(body)
    assert event.event_id == parsed["event_id"]
    assert event.action == parsed["action"]
    assert event.data.id == parsed["data"]["id"]
    assert event.data.old == parsed["data"]["old"]
    assert event.data.new == parsed["data"]["new"]
    # dict order is the body's order, as json.loads keeps it
    assert list((event.data.new or {}).keys()) == list((parsed["data"]["new"] or {}).keys())


def standard_message(case):
    """The exact reason core gives, where the vector determines it."""
    flags = set(case["flags"])
    age = case["now"] - case["timestamp"]
    if case["result"] == "valid":
        return None
    if "StaleTimestamp" in flags:
        return f"timestamp is {age}s old, beyond the 300s tolerance (replay?)"
    if "FutureTimestamp" in flags:
        return f"timestamp is {-age}s in the future, beyond the 300s tolerance (clock skew?)"
    if "OtherVersion" in flags:
        return "malformed `webhook-signature` header: no `v1,` signature"
    if "MalformedHeader" in flags:
        return ...  # malformed or mismatched, depending on the header
    return "signature does not match"


@pytest.mark.parametrize("case", STANDARD, ids=lambda c: str(c["tcId"]))
def test_standard_webhooks(case):
    body = case["body"].encode("utf-8")
    headers = [
        ("webhook-id", case["msgId"]),
        ("Webhook-Timestamp", str(case["timestamp"])),
        ("webhook-signature", case["signatureHeader"]),
        ("x-ion-signature", "ignored: Standard Webhooks headers take precedence"),
    ]
    expected = standard_message(case)
    if expected is None:
        assert changewire.verify_request(case["secret"], "https://r.test/", body, headers, now=case["now"]) == "standard"
    else:
        with pytest.raises(changewire.WebhookVerificationError) as info:
            changewire.verify_request(case["secret"], "https://r.test/", body, headers, now=case["now"])
        if expected is ...:
            assert info.value.code in {"malformed_header", "signature_mismatch"}
        else:
            assert str(info.value) == expected
    assert changewire.sign_standard(case["secret"], case["msgId"], case["timestamp"], body) == case["expectedSignature"]


def ed25519_expected(case):
    """(code, message) core gives for an invalid Ed25519 vector; None for a valid one.
    A message of ... means only the code is determined."""
    flags = set(case["flags"])
    age = case["now"] - case["timestamp"]
    if case["result"] == "valid":
        return None
    if "MalformedPublicKey" in flags:
        if case["publicKey"].startswith("whpk_"):
            return "invalid_secret", ...
        # Not a public key, so it is read as a whsec_ secret: refused, or no v1 entry.
        return {"invalid_secret", "malformed_header"}, ...
    if "StaleTimestamp" in flags:
        return "timestamp_too_old", f"timestamp is {age}s old, beyond the 300s tolerance (replay?)"
    if "FutureTimestamp" in flags:
        return "timestamp_too_new", f"timestamp is {-age}s in the future, beyond the 300s tolerance (clock skew?)"
    if "MissingV1a" in flags:
        return "malformed_header", (
            "malformed `webhook-signature` header: no `v1a,` signature "
            "(a `whpk_` public key verifies only Ed25519 `v1a` signatures)"
        )
    if "MalformedSignature" in flags:
        return "malformed_header", "malformed `webhook-signature` header: a `v1a,` signature is not base64 of 64 bytes"
    if "MalformedHeader" in flags:
        return "malformed_header", "malformed `webhook-signature` header: each signature is `<version>,<base64>`"
    return "signature_mismatch", "signature does not match"


@pytest.mark.parametrize("case", ED25519, ids=lambda c: str(c["tcId"]))
def test_standard_webhooks_ed25519(case):
    body = case["body"].encode("utf-8")
    pairs = [
        ("Webhook-Id", case["msgId"]),
        ("webhook-timestamp", str(case["timestamp"])),
        ("webhook-signature", case["signatureHeader"]),
        ("x-ion-signature", "ignored: a public key verifies the Standard Webhooks headers"),
    ]
    # Pairs and a plain dict take different paths through the binding.
    for headers in (pairs, {name.lower(): value for name, value in pairs}):
        expected = ed25519_expected(case)
        if expected is None:
            got = changewire.verify_request(case["publicKey"], "https://r.test/", body, headers, now=case["now"])
            assert got == "ed25519"
            continue
        with pytest.raises(changewire.WebhookVerificationError) as info:
            changewire.verify_request(case["publicKey"], "https://r.test/", body, headers, now=case["now"])
        code, message = expected
        assert info.value.code in (code if isinstance(code, set) else {code}), str(info.value)
        if message is not ...:
            assert str(info.value) == message
