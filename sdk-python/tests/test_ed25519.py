"""Standard Webhooks `v1a` (Ed25519) against an implementation that is not ours.

`cryptography` (OpenSSL's Ed25519) signs, and changewire verifies with the
`whpk_` public key through `verify_request`, the entry point that takes a
`whsec_` secret. The other direction uses the shared vectors: the core's
tests require its signature to equal every vector's `expectedSignature`
(Ed25519 is deterministic), and here OpenSSL must produce and accept exactly
that signature from the vector's seed and public key.
"""

import base64
import time

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given, settings
from hypothesis import strategies as st

import changewire
from conftest import load

ED25519 = load("standard_webhooks_ed25519.json")
URL = "https://r.test/hooks"


def public_key_text(private):
    raw = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return "whpk_" + base64.b64encode(raw).decode()


def v1a(private, msg_id, timestamp, body):
    content = msg_id.encode() + b"." + str(timestamp).encode() + b"." + body
    return "v1a," + base64.b64encode(private.sign(content)).decode()


def headers_for(msg_id, timestamp, signature):
    return {"webhook-id": msg_id, "webhook-timestamp": str(timestamp), "webhook-signature": signature}


def test_a_signature_by_cryptography_verifies_with_the_real_clock():
    private = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
    body = b'{"event_id": 17, "data": {"id": 7, "new": {"status": "done"}}}'
    now = int(time.time())
    headers = headers_for("msg_17", now, v1a(private, "msg_17", now, body))
    public = public_key_text(private)
    assert changewire.verify_request(public, URL, body, headers) == "ed25519"
    # require="ed25519" reads the clock too (a stale `now` of 0 would refuse it).
    assert changewire.verify_request(public, URL, body, headers, require="ed25519") == "ed25519"
    assert changewire.verify_request(public, URL, body, headers, require="ED25519") == "ed25519"
    with pytest.raises(changewire.WebhookVerificationError) as info:
        changewire.verify_request(public, URL, body, headers, now=now + 301)
    assert info.value.code == "timestamp_too_old"
    with pytest.raises(changewire.WebhookVerificationError) as info:
        changewire.verify_request(public, URL, body + b" ", headers)
    assert (info.value.code, str(info.value)) == ("signature_mismatch", "signature does not match")


def test_a_public_key_and_the_scheme_it_verifies_go_together():
    private = Ed25519PrivateKey.from_private_bytes(b"\x07" * 32)
    body = b"{}"
    headers = headers_for("m", 1000, v1a(private, "m", 1000, body))
    public = public_key_text(private)
    for scheme in ("ion", "standard"):
        with pytest.raises(changewire.WebhookVerificationError) as info:
            changewire.verify_request(public, URL, body, headers, now=1000, require=scheme)
        assert info.value.code == "invalid_secret"
        assert "only the `ed25519` scheme" in str(info.value)
    with pytest.raises(changewire.WebhookVerificationError) as info:
        changewire.verify_request("whsec_c2VjcmV0", URL, body, headers, now=1000, require="ed25519")
    assert info.value.code == "invalid_secret"
    with pytest.raises(changewire.WebhookVerificationError) as info:
        changewire.verify_request(public[:-4], URL, body, headers, now=1000)
    assert info.value.code == "invalid_secret"


def test_rotation_and_hmac_entries_beside_v1a():
    old = Ed25519PrivateKey.from_private_bytes(b"\x01" * 32)
    new = Ed25519PrivateKey.from_private_bytes(b"\x02" * 32)
    secret = "whsec_c2VjcmV0LWtleS1ieXRlcw=="
    body = b'{"data": {}}'
    header = " ".join([
        changewire.sign_standard(secret, "m", 1000, body),
        v1a(old, "m", 1000, body),
        v1a(new, "m", 1000, body),
    ])
    headers = headers_for("m", 1000, header)
    for private in (old, new):
        assert changewire.verify_request(public_key_text(private), URL, body, headers, now=1000) == "ed25519"
    # The same header with the HMAC secret: its v1 entry, as before.
    assert changewire.verify_request(secret, URL, body, headers, now=1000) == "standard"
    other = Ed25519PrivateKey.from_private_bytes(b"\x03" * 32)
    with pytest.raises(changewire.WebhookVerificationError) as info:
        changewire.verify_request(public_key_text(other), URL, body, headers, now=1000)
    assert info.value.code == "signature_mismatch"


@settings(max_examples=200, deadline=None)
@given(
    seed=st.binary(min_size=32, max_size=32),
    msg_id=st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40),
    timestamp=st.integers(min_value=0, max_value=2**40),
    body=st.binary(max_size=2048),
)
def test_any_message_signed_by_cryptography_verifies_and_no_other(seed, msg_id, timestamp, body):
    private = Ed25519PrivateKey.from_private_bytes(seed)
    public = public_key_text(private)
    headers = [("webhook-id", msg_id), ("webhook-timestamp", str(timestamp)),
               ("webhook-signature", v1a(private, msg_id, timestamp, body))]
    assert changewire.verify_request(public, URL, body, headers, now=timestamp) == "ed25519"
    tampered = body + b"\x00"
    with pytest.raises(changewire.WebhookVerificationError) as info:
        changewire.verify_request(public, URL, tampered, headers, now=timestamp)
    assert info.value.code == "signature_mismatch"


@pytest.mark.parametrize("case", ED25519, ids=lambda c: str(c["tcId"]))
def test_cryptography_agrees_with_every_vector(case):
    seed = base64.b64decode(case["signingKey"].removeprefix("whsk_"), validate=True)
    private = Ed25519PrivateKey.from_private_bytes(seed)
    content = f"{case['msgId']}.{case['timestamp']}.{case['body']}".encode("utf-8")
    # The signature our core must write (core/tests/vectors.rs checks it does),
    # written by OpenSSL from the same seed ...
    expected = case["expectedSignature"]
    assert v1a(private, case["msgId"], case["timestamp"], case["body"].encode("utf-8")) == expected
    # ... and accepted by OpenSSL's verifier with the seed's public key.
    signature = base64.b64decode(expected.removeprefix("v1a,"), validate=True)
    private.public_key().verify(signature, content)
    with pytest.raises(InvalidSignature):
        private.public_key().verify(signature, content + b"x")
    if not {"MalformedPublicKey", "WrongKey"} & set(case["flags"]):
        assert case["publicKey"] == public_key_text(private)
        raw = base64.b64decode(case["publicKey"].removeprefix("whpk_"), validate=True)
        Ed25519PublicKey.from_public_bytes(raw).verify(signature, content)
