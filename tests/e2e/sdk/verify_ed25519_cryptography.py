#!/usr/bin/env python3
"""Verifies the Ed25519 (`v1a`) signatures of captured gateway deliveries
with Python's `cryptography` package (OpenSSL), not with changewire's code.

    verify_ed25519_cryptography.py DELIVERIES.json

Reads the cases verify_deliveries.py reads and, for each case whose scheme
is "ed25519", prints "ok" when any `v1a` entry of `webhook-signature` is a
valid Ed25519 signature of "{webhook-id}.{webhook-timestamp}.{body}" by the
case's `whpk_` public key, else "no". One JSON list.
"""
import base64
import json
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


def verifies(case):
    headers = {k.lower(): v for k, v in case["headers"]}
    public = Ed25519PublicKey.from_public_bytes(base64.b64decode(case["secret"][len("whpk_"):]))
    body = base64.b64decode(case["body_b64"])
    signed = f'{headers["webhook-id"]}.{headers["webhook-timestamp"]}.'.encode() + body
    for entry in headers.get("webhook-signature", "").split():
        version, _, encoded = entry.partition(",")
        if version != "v1a":
            continue
        try:
            public.verify(base64.b64decode(encoded), signed)
            return True
        except (InvalidSignature, ValueError):
            continue
    return False


cases = json.load(open(sys.argv[1]))
print(json.dumps(["ok" if verifies(c) else "no" for c in cases if c["scheme"] == "ed25519"]))
