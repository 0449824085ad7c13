#!/usr/bin/env python3
"""A webhook receiver written only from ION's documentation.

It verifies `x-ion-signature` with the documented construction (sorted
`k:v` pairs of `data`, null values left out, the receiver URL, HMAC-SHA1,
base64, constant-time compare), deduplicates on `event_id`, and records
every accepted event as a JSON line. To exercise retries it answers 500 to
the first attempt of every event whose id is divisible by 7.

    ion_reference_receiver.py SECRET_FILE URL_FILE OUT_FILE

It binds 127.0.0.1 on a free port and prints the port on stdout. The secret
and the registered URL are read from files (written once the receiver is
registered), so the receiver can start before registration.
"""
import base64
import hashlib
import hmac
import json
import pathlib
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SECRET_FILE, URL_FILE, OUT_FILE = map(pathlib.Path, sys.argv[1:4])
LOCK = threading.Lock()
SEEN = set()
FAILED_ONCE = set()


def signature_matches(secret, url, data, header_signature):
    pairs = [f"{k}:{v}" for k, v in sorted(data.items()) if v is not None]
    message = f"{url}?{'&'.join(pairs)}".encode("utf-8")
    digest = hmac.new(secret.encode("utf-8"), message, hashlib.sha1).digest()
    return hmac.compare_digest(base64.b64encode(digest).decode(), header_signature)


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def answer(self, status):
        self.send_response(status)
        self.send_header("content-length", "0")
        self.end_headers()

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        event = json.loads(body)
        secret = SECRET_FILE.read_text().strip()
        url = URL_FILE.read_text().strip()
        if not signature_matches(secret, url, event["data"], self.headers.get("x-ion-signature", "")):
            with LOCK, OUT_FILE.open("a") as out:
                out.write(json.dumps({"invalid": event.get("event_id")}) + "\n")
            return self.answer(401)
        event_id = event["event_id"]
        with LOCK:
            if event_id % 7 == 0 and event_id not in FAILED_ONCE:
                FAILED_ONCE.add(event_id)
                return self.answer(500)
            if event_id in SEEN:
                return self.answer(200)  # already processed: ack to stop retries
            SEEN.add(event_id)
            with OUT_FILE.open("a") as out:
                out.write(json.dumps({"event_id": event_id, "id": event["data"]["id"]}) + "\n")
        self.answer(200)


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
