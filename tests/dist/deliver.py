"""A real signed delivery, verified by the installed wheel.

    python deliver.py DIST/changewire VERSION

Starts the gateway binary on a fresh SQLite store, a receiver (http.server) on
127.0.0.1, registers it (GraphQL, ION + Standard Webhooks signatures),
publishes one event with ``POST /v1/events`` and verifies the request the
receiver got with ``changewire.verify_request``, as a receiver's developer
would. Every wait is bounded; only loopback traffic.
"""

import http.server
import json
import os
import queue
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

import changewire

BINARY, VERSION = sys.argv[1], sys.argv[2]
TOKEN = "dist-test-admin-token-0123456789abcdef"
# Integer-like keys, a float, non-ASCII and a newline: what the ION signature is picky about.
NEW = '{"status": "done", "qty": 1.0, "10": 1, "2": 2, "note": "caf\\u00e9\\n"}'


def fail(message):
    print(f"deliver.py: FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


received = queue.Queue()


class Receiver(http.server.BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        received.put((self.path, list(self.headers.items()), body))
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def call(base, path, payload, expect):
    request = urllib.request.Request(
        base + path,
        data=json.dumps(payload).encode(),
        headers={"content-type": "application/json", "authorization": f"Bearer {TOKEN}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            status, text = r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read().decode()
    if status != expect:
        fail(f"{path} answered {status}: {text}")
    return json.loads(text)


def graphql(base, query):
    body = call(base, "/graphql", {"query": query}, 200)
    if body.get("errors"):
        fail(f"GraphQL: {body['errors']}")
    return body["data"]


def main():
    if changewire.__version__ != VERSION:
        fail(f"changewire.__version__ is {changewire.__version__!r}, the crates are {VERSION!r}")
    where = os.path.dirname(changewire.__file__)
    if "site-packages" not in where:
        fail(f"changewire imported from {where}, not from the venv's site-packages")

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/hooks/ion-events"

    work = tempfile.mkdtemp(prefix="changewire-dist-py-")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHANGEWIRE_")}
    env.update(
        CHANGEWIRE_LISTEN=f"127.0.0.1:{port}",
        CHANGEWIRE_STORE=f"sqlite://{work}/store.db",
        CHANGEWIRE_ADMIN_TOKEN=TOKEN,
        CHANGEWIRE_ALLOW_HTTP="true",
        CHANGEWIRE_ALLOW_PRIVATE_NETWORKS="true",
        CHANGEWIRE_RESOURCES="RUNS=runs",
        CHANGEWIRE_LOG__LEVEL="warn",
        CHANGEWIRE_DELIVERY__POLL_INTERVAL_MS="20",
    )
    log = open(os.path.join(work, "gateway.log"), "wb")
    gateway = subprocess.Popen([BINARY, "serve"], env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if gateway.poll() is not None:
                fail(f"changewire exited at start-up ({gateway.returncode}): {open(log.name).read()}")
            try:
                with urllib.request.urlopen(base + "/healthz", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                fail("changewire did not become healthy in 30 s")
            time.sleep(0.1)

        receiver = graphql(
            base,
            'mutation { createWebhookReceiver(input: { name: "dist", webhookUri: "%s", '
            "signatureSchemes: [ION, STANDARD] }) { webhookReceiver { id sharedSecret } } }" % url,
        )["createWebhookReceiver"]["webhookReceiver"]
        graphql(
            base,
            "mutation { createWebhookSubscription(input: { receiverId: %s, resource: RUNS, action: UPDATE }) "
            "{ webhookSubscription { id } } }" % json.dumps(receiver["id"]),
        )
        event = {"resource": "RUNS", "action": "UPDATE", "id": 42, "old": {"status": "open"}, "new": json.loads(NEW)}
        call(base, "/v1/events", event, 202)

        try:
            path, headers, body = received.get(timeout=30)
        except queue.Empty:
            fail(f"no delivery in 30 s: {open(log.name).read()}")
    finally:
        gateway.terminate()
        try:
            gateway.wait(timeout=15)
        except subprocess.TimeoutExpired:
            gateway.kill()
            gateway.wait(timeout=5)
        server.shutdown()

    secret = receiver["sharedSecret"]
    names = {k.lower() for k, _ in headers}
    for name in ("x-ion-signature", "webhook-id", "webhook-timestamp", "webhook-signature"):
        if name not in names:
            fail(f"the delivery has no {name} header: {headers}")
    checks = {
        "default": changewire.verify_request(secret, url, body, headers),
        "ion": changewire.verify_request(secret, url, body, headers, require="ion"),
        "standard": changewire.verify_request(secret, url, body, headers, require="standard"),
    }
    if checks != {"default": "standard", "ion": "ion", "standard": "standard"}:
        fail(f"schemes: {checks}")
    parsed = changewire.parse_event(body)
    if (parsed.resource, parsed.action) != ("runs", "update") or parsed.data.new["note"] != "café\n":
        fail(f"parsed event: {parsed!r}")
    # The reference function on `data`, and a tampered body refused.
    signature = dict((k.lower(), v) for k, v in headers)["x-ion-signature"]
    if not changewire.verify_signature(secret, url, json.loads(body)["data"], signature):
        fail("verify_signature on the parsed data")
    tampered = body.replace(b'"done"', b'"paid"')
    try:
        changewire.verify_request(secret, url, tampered, headers, require="ion")
    except changewire.WebhookVerificationError as e:
        if e.code != "signature_mismatch":
            fail(f"tampered body: {e.code}")
    else:
        fail("a tampered body verified")
    print(
        f"python: changewire {changewire.__version__} from {where} verified a delivery "
        f"(event {parsed.event_id}, {len(body)} bytes): {checks}"
    )


if __name__ == "__main__":
    main()
