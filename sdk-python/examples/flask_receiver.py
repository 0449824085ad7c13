"""A changewire / ION webhook receiver with Flask.

    CHANGEWIRE_SECRET=s3cret CHANGEWIRE_URL=https://hooks.example.com/ion-events \\
        flask --app examples/flask_receiver.py run --host 127.0.0.1 --port 3000

CHANGEWIRE_URL is the receiver URL *as registered with the gateway* (what the
signature covers), not the address this process listens on.
"""

import os

from flask import Flask, request

import changewire

SECRET = os.environ.get("CHANGEWIRE_SECRET", "s3cret")
URL = os.environ.get("CHANGEWIRE_URL", "https://hooks.example.com/ion-events")

app = Flask(__name__)
seen = set()  # use a database table with a unique event_id in production


@app.post("/ion-events")
def ion_events():
    body = request.get_data()  # the raw bytes: never verify request.json
    try:
        changewire.verify_request(SECRET, URL, body, request.headers)
    except changewire.WebhookVerificationError as err:
        return str(err), 401
    event = changewire.parse_event(body)
    if event.event_id in seen:
        return "duplicate", 200  # acknowledge, so the gateway stops retrying
    seen.add(event.event_id)
    app.logger.info("%s %s id=%s new=%s", event.action, event.resource, event.data.id, event.data.new)
    return "processed", 200
