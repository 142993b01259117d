"""The endpoint mounted in a FastAPI application with `routes()`, first, as docs/embedding.md
shows, next to a route of the application's own: benchmarks/servers.py's `bayeux-fastapi` (uvicorn
without its `standard` extras: h11, asyncio's own loop, wsproto for WebSockets) and
`bayeux-fastapi-standard` (uvicorn[standard]: httptools, uvloop, websockets).
BAYEUX_TIMEOUT_MS sets the connect hold."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from fastapi import FastAPI

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bayeux import Endpoint, Settings  # noqa: E402

endpoint = Endpoint(
    Settings(
        timeout=int(os.environ.get("BAYEUX_TIMEOUT_MS", "30000")),
        max_sessions_per_browser=-1,
        max_handshakes_per_address=-1,
    )
)
app = FastAPI()
app.router.routes[:0] = endpoint.asgi().routes("/cometd")


@app.get("/api/hello")
def hello() -> dict[str, str]:
    return {"hello": "world"}


# The same application with the endpoint in front of it (bayeux-fastapi-front): the endpoint's
# requests skip FastAPI's middleware and routing; the lifespan and other WebSockets go on to it.
front = endpoint.asgi().in_front_of(app, "/cometd", pass_on=True)
