"""The endpoint mounted in a FastAPI application under uvicorn and in a Starlette one under
hypercorn (interop/asgi_apps.py): the application's own route answers beside it, and the
endpoint answers at its path and below it. The clients (CometD JS and Faye in Node and in
Chromium, aiocometd-ng) run against both through interop/conftest.py's hosts."""

from __future__ import annotations

import pytest

from bayeux import Settings
from tests.helpers.http import handshake, request

from .conftest import asgi_host


@pytest.mark.parametrize("host", ["fastapi-uvicorn", "starlette-hypercorn", "aiohttp"])
def test_the_applications_own_route_and_the_endpoint_side_by_side(host: str) -> None:
    with asgi_host(host, Settings()) as server:
        hello = request(server.origin + "/api/hello", "GET")
        assert hello.status == 200 and hello.json()["hello"].startswith("from ")
        assert handshake(server.url)  # at /cometd itself
        assert handshake(server.url + "/")  # and below it
        assert handshake(server.url + "/handshake")  # a message-type sub-path
