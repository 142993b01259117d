"""Asynchronous extensions through the real transports: a connect reply waits for them, and
what they decide reaches the client in order."""

from __future__ import annotations

import asyncio
import threading

import pytest

from bayeux import Extension

from ..helpers.http import handshake, post_json
from ..helpers.rawws import RawWebSocket
from ..helpers.servers import handshake_message, serve, ws_url

pytestmark = pytest.mark.usefixtures("both_layers")


class Tagging(Extension):
    """Looks something up (awaits) before letting a message in or out, and tags what it lets
    out; odd numbers take longer, so a reorder would show."""

    async def incoming(self, session, message):
        await asyncio.sleep(0.001)
        return message.get("data") != "forbidden"

    async def outgoing(self, session, message):
        data = message.get("data")
        await asyncio.sleep(0.02 if isinstance(data, int) and data % 2 else 0.001)
        message.setdefault("ext", {})["tag"] = message["channel"]
        return True


def test_long_polling_connect_reply_waits_for_async_extensions() -> None:
    with serve() as server:
        server.call(server.endpoint.server.add_extension, Tagging())
        cid = handshake(server.url)
        connect = {"channel": "/meta/connect", "clientId": cid, "connectionType": "long-polling"}
        post_json(server.url, [connect])
        reply = post_json(
            server.url,
            [{"channel": "/meta/subscribe", "clientId": cid, "subscription": "/t"}],
        ).json()
        assert reply[0]["successful"] is True and reply[0]["ext"] == {"tag": "/meta/subscribe"}
        denied = post_json(server.url, [{"channel": "/t", "clientId": cid, "data": "forbidden"}])
        assert denied.json()[0]["error"] == "404:/t:Message deleted"
        got: list = []
        poll = threading.Thread(target=lambda: got.extend(post_json(server.url, [connect]).json()))
        poll.start()
        for n in range(4):
            server.call(server.endpoint.server.publish, "/t", n)
        poll.join(10)
        # Deliveries first, in publish order, each tagged; then the tagged connect reply.
        while len([m for m in got if m["channel"] == "/t"]) < 4:
            got.extend(post_json(server.url, [connect]).json())
        data = [m for m in got if m["channel"] == "/t"]
        assert [m["data"] for m in data] == [0, 1, 2, 3]
        assert all(m["ext"] == {"tag": "/t"} for m in data)
        connect_replies = [m for m in got if m["channel"] == "/meta/connect"]
        assert connect_replies
        assert all(m["ext"] == {"tag": "/meta/connect"} for m in connect_replies)


def test_websocket_connect_reply_waits_for_async_extensions() -> None:
    with serve() as server:
        server.call(server.endpoint.server.add_extension, Tagging())
        ws = RawWebSocket(ws_url(server))
        try:
            ws.send([handshake_message("websocket")])
            cid = ws.read()[0]["clientId"]
            connect = {"channel": "/meta/connect", "clientId": cid, "connectionType": "websocket"}
            subscribe = {"channel": "/meta/subscribe", "clientId": cid, "subscription": "/w"}
            ws.send([connect, subscribe])
            first: list = []
            while not any(m["channel"] == "/meta/subscribe" for m in first):
                first.extend(ws.read())
            ws.send([connect])  # held
            for n in range(4):
                server.call(server.endpoint.server.publish, "/w", n)
            got: list = []
            while len([m for m in got if m["channel"] == "/w"]) < 4:
                got.extend(ws.read())
            assert [m["data"] for m in got if m["channel"] == "/w"] == [0, 1, 2, 3]
            while not any(m["channel"] == "/meta/connect" for m in got):
                got.extend(ws.read())  # the held connect, answered at its timeout
            assert all(m["ext"] == {"tag": m["channel"]} for m in first + got)
        finally:
            ws.close()
