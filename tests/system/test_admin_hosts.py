"""The admin page embedded beside the endpoint in each host an application uses: Tornado
(`admin.routes`), ASGI alone and mounted in Starlette (`admin.asgi`), aiohttp
(`admin.aiohttp_mount`). The same site answers in each: the page, the API behind its token, a
session disconnected from it, a body over its bound refused."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from bayeux import Endpoint, Settings
from bayeux.testing import AiohttpThread, AsgiThread, ServerThread
from tests.helpers.admin import TOKEN, AdminServer, Swarm, api, until
from tests.helpers.http import request

HOSTS = ["tornado", "tornado-xsrf", "asgi-alone", "starlette-mount", "aiohttp"]


@contextmanager
def hosted(name: str) -> Iterator[tuple[str, str, Endpoint]]:
    """The endpoint's URL, the admin page's URL and the endpoint, served by host `name`."""
    endpoint = Endpoint(Settings(max_handshakes_per_address=-1))
    admin = endpoint.admin(TOKEN)
    if name == "tornado":
        with ServerThread(endpoint=endpoint, extra_routes=admin.routes("/ops/admin")) as server:
            yield server.url, f"{server.origin}/ops/admin", endpoint
        return
    if name == "tornado-xsrf":
        # An application with xsrf_cookies: the API's POSTs need none of its cookie.
        settings = {"xsrf_cookies": True, "cookie_secret": "x" * 32}
        with AdminServer(endpoint, "/ops/admin", tornado_settings=settings) as served:
            yield served.url, served.admin, endpoint
        return
    if name == "asgi-alone":
        with AsgiThread(endpoint=endpoint, app=admin.asgi("/ops/admin")) as server:
            yield "", f"{server.origin}/ops/admin", endpoint
        return
    if name == "starlette-mount":
        from starlette.applications import Starlette

        starlette = Starlette(
            routes=[*admin.asgi("/ops/admin").routes(), *endpoint.asgi().routes("/cometd")]
        )
        with AsgiThread(endpoint=endpoint, app=starlette) as server:
            yield server.url, f"{server.origin}/ops/admin", endpoint
        return
    from aiohttp import web

    app = web.Application()
    endpoint.aiohttp_mount(app, "/cometd")
    admin.aiohttp_mount(app, "/ops/admin")
    with AiohttpThread(endpoint=endpoint, app=app) as server:
        yield server.url, f"{server.origin}/ops/admin", endpoint


@pytest.mark.parametrize("host", HOSTS)
def test_the_page_and_its_api_on_every_host(host: str) -> None:
    with hosted(host) as (url, admin, endpoint):
        page = request(admin, method="GET")
        assert page.status == 200 and b'content="/ops/admin"' in page.body
        assert "default-src 'none'" in page.headers["Content-Security-Policy"]
        assert request(admin + "/admin.js", method="GET").status == 200
        assert api(admin, "overview", token=None).status == 401
        assert api(admin, "overview", token=TOKEN + "x").status == 401
        assert api(admin, "sessions", "limit=1000").status == 400
        too_big = api(admin, "publish", body=b"{" + b" " * 40_000 + b"}")
        assert too_big.status == 413
        if not url:  # the page alone: sessions made by the server
            session = endpoint.server.create_session()
            answer = api(admin, "overview").json()
            assert answer["sessions"] == 1
            assert api(admin, "disconnect", body={"clientId": session.id}).status == 200
            assert session.id not in endpoint.server.sessions
            return
        with Swarm(url, 3) as swarm:
            overview = until(lambda: api(admin, "overview").json()["sessions"] == 3 or None)
            assert overview
            victim = swarm.client_ids[1]
            answer = api(admin, "disconnect", body={"clientId": victim})
            assert answer.status == 200, answer.body
            until(lambda: swarm.stopped(victim))
            assert api(admin, "overview").json()["sessions"] == 2
