"""A session is bound to the browser that made it (its BAYEUX_BROWSER cookie): the clientId
alone, seen in a log or a browser extension, does not let another browser use it."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import tornado.httpclient
import tornado.websocket

from bayeux import Settings
from bayeux.testing import ServerThread

from ..helpers.http import post_json
from ..helpers.servers import handshake_message, next_frame, ws_url

pytestmark = pytest.mark.usefixtures("both_layers")


def connect(url: str, client_id: str, cookie: str | None) -> dict[str, Any]:
    message = {
        "channel": "/meta/connect",
        "clientId": client_id,
        "connectionType": "long-polling",
        "advice": {"timeout": 0},
    }
    headers = {"Cookie": cookie} if cookie is not None else {}
    reply: dict[str, Any] = post_json(url, [message], headers=headers).json()[-1]
    return reply


def test_another_browsers_request_is_refused_and_the_owner_goes_on() -> None:
    with ServerThread(Settings(timeout=2000)) as server:
        answer = post_json(server.url, [handshake_message()])
        mine = answer.headers["Set-Cookie"].split(";")[0]  # given with the handshake
        client_id = answer.json()[0]["clientId"]
        stolen = connect(server.url, client_id, "BAYEUX_BROWSER=0123456789abcdef")
        assert stolen["successful"] is False and stolen["advice"]["reconnect"] == "handshake"
        assert connect(server.url, client_id, mine)["successful"] is True
        # A client sending no browser cookie at all (not a browser) is trusted by default.
        assert connect(server.url, client_id, None)["successful"] is True


def test_cookieless_requests_may_be_refused_too() -> None:
    with ServerThread(Settings(timeout=2000, trust_cookieless_clients=False)) as server:
        answer = post_json(server.url, [handshake_message()])
        mine = answer.headers["Set-Cookie"].split(";")[0]
        client_id = answer.json()[0]["clientId"]
        assert connect(server.url, client_id, None)["successful"] is False
        assert connect(server.url, client_id, mine)["successful"] is True


def test_a_websocket_session_is_bound_to_the_browser_of_its_upgrade() -> None:
    with ServerThread(Settings(timeout=2000)) as server:

        async def run() -> str:
            ws = await tornado.websocket.websocket_connect(
                tornado.httpclient.HTTPRequest(
                    ws_url(server), headers={"Cookie": "BAYEUX_BROWSER=aaaa1111"}
                )
            )
            await ws.write_message(json.dumps([handshake_message("websocket")]))
            (reply,) = json.loads(await next_frame(ws, 5))
            ws.close()
            client_id: str = reply["clientId"]
            return client_id

        client_id = asyncio.run(run())
        assert connect(server.url, client_id, "BAYEUX_BROWSER=bbbb2222")["successful"] is False
        assert connect(server.url, client_id, "BAYEUX_BROWSER=aaaa1111")["successful"] is True


def test_without_browser_cookies_nothing_is_bound() -> None:
    with ServerThread(Settings(timeout=2000, browser_cookie="")) as server:
        answer = post_json(server.url, [handshake_message()])
        assert "Set-Cookie" not in answer.headers
        client_id = answer.json()[0]["clientId"]
        assert connect(server.url, client_id, "BAYEUX_BROWSER=0123456789abcdef")["successful"]
