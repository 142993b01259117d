"""The official CometD JS client in a real browser: Debian's Chromium, headless, driven by
playwright-core, on every transport the client offers. The page loads the npm `cometd` package
as ES modules from interop/node_modules, served beside the endpoint."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import tornado.web

from bayeux import Settings
from bayeux.testing import ServerThread

from .conftest import INTEROP, asgi_host, assert_all_ok, run_node

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
SCENARIOS = 6


@pytest.fixture(
    scope="module", params=["tornado", "fastapi-uvicorn", "starlette-hypercorn", "aiohttp"]
)
def page_server(request):
    """The pages, the client libraries and the endpoint, from one origin: a Tornado
    Application, and the FastAPI, Starlette and aiohttp applications of interop/asgi_apps.py."""
    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"{CHROMIUM} missing: ./run-tests installs Debian's chromium")
    if request.param != "tornado":
        with asgi_host(request.param, Settings(timeout=10000)) as asgi:
            yield asgi
        return
    static = tornado.web.StaticFileHandler
    routes = [
        (r"/cometd-js/(.*)", static, {"path": str(INTEROP / "node_modules" / "cometd")}),
        (r"/scenarios/(.*)", static, {"path": str(INTEROP / "scenarios")}),
        (r"/faye-js/(.*)", static, {"path": str(INTEROP / "node_modules" / "faye" / "client")}),
        (
            r"/(|client\.html|faye\.html)",
            static,
            {"path": str(INTEROP / "browser"), "default_filename": "index.html"},
        ),
    ]
    with ServerThread(Settings(timeout=10000), extra_routes=routes) as server:
        yield server


@pytest.mark.parametrize("transport", ["websocket", "long-polling", "callback-polling"])
def test_cometd_js_client_in_headless_chromium(page_server, transport: str) -> None:
    results = run_node("browser_run.mjs", page_server.origin + "/", transport)
    assert_all_ok(results, SCENARIOS)
    assert all(r["browser"] == "chromium" and r["transport"] == transport for r in results)


FAYE_SCENARIOS = 4


@pytest.mark.parametrize(
    "transport",
    ["websocket", "eventsource", "long-polling", "cross-origin-long-polling", "callback-polling"],
)
def test_faye_client_in_headless_chromium(page_server, transport: str) -> None:
    results = run_node("browser_run.mjs", page_server.origin + "/faye.html", transport)
    assert_all_ok(results, FAYE_SCENARIOS)
