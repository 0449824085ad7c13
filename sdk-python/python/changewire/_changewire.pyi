"""Type stubs for the compiled core (``changewire._changewire``)."""

from collections.abc import Iterable, Mapping
from typing import Any, Final, Literal, Protocol, SupportsIndex, Union

_Body = Union[bytes, bytearray, memoryview, str]

class _HasItems(Protocol):
    def items(self) -> Iterable[tuple[Any, Any]]: ...

_Headers = Union[
    Mapping[str, str],
    _HasItems,
    Iterable[tuple[Union[str, bytes], Union[str, bytes]]],
]

UNICODE_VERSION: Final[str]
DEFAULT_TOLERANCE: Final[int]

class WebhookVerificationError(ValueError):
    """A webhook failed verification; ``str(err)`` says why."""

    code: Literal[
        "invalid_json",
        "missing_data",
        "not_an_object",
        "unencodable",
        "missing_header",
        "malformed_header",
        "invalid_secret",
        "timestamp_too_old",
        "timestamp_too_new",
        "signature_mismatch",
    ]

class InvalidEventError(ValueError):
    """A body is not a changewire event envelope."""

def verify_signature(secret: str, url: object, data: _HasItems, signature: str) -> bool:
    """ION's reference ``verify_signature``: same arguments, same result."""

def verify_request(
    secret: str,
    url: str,
    body: _Body,
    headers: _Headers,
    *,
    now: Union[float, SupportsIndex, None] = None,
    tolerance: int = 300,
    require: Literal["ion", "standard", "ed25519", None] = None,
) -> Literal["ion", "standard", "ed25519"]:
    """Verify a request (raw body + headers); return the scheme that verified.

    ``secret`` is the receiver's shared secret (``whsec_…`` for Standard
    Webhooks), or a ``whpk_…`` Ed25519 public key, which verifies the
    Standard Webhooks ``v1a`` signature and returns ``"ed25519"``.
    """

def sign_body(secret: str, url: str, body: _Body) -> str:
    """The ``x-ion-signature`` value for a raw body."""

def sign_standard(secret: str, msg_id: str, timestamp: int, body: _Body) -> str:
    """The Standard Webhooks ``webhook-signature`` value (``v1,<base64>``)."""

def explain(url: str, body: _Body) -> str:
    """The exact string the ION scheme signs for this URL and body."""

class Diagnosis:
    """What :func:`diagnose` found."""

    @property
    def signed_string(self) -> str: ...
    @property
    def expected_signature(self) -> str: ...
    @property
    def matches(self) -> bool: ...
    @property
    def cause(self) -> Union[str, None]: ...

def diagnose(secret: str, url: str, body: _Body, signature: str) -> Diagnosis:
    """Recompute the ION signature and explain a mismatch."""

class EventData:
    """The ``data`` member of an event: the row and what changed."""

    def __init__(
        self,
        id: Any,
        etag: Union[str, None] = None,
        old: Union[dict[str, Any], None] = None,
        new: Union[dict[str, Any], None] = None,
        extra: Union[dict[str, Any], None] = None,
    ) -> None: ...
    @property
    def id(self) -> Any: ...
    @property
    def etag(self) -> Union[str, None]: ...
    @property
    def old(self) -> Union[dict[str, Any], None]: ...
    @property
    def new(self) -> Union[dict[str, Any], None]: ...
    @property
    def extra(self) -> dict[str, Any]: ...

class Event:
    """One delivery's body (ION's envelope)."""

    def __init__(
        self,
        event_id: int,
        subscription_id: int,
        resource: str,
        action: str,
        transaction_id: int,
        occurred_at: str,
        data: EventData,
    ) -> None: ...
    @property
    def event_id(self) -> int: ...
    @property
    def subscription_id(self) -> int: ...
    @property
    def resource(self) -> str: ...
    @property
    def action(self) -> Literal["create", "update", "delete", "test"]: ...
    @property
    def transaction_id(self) -> int: ...
    @property
    def occurred_at(self) -> str: ...
    @property
    def data(self) -> EventData: ...

def parse_event(body: _Body) -> Event:
    """Parse a (verified) body as an :class:`Event`, as ``json.loads`` reads it."""
