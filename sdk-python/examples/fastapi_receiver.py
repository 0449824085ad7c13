"""A changewire / ION webhook receiver with FastAPI.

    CHANGEWIRE_SECRET=s3cret CHANGEWIRE_URL=https://hooks.example.com/ion-events \\
        uvicorn --app-dir examples fastapi_receiver:app --host 127.0.0.1 --port 3000

CHANGEWIRE_URL is the receiver URL *as registered with the gateway* (what the
signature covers), not the address this process listens on.
"""

import os

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import PlainTextResponse

import changewire

SECRET = os.environ.get("CHANGEWIRE_SECRET", "s3cret")
URL = os.environ.get("CHANGEWIRE_URL", "https://hooks.example.com/ion-events")

app = FastAPI()
seen = set()  # use a database table with a unique event_id in production


async def verified_event(request: Request) -> changewire.Event:
    """A dependency that yields only verified events."""
    body = await request.body()  # the raw bytes: never verify a parsed model
    try:
        changewire.verify_request(SECRET, URL, body, request.headers)
    except changewire.WebhookVerificationError as err:
        raise HTTPException(status_code=401, detail=str(err)) from err
    try:
        return changewire.parse_event(body)
    except changewire.InvalidEventError as err:
        raise HTTPException(status_code=400, detail=str(err)) from err


@app.post("/ion-events", response_class=PlainTextResponse)
def ion_events(event: changewire.Event = Depends(verified_event)) -> str:
    if event.event_id in seen:
        return "duplicate"  # acknowledge, so the gateway stops retrying
    seen.add(event.event_id)
    print(event.action, event.resource, event.data.id, event.data.new)
    return "processed"
