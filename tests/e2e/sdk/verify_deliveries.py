#!/usr/bin/env python3
"""Verifies captured gateway deliveries with the Python SDK.

    verify_deliveries.py DELIVERIES.json

Each case is {secret, url, body_b64, headers: [[k, v]], now, scheme}. Prints
one JSON list: for each case, the scheme that verified or "error:<code>".
For ION deliveries it also checks the reference-compatible
`verify_signature(secret, url, data, header)` on `json.loads(body)["data"]`.
"""
import base64
import json
import sys

import changewire

cases = json.load(open(sys.argv[1]))
out = []
for case in cases:
    body = base64.b64decode(case["body_b64"])
    headers = dict((k, v) for k, v in case["headers"])
    try:
        scheme = changewire.verify_request(case["secret"], case["url"], body, headers, now=case["now"], require=case["scheme"])
        result = scheme
    except changewire.WebhookVerificationError as e:
        result = "error:" + e.code
    if case["scheme"] == "ion" and "x-ion-signature" in headers:
        try:
            data = json.loads(body)["data"]
            # During a rotation the new secret's signature is in x-ion-signature-next.
            candidates = [headers["x-ion-signature"], headers.get("x-ion-signature-next")]
            ok = any(changewire.verify_signature(case["secret"], case["url"], data, sig) for sig in candidates if sig)
        except Exception as e:  # noqa: BLE001 - any failure is a disagreement
            ok = False
        result += "|dict:" + ("ok" if ok else "no")
    out.append(result)
print(json.dumps(out))
