"""The endpoint inside an aiohttp application: a route of the application's own publishes to
the endpoint's subscribers, and a handshake must carry the application's API key (read by the
security policy from the request context: here a header, as a service client would send it).

Run it:   .venv/bin/python examples/aiohttp/app.py --port 8080   (pip install aiohttp)
Then:     curl -H 'X-Api-Key: demo-key' -H 'Content-Type: application/json' \\
            http://127.0.0.1:8080/cometd -d '[{"channel":"/meta/handshake","version":"1.0",
            "supportedConnectionTypes":["long-polling"]}]'
          curl -X POST 'http://127.0.0.1:8080/announce?text=hello'
"""

from __future__ import annotations

import argparse
import hmac
import os
from typing import Any

from aiohttp import web

from bayeux import Endpoint, SecurityPolicy, ServerSession, current_request

API_KEY = os.environ.get("APP_API_KEY", "demo-key")


class ApiKey(SecurityPolicy):
    def can_handshake(self, session: ServerSession, message: dict[str, Any]) -> bool:
        request = current_request()
        given = request.header("x-api-key") if request is not None else None
        return given is not None and hmac.compare_digest(given, API_KEY)


def make_app() -> web.Application:
    endpoint = Endpoint()
    endpoint.server.policy = ApiKey()
    app = web.Application()
    endpoint.aiohttp_mount(app, "/cometd")  # starts with the app, drains on its shutdown

    async def announce(request: web.Request) -> web.Response:
        reached = endpoint.publish("/announcements", {"text": request.query.get("text", "")})
        return web.json_response({"reached": reached})

    app.router.add_post("/announce", announce)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description="bayeux in an aiohttp application")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    # Callback-polling carries messages in the URL: a request line as long as bayeux allows.
    web.run_app(make_app(), host="127.0.0.1", port=args.port, handler_args={"max_line_size": 65536})


if __name__ == "__main__":
    main()
