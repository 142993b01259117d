"""The servers the extension interop runs use (interop/test_cometd_extensions.py): one with the
timestamp and binary extensions on, and an application whose hooks look at binary data (a
listener recording what it saw, a remote call answering bytes, one publishing bytes); and two
with the activity extension, in each of its modes. With the browser's page and the client
library beside the endpoint, from one origin."""

from __future__ import annotations

from typing import Any

import tornado.web

from bayeux import BayeuxServer, Endpoint, ServiceError, Settings
from bayeux.testing import ServerThread

from .conftest import INTEROP

# What extensions.js expects: the binary bound, and the activity limit (ms).
MAX_BINARY = 65536
INACTIVITY = 1500


def install(server: BayeuxServer) -> None:
    seen: list[dict[str, Any]] = []

    def record(session: Any, channel: str, message: dict[str, Any]) -> None:
        data = message["data"]
        binary = data.get("data") if isinstance(data, dict) else None
        seen.append(
            {
                "type": type(binary).__name__,
                "hex": binary.hex() if isinstance(binary, bytes) else None,
                "last": data.get("last") if isinstance(data, dict) else None,
                "meta": data.get("meta") if isinstance(data, dict) else None,
            }
        )

    server.channel("/binary/seen").add_listener(record)

    @server.remote_call("/service/binary/seen")
    def last_seen(session: Any, data: Any) -> dict[str, Any]:
        if not seen:
            raise ServiceError("nothing seen yet")
        return seen[-1]

    @server.remote_call("/service/binary/reverse")
    def reverse(session: Any, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict) or not isinstance(data.get("data"), bytes):
            raise ServiceError("expected binary data")
        return {"data": data["data"][::-1], "last": data.get("last"), "meta": data.get("meta")}

    @server.remote_call("/service/binary/publish")
    def publish(session: Any, data: Any) -> int:
        return server.publish(data["channel"], {"data": bytes.fromhex(data["hex"]), "last": True})


def page_routes() -> list[Any]:
    static = tornado.web.StaticFileHandler
    return [
        (r"/cometd-js/(.*)", static, {"path": str(INTEROP / "node_modules" / "cometd")}),
        (r"/scenarios/(.*)", static, {"path": str(INTEROP / "scenarios")}),
        (r"/(extensions\.html)", static, {"path": str(INTEROP / "browser")}),
    ]


def extensions_server() -> ServerThread:
    """The timestamp and binary server, with the browser's page: started when entered."""
    settings = Settings(
        timestamp_extension=True,
        binary_extension=True,
        max_binary_bytes=MAX_BINARY,
        timeout=2000,
        # Several clients of one browser or Node process share a cookie jar: no browser cookie,
        # so that none of them is told to poll (multiple-clients advice).
        browser_cookie="",
    )
    endpoint = Endpoint(settings)
    install(endpoint.server)
    return ServerThread(endpoint=endpoint, extra_routes=page_routes())


def activity_server(mode: str) -> ServerThread:
    """A server ending sessions idle for INACTIVITY ms in `mode`; connects held 300 ms, so
    that idle clients heartbeat often."""
    settings = Settings(
        activity_max_inactivity=INACTIVITY,
        activity_mode=mode,
        timeout=300,
        browser_cookie="",
    )
    return ServerThread(settings)
