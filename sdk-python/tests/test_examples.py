"""The Flask and FastAPI examples, driven in-process (no network)."""

import importlib.util
import pathlib
import time

import changewire

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"
URL = "https://hooks.example.com/ion-events"
BODY = (
    b'{"event_id": 42, "subscription_id": 1, "resource": "run_steps", "action": "update", '
    b'"transaction_id": 7, "occurred_at": "2026-04-26T19:33:42.108Z", "data": {"id": 1234, '
    b'"etag": "abc123", "old": {"status": "in_progress"}, "new": {"status": "complete", "10": 1, "2": 2.0}}}'
)


def load(name, monkeypatch):
    monkeypatch.setenv("CHANGEWIRE_SECRET", "whsec_c2VjcmV0LWtleS1ieXRlcw==")
    monkeypatch.setenv("CHANGEWIRE_URL", URL)
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def exchanges(post):
    secret = "whsec_c2VjcmV0LWtleS1ieXRlcw=="
    ion = {"x-ion-signature": changewire.sign_body(secret, URL, BODY), "content-type": "application/json"}
    forged = BODY.replace(b"complete", b"cancelled")
    now = int(time.time())
    std = {
        "webhook-id": "43",
        "webhook-timestamp": str(now),
        "webhook-signature": changewire.sign_standard(secret, "43", now, BODY.replace(b"42", b"43")),
    }
    return [
        post(BODY, ion),
        post(BODY, ion),
        post(forged, ion),
        post(BODY, {}),
        post(BODY.replace(b"42", b"43"), std),
    ]


def test_flask_example(monkeypatch):
    app = load("flask_receiver", monkeypatch).app
    client = app.test_client()

    def post(body, headers):
        resp = client.post("/ion-events", data=body, headers=headers)
        return resp.status_code, resp.get_data(as_text=True)

    assert exchanges(post) == [
        (200, "processed"),
        (200, "duplicate"),
        (401, "signature does not match"),
        (401, "missing `x-ion-signature` header"),
        (200, "processed"),
    ]


def test_fastapi_example(monkeypatch):
    from fastapi.testclient import TestClient

    client = TestClient(load("fastapi_receiver", monkeypatch).app)

    def post(body, headers):
        resp = client.post("/ion-events", content=body, headers=headers)
        text = resp.text if resp.status_code == 200 else resp.json()["detail"]
        return resp.status_code, text

    assert exchanges(post) == [
        (200, "processed"),
        (200, "duplicate"),
        (401, "signature does not match"),
        (401, "missing `x-ion-signature` header"),
        (200, "processed"),
    ]
