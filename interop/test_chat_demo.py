"""The chat demo (examples/chat) used through its page in headless Chromium, as people would."""

from __future__ import annotations

import os

import pytest
import tornado.web

from bayeux import Endpoint
from bayeux.testing import ServerThread
from examples.chat.server import COMETD_JS, HERE, build_server

from .conftest import assert_all_ok, run_node

pytestmark = pytest.mark.browser


def test_chat_demo_in_chromium(tmp_path) -> None:
    static = tornado.web.StaticFileHandler
    routes = [
        (r"/cometd-js/(.*)", static, {"path": str(COMETD_JS)}),
        (r"/()", static, {"path": str(HERE), "default_filename": "index.html"}),
    ]
    with ServerThread(endpoint=Endpoint(server=build_server()), extra_routes=routes) as server:
        shot = os.environ.get("BAYEUX_CHAT_SCREENSHOT", str(tmp_path / "chat.png"))
        results = run_node("chat_ui.mjs", server.origin + "/", shot)
    assert_all_ok(results, 6)
