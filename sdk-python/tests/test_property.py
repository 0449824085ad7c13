"""Property test: ``changewire.verify_signature`` agrees with ION's reference
function on generated payloads (values, exceptions and all), and
``verify_request`` on the serialized body agrees with both."""

import json
import unicodedata

from hypothesis import HealthCheck, given, settings, strategies as st

import changewire
from reference import outcome, sign, verify_signature as reference_verify

SAME_UNICODE = unicodedata.unidata_version == changewire.UNICODE_VERSION


def stable(ch: str) -> bool:
    """Characters whose printability is the same in every Unicode version: the
    core follows Python 3.11's Unicode 14.0 (the gateway's); a newer Python
    prints characters assigned since then that 14.0 escapes."""
    return SAME_UNICODE or unicodedata.ucd_3_2_0.category(ch) != "Cn" or unicodedata.category(ch) == "Cn"


# Every code point, lone surrogates included (json.loads produces those from \udxxx).
chars = st.characters(codec=None, exclude_categories=()).filter(stable)
text = st.text(chars, max_size=12) | st.sampled_from(["", "a", "it's", 'say "hi"', "a-", "10", "2", "é", "\\"])
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**60), max_value=10**60)
    | st.floats(allow_nan=True, allow_infinity=True)
    | text
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=12,
)
data_dicts = st.dictionaries(text, values, max_size=6)
secrets = st.text(st.characters(codec="utf-8"), max_size=20)
urls = st.sampled_from(["https://hooks.example.com/ion-events", "http://127.0.0.1:8080/h?x=1", "", "https://ü.test/é"])

SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(secret=secrets, url=urls, data=data_dicts, tamper=st.sampled_from(["none", "char", "other"]))
def test_verify_signature_agrees_with_the_reference(secret, url, data, tamper):
    signature = outcome(sign, secret, url, data)
    if not isinstance(signature, str):
        signature = "AAAAAAAAAAAAAAAAAAAAAAAAAAA="  # the reference cannot sign it either
    elif tamper == "char":
        signature = ("B" if signature[0] != "B" else "C") + signature[1:]
    elif tamper == "other":
        signature = sign("other" + secret, url, {})
    ours = outcome(changewire.verify_signature, secret, url, data, signature)
    theirs = outcome(reference_verify, secret, url, data, signature)
    assert ours == theirs


@SETTINGS
@given(secret=secrets, url=urls, data=data_dicts, ensure_ascii=st.booleans())
def test_verify_request_on_the_raw_body_agrees(secret, url, data, ensure_ascii):
    body_text = json.dumps({"event_id": 1, "data": data}, ensure_ascii=ensure_ascii)
    try:
        body = body_text.encode("utf-8")
    except UnicodeEncodeError:
        body = body_text.encode("utf-8", "surrogatepass")  # what a sender writing raw surrogates sends
    parsed = json.loads(body)["data"]
    signature = outcome(sign, secret, url, parsed)
    if not isinstance(signature, str):
        assert outcome(changewire.verify_request, secret, url, body, {"x-ion-signature": "x"}) is (
            changewire.WebhookVerificationError
        )
        return
    assert changewire.verify_request(secret, url, body, {"x-ion-signature": signature}) == "ion"
    assert changewire.sign_body(secret, url, body) == signature
    assert changewire.verify_signature(secret, url, parsed, signature) is True
