"""A session is bound to the browser that made it (its BAYEUX_BROWSER cookie): the clientId
alone, seen in a log or a browser extension, does not let another browser use it."""

from __future__ import annotations

import asyncio
import http.client
import json
import threading
from typing import Any
from urllib.parse import urlsplit

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


def test_the_browser_cookie_carries_the_attributes_set() -> None:
    settings = Settings(
        timeout=2000,
        browser_cookie="SID",
        browser_cookie_same_site="None",
        browser_cookie_secure="on",
        browser_cookie_domain="example.com",
        browser_cookie_max_age=3600,
        browser_cookie_partitioned=True,
    )
    with ServerThread(settings) as server:
        cookie = post_json(server.url, [handshake_message()]).headers["Set-Cookie"]
    attributes = [part.strip() for part in cookie.split(";")]
    assert attributes[0].startswith("SID=") and "HttpOnly" in attributes
    for wanted in ("Secure", "SameSite=None", "Domain=example.com", "Max-Age=3600"):
        assert wanted in attributes, cookie
    assert "Partitioned" in attributes


def test_the_browser_cookie_is_secure_by_default_over_https_only() -> None:
    from bayeux.transports.http import HttpRequest

    settings = Settings()
    plain = HttpRequest("POST", "/cometd").browser_cookie("abc", settings)
    tls = HttpRequest("POST", "/cometd", scheme="https").browser_cookie("abc", settings)
    assert plain == "BAYEUX_BROWSER=abc; Path=/; HttpOnly"
    assert tls == "BAYEUX_BROWSER=abc; Path=/; HttpOnly; Secure"
    off = Settings(browser_cookie_secure="off")
    assert "Secure" not in HttpRequest("POST", "/", scheme="https").browser_cookie("a", off)


@pytest.mark.parametrize(
    "bad",
    [
        {"browser_cookie_same_site": "sometimes"},
        {"browser_cookie_secure": "maybe"},
        {"browser_cookie_same_site": "None", "browser_cookie_secure": "off"},
        {"browser_cookie_domain": "example.com; Path=/evil"},
        {"browser_cookie": "A B"},
        {"browser_cookie_max_age": -2},
    ],
)
def test_browser_cookie_settings_are_checked(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        Settings(**bad)


def test_a_websocket_may_require_its_own_handshake() -> None:
    """With require_handshake_per_connection, a session made by a long-poll (or another socket)
    cannot be used on a WebSocket; one handshaken on the socket can."""
    for required in (False, True):
        settings = Settings(timeout=2000, require_handshake_per_connection=required)
        with ServerThread(settings) as server:
            elsewhere = post_json(server.url, [handshake_message()]).json()[0]["clientId"]

            async def run(url: str, client_id: str) -> tuple[bool, bool]:
                ws = await tornado.websocket.websocket_connect(url)
                publish = {"channel": "/x", "clientId": client_id, "data": 1}
                await ws.write_message(json.dumps([publish]))
                (foreign,) = json.loads(await next_frame(ws, 5))
                await ws.write_message(json.dumps([handshake_message("websocket")]))
                (own,) = json.loads(await next_frame(ws, 5))
                await ws.write_message(json.dumps([{**publish, "clientId": own["clientId"]}]))
                (mine,) = json.loads(await next_frame(ws, 5))
                ws.close()
                return foreign["successful"], mine["successful"]

            foreign, mine = asyncio.run(run(ws_url(server), elsewhere))
            assert mine is True and foreign is (not required)


def test_another_browser_cannot_open_a_sessions_event_stream() -> None:
    with ServerThread(Settings(timeout=2000)) as server:
        answer = post_json(server.url, [handshake_message("eventsource")])
        mine = answer.headers["Set-Cookie"].split(";")[0]
        client_id = answer.json()[0]["clientId"]
        statuses = {}
        for name, cookie in (("other", "BAYEUX_BROWSER=0f0f0f0f0f0f"), ("mine", mine)):
            parts = urlsplit(server.url)
            conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=5)
            conn.request(
                "GET",
                f"{parts.path}/{client_id}",
                headers={"Accept": "text/event-stream", "Cookie": cookie, "Origin": server.origin},
            )
            statuses[name] = conn.getresponse().status
            conn.close()
        assert statuses == {"other": 404, "mine": 200}


def test_a_held_connect_gives_a_cookieless_client_its_browser_cookie() -> None:
    # Two clients without cookies hold a long-poll each, one browser allowed one: each is its
    # own browser, and each reply names the browser made for it.
    with ServerThread(Settings(timeout=500, max_sessions_per_browser=1)) as server:
        ids = [post_json(server.url, [handshake_message()]).json()[0]["clientId"] for _ in "ab"]
        for client_id in ids:
            connect(server.url, client_id, None)  # the first connect returns at once
        held = {
            "channel": "/meta/connect",
            "connectionType": "long-polling",
        }
        answers = []

        def hold(client_id: str) -> None:
            answers.append(post_json(server.url, [{**held, "clientId": client_id}]))

        threads = [threading.Thread(target=hold, args=(client_id,)) for client_id in ids]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(5)
        assert len(answers) == 2
        for answer in answers:
            (reply,) = answer.json()
            assert reply["successful"] is True and "multiple-clients" not in reply["advice"]
            assert answer.headers["Set-Cookie"].startswith("BAYEUX_BROWSER=")
        cookies = {answer.headers["Set-Cookie"].split(";")[0] for answer in answers}
        assert len(cookies) == 2
