"""ION's reference verification function, verbatim from its documentation
(``reference/ion-webhooks-reference.txt``). The SDK must agree with it."""

import base64
import hashlib
import hmac


def verify_signature(secret: str, url: str, data: dict, header_signature: str) -> bool:
    params = [f"{k}:{v}" for k, v in sorted(data.items()) if v is not None]
    signed = f"{url}?{'&'.join(params)}".encode("utf-8")
    expected = base64.b64encode(
        hmac.new(secret.encode("utf-8"), signed, hashlib.sha1).digest()
    ).decode()
    return hmac.compare_digest(expected, header_signature)


def sign(secret: str, url: str, data: dict) -> str:
    """The signature the reference accepts (same construction)."""
    params = [f"{k}:{v}" for k, v in sorted(data.items()) if v is not None]
    signed = f"{url}?{'&'.join(params)}".encode("utf-8")
    return base64.b64encode(hmac.new(secret.encode("utf-8"), signed, hashlib.sha1).digest()).decode()


def outcome(fn, *args):
    """A function's result, or the type of the exception it raised."""
    try:
        return fn(*args)
    except Exception as exc:  # noqa: BLE001 - the type is the outcome
        return type(exc)
