"""The WebSocket transport over real sockets."""

from __future__ import annotations

import asyncio
import json

import pytest
import tornado.httpclient
import tornado.websocket

from .conftest import handshake, post_json


def ws_url(live) -> str:  # type: ignore[no-untyped-def]
    return live.url.replace("http://", "ws://")


async def exchange(ws, messages, want: int = 1, timeout: float = 5) -> list:  # type: ignore[no-untyped-def]
    """Sends one frame; collects messages until `want` of them arrived."""
    await ws.write_message(json.dumps(messages))
    received: list = []
    while len(received) < want:
        frame = await asyncio.wait_for(ws.read_message(), timeout)
        assert frame is not None, f"closed ({ws.close_code}) after {received}"
        received.extend(json.loads(frame))
    return received


def hs(transport: str = "websocket") -> dict:
    return {
        "channel": "/meta/handshake",
        "version": "1.0",
        "supportedConnectionTypes": [transport],
        "id": "h",
    }


def test_handshake_subscribe_publish_in_frames(live) -> None:  # type: ignore[no-untyped-def]
    async def run() -> None:
        ws = await tornado.websocket.websocket_connect(ws_url(live))
        (reply,) = await exchange(ws, [hs()])
        cid = reply["clientId"]
        replies = await exchange(
            ws,
            [
                {
                    "channel": "/meta/connect",
                    "clientId": cid,
                    "connectionType": "websocket",
                    "id": "c",
                },
                {"channel": "/meta/subscribe", "clientId": cid, "subscription": "/w", "id": "s"},
            ],
            want=2,
        )
        assert {r["id"] for r in replies} == {"c", "s"}
        # A held connect; a publish of two messages reaches us in one frame, before its reply.
        await ws.write_message(
            json.dumps(
                [
                    {
                        "channel": "/meta/connect",
                        "clientId": cid,
                        "connectionType": "websocket",
                        "id": "c2",
                    }
                ]
            )
        )
        got = await exchange(
            ws,
            [
                {"channel": "/w", "clientId": cid, "data": 1, "id": "p1"},
                {"channel": "/w", "clientId": cid, "data": 2, "id": "p2"},
            ],
            want=4,
        )
        deliveries = [m for m in got if "data" in m]
        assert [m["data"] for m in deliveries] == [1, 2]
        assert all("clientId" not in m for m in deliveries)
        ws.close()

    asyncio.run(run())


def test_empty_array_is_a_keepalive(live) -> None:  # type: ignore[no-untyped-def]
    async def run() -> None:
        ws = await tornado.websocket.websocket_connect(ws_url(live))
        await ws.write_message("[]")
        (reply,) = await exchange(ws, [hs()])
        assert reply["successful"] is True
        ws.close()

    asyncio.run(run())


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("{not json", 1007),
        ("[1, 2]", 1007),
        ('[{"no": "channel"}]', 1007),
        (b"\x93\x01\x02\x03", 1003),
        ("[" + '"x",' * 40000 + '"x"]', 1009),
    ],
)
def test_bad_frames_close_with_a_clear_code(live, frame, code) -> None:  # type: ignore[no-untyped-def]
    async def run() -> None:
        ws = await tornado.websocket.websocket_connect(ws_url(live))
        await ws.write_message(frame, binary=isinstance(frame, bytes))
        assert await asyncio.wait_for(ws.read_message(), 5) is None
        assert ws.close_code == code
        # The server still serves everyone else.
        other = await tornado.websocket.websocket_connect(ws_url(live))
        (reply,) = await exchange(other, [hs()])
        assert reply["successful"] is True
        other.close()

    asyncio.run(run())


def test_long_polling_session_continues_over_websocket(live) -> None:  # type: ignore[no-untyped-def]
    """aiocometd handshakes over HTTP, then connects over a new WebSocket with that clientId."""
    client_id = handshake(live.url)
    post_json(
        live.url, [{"channel": "/meta/subscribe", "clientId": client_id, "subscription": "/x"}]
    )
    publisher = handshake(live.url)

    async def run() -> None:
        ws = await tornado.websocket.websocket_connect(ws_url(live))
        (reply,) = await exchange(
            ws,
            [
                {
                    "channel": "/meta/connect",
                    "clientId": client_id,
                    "connectionType": "websocket",
                    "id": "1",
                }
            ],
        )
        assert reply["successful"] is True
        await ws.write_message(
            json.dumps(
                [
                    {
                        "channel": "/meta/connect",
                        "clientId": client_id,
                        "connectionType": "websocket",
                        "id": "2",
                    }
                ]
            )
        )
        await asyncio.get_running_loop().run_in_executor(
            None,
            lambda: post_json(live.url, [{"channel": "/x", "clientId": publisher, "data": "hi"}]),
        )
        frame = json.loads(await asyncio.wait_for(ws.read_message(), 5))
        assert frame == [{"channel": "/x", "data": "hi"}]
        ws.close()

    asyncio.run(run())


def test_dropped_socket_keeps_session_and_queue_in_order(live) -> None:  # type: ignore[no-untyped-def]
    publisher = handshake(live.url)

    async def run() -> None:
        ws = await tornado.websocket.websocket_connect(ws_url(live))
        (reply,) = await exchange(ws, [hs()])
        cid = reply["clientId"]
        await exchange(
            ws, [{"channel": "/meta/subscribe", "clientId": cid, "subscription": "/d", "id": "s"}]
        )
        await exchange(
            ws,
            [
                {
                    "channel": "/meta/connect",
                    "clientId": cid,
                    "connectionType": "websocket",
                    "id": "c",
                }
            ],
        )
        await ws.write_message(
            json.dumps(
                [
                    {
                        "channel": "/meta/connect",
                        "clientId": cid,
                        "connectionType": "websocket",
                        "id": "c2",
                    }
                ]
            )
        )
        await asyncio.sleep(0.1)
        ws.close()
        await asyncio.sleep(0.2)
        loop = asyncio.get_running_loop()
        for i in range(20):
            await loop.run_in_executor(
                None,
                lambda i=i: post_json(
                    live.url, [{"channel": "/d", "clientId": publisher, "data": i}]
                ),
            )
        again = await tornado.websocket.websocket_connect(ws_url(live))
        got = await exchange(
            again,
            [
                {
                    "channel": "/meta/connect",
                    "clientId": cid,
                    "connectionType": "websocket",
                    "id": "c3",
                    "advice": {"timeout": 0},
                }
            ],
            want=21,
        )
        assert [m["data"] for m in got if "data" in m] == list(range(20))
        assert got[-1]["id"] == "c3" and got[-1]["successful"] is True
        again.close()

    asyncio.run(run())


def test_origin_check(live) -> None:  # type: ignore[no-untyped-def]
    async def run() -> None:
        request = tornado.httpclient.HTTPRequest(
            ws_url(live), headers={"Origin": "http://evil.example"}
        )
        with pytest.raises(tornado.httpclient.HTTPClientError) as info:
            await tornado.websocket.websocket_connect(request)
        assert info.value.code == 403
        request = tornado.httpclient.HTTPRequest(
            ws_url(live), headers={"Origin": "http://good.example"}
        )
        ws = await tornado.websocket.websocket_connect(request)
        ws.close()

    asyncio.run(run())
