"""Verifications per second on a 1 KB ION payload: changewire vs ION's
reference pure-Python function.

    python sdk-python/bench/bench_verify.py [--seconds 1.0]

Prints one JSON object. Two comparisons:

* ``verify_signature``: the `data` dict is already parsed (the reference's
  own calling convention);
* ``raw_body``: what a receiver does per request: the reference needs
  ``json.loads(body)["data"]`` first; ``changewire.verify_request`` takes the
  raw bytes and the headers.
"""

import argparse
import base64
import hashlib
import hmac
import json
import platform
import sys
import timeit

import changewire

SECRET = "GWbFXru-8tGJ-6WTqjbYfxXQRX0R8tTh"
URL = "https://ion-sync.internal.example.net/hooks/run-steps"


def reference_verify_signature(secret: str, url: str, data: dict, header_signature: str) -> bool:
    # Verbatim from ION's documentation.
    params = [f"{k}:{v}" for k, v in sorted(data.items()) if v is not None]
    signed = f"{url}?{'&'.join(params)}".encode("utf-8")
    expected = base64.b64encode(hmac.new(secret.encode("utf-8"), signed, hashlib.sha1).digest()).decode()
    return hmac.compare_digest(expected, header_signature)


def payload() -> bytes:
    """A realistic run-step update of about 1 KB."""
    old = {
        "status": "in_progress",
        "assigned_to_id": 2912,
        "location_id": 26,
        "duration_seconds": 3748.5,
        "passed": None,
        "notes": "Torque check pending on fixture B",
        "serial_number": "SN-774113",
        "completed_at": None,
        "attributes": {"lot": "L-2026-11", "qty": 12, "inspected": False},
    }
    new = {
        "status": "complete",
        "assigned_to_id": 3310,
        "location_id": 142,
        "duration_seconds": 4012.25,
        "passed": True,
        "notes": "Torque verified: 12.5 Nm on all 8 fasteners (fixture B)",
        "serial_number": "SN-866021",
        "completed_at": "2026-04-26T19:33:42.108Z",
        "attributes": {"lot": "L-2026-11", "qty": 12, "inspected": True, "inspector": "Zoë Müller"},
    }
    body = {
        "event_id": 5182912,
        "subscription_id": 362,
        "resource": "run_step",
        "action": "update",
        "transaction_id": 60068168,
        "occurred_at": "2026-04-26T19:33:42.108Z",
        "data": {
            "id": 508241,
            "etag": "54702d7d9f3e",
            "old": old,
            "new": new,
            "record_url": "https://app.example.net/runs/508241",
            "related": {"run_id": 77120, "procedure": "Final assembly, rev C", "station": "A-07"},
        },
    }
    return json.dumps(body, ensure_ascii=False).encode("utf-8")


def rate(fn, seconds: float) -> float:
    timer = timeit.Timer(fn)
    number, _ = timer.autorange()
    runs = max(3, int(seconds / max(timer.timeit(number) / number, 1e-9) / number))
    best = min(timer.repeat(repeat=5, number=max(number, runs // 5)))
    return max(number, runs // 5) / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="time per measurement")
    args = parser.parse_args()

    body = payload()
    data = json.loads(body)["data"]
    signature = changewire.sign_body(SECRET, URL, body)
    headers = {"content-type": "application/json", "x-ion-signature": signature}
    assert reference_verify_signature(SECRET, URL, data, signature)
    assert changewire.verify_signature(SECRET, URL, data, signature)
    assert changewire.verify_request(SECRET, URL, body, headers) == "ion"

    results = {
        "reference_verify_signature": rate(lambda: reference_verify_signature(SECRET, URL, data, signature), args.seconds),
        "changewire_verify_signature": rate(lambda: changewire.verify_signature(SECRET, URL, data, signature), args.seconds),
        "reference_raw_body": rate(
            lambda: reference_verify_signature(SECRET, URL, json.loads(body)["data"], signature), args.seconds
        ),
        "changewire_verify_request": rate(lambda: changewire.verify_request(SECRET, URL, body, headers), args.seconds),
    }
    print(
        json.dumps(
            {
                "payload_bytes": len(body),
                "python": platform.python_version(),
                "verifications_per_second": {k: round(v) for k, v in results.items()},
                "speedup": {
                    "verify_signature": round(results["changewire_verify_signature"] / results["reference_verify_signature"], 2),
                    "raw_body": round(results["changewire_verify_request"] / results["reference_raw_body"], 2),
                },
                "target_speedup": 5.0,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    sys.exit(main())
