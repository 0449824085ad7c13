"""Verify and parse changewire (and First Resonance ION) webhooks.

A drop-in for the ``verify_signature`` function in ION's documentation::

    import json, changewire

    body = request.get_data()                     # the raw bytes, before any JSON parsing
    scheme = changewire.verify_request(SECRET, URL, body, request.headers)
    event = changewire.parse_event(body)

or, for code written against ION's reference function::

    ok = changewire.verify_signature(SECRET, URL, json.loads(body)["data"], signature)

All the signing logic is changewire's Rust core, the same code the gateway
signs with.
"""

from importlib.metadata import PackageNotFoundError, version as _version

from ._changewire import (
    DEFAULT_TOLERANCE,
    UNICODE_VERSION,
    Diagnosis,
    Event,
    EventData,
    InvalidEventError,
    WebhookVerificationError,
    diagnose,
    explain,
    parse_event,
    sign_body,
    sign_standard,
    verify_request,
    verify_signature,
)

try:
    __version__ = _version("changewire")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = [
    "DEFAULT_TOLERANCE",
    "UNICODE_VERSION",
    "Diagnosis",
    "Event",
    "EventData",
    "InvalidEventError",
    "WebhookVerificationError",
    "diagnose",
    "explain",
    "parse_event",
    "sign_body",
    "sign_standard",
    "verify_request",
    "verify_signature",
]
