"""The WebSocket transport over real sockets."""

from __future__ import annotations

import asyncio
import functools
import json
import time

import pytest
import tornado.httpclient
import tornado.websocket

from bayeux import Ended

from ..helpers.http import handshake, post_json
from ..helpers.rawws import masked_frame
from ..helpers.servers import next_frame, ws_url

# Every case runs over the standalone connection layer and over Tornado embedding.
pytestmark = pytest.mark.usefixtures("both_layers")


async def exchange(ws, messages, want: int = 1, timeout: float = 5) -> list:
    """Sends one frame; collects messages until `want` of them arrived."""
    await ws.write_message(json.dumps(messages))
    received: list = []
    while len(received) < want:
        frame = await asyncio.wait_for(ws.read_message(), timeout)
        assert frame is not None, f"closed ({ws.close_code}) after {received}"
        received.extend(json.loads(frame))
    return received


def connect_msg(client_id: str, **fields: object) -> dict:
    """A /meta/connect over WebSocket for `client_id`, with `fields` (id, advice, ext) added."""
    return {
        "channel": "/meta/connect",
        "clientId": client_id,
        "connectionType": "websocket",
        **fields,
    }


def hs(transport: str = "websocket") -> dict:
    return {
        "channel": "/meta/handshake",
        "version": "1.0",
        "supportedConnectionTypes": [transport],
        "id": "h",
    }


def test_handshake_subscribe_publish_in_frames(live) -> None:
    async def run() -> None:
        ws = await tornado.websocket.websocket_connect(ws_url(live))
        (reply,) = await exchange(ws, [hs()])
        cid = reply["clientId"]
        replies = await exchange(
            ws,
            [
                connect_msg(cid, id="c"),
                {"channel": "/meta/subscribe", "clientId": cid, "subscription": "/w", "id": "s"},
            ],
            want=2,
        )
        assert {r["id"] for r in replies} == {"c", "s"}
        # A held connect; a publish of two messages reaches us in one frame, before its reply.
        await ws.write_message(json.dumps([connect_msg(cid, id="c2")]))
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


def test_empty_array_is_a_keepalive(live) -> None:
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
def test_bad_frames_close_with_a_clear_code(live, frame, code) -> None:
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


def test_long_polling_session_continues_over_websocket(live) -> None:
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
            [connect_msg(client_id, id="1")],
        )
        assert reply["successful"] is True
        await ws.write_message(json.dumps([connect_msg(client_id, id="2")]))
        await asyncio.get_running_loop().run_in_executor(
            None,
            lambda: post_json(live.url, [{"channel": "/x", "clientId": publisher, "data": "hi"}]),
        )
        frame = json.loads(await next_frame(ws, 5))
        assert frame == [{"channel": "/x", "data": "hi"}]
        ws.close()

    asyncio.run(run())


def test_dropped_socket_keeps_session_and_queue_in_order(live) -> None:
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
            [connect_msg(cid, id="c")],
        )
        await ws.write_message(json.dumps([connect_msg(cid, id="c2")]))
        await asyncio.sleep(0.1)
        ws.close()
        await asyncio.sleep(0.2)
        loop = asyncio.get_running_loop()
        for i in range(20):
            await loop.run_in_executor(
                None,
                functools.partial(
                    post_json, live.url, [{"channel": "/d", "clientId": publisher, "data": i}]
                ),
            )
        again = await tornado.websocket.websocket_connect(ws_url(live))
        got = await exchange(
            again,
            [connect_msg(cid, id="c3", advice={"timeout": 0})],
            want=21,
        )
        assert [m["data"] for m in got if "data" in m] == list(range(20))
        assert got[-1]["id"] == "c3" and got[-1]["successful"] is True
        again.close()

    asyncio.run(run())


def test_origin_check(live) -> None:
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


def test_msgpack_subprotocol_binary_frames(live) -> None:
    import msgpack

    async def run() -> None:
        ws = await tornado.websocket.websocket_connect(
            ws_url(live), subprotocols=["bayeux-msgpack"]
        )
        assert ws.selected_subprotocol == "bayeux-msgpack"
        await ws.write_message(msgpack.packb([hs()]), binary=True)
        frame = await next_frame(ws, 5)
        assert isinstance(frame, bytes)
        (reply,) = msgpack.unpackb(frame)
        cid = reply["clientId"]
        batch = [
            {"channel": "/meta/subscribe", "clientId": cid, "subscription": "/m", "id": "s"},
            connect_msg(cid, id="c"),
            {"channel": "/m", "clientId": cid, "data": {"n": 1, "list": [1.5, None]}, "id": "p"},
            # Raw bytes have no JSON form for JSON subscribers: refused, clearly, to the sender.
            {"channel": "/m", "clientId": cid, "data": {"bin": b"\x00\x01"}, "id": "b"},
        ]
        await ws.write_message(msgpack.packb(batch, use_bin_type=True), binary=True)
        received: list = []
        while len(received) < 5:
            received.extend(msgpack.unpackb(await next_frame(ws, 5)))
        (delivery,) = [m for m in received if "data" in m]
        assert delivery == {"channel": "/m", "data": {"n": 1, "list": [1.5, None]}}
        (refused,) = [m for m in received if m.get("id") == "b"]
        assert refused["successful"] is False
        assert refused["error"] == "400:data:Not representable as JSON"
        # Text frames keep working as JSON on the same socket.
        await ws.write_message(json.dumps([]))
        await ws.write_message(b"\xc1", binary=True)  # 0xc1 is never valid msgpack
        assert await asyncio.wait_for(ws.read_message(), 5) is None
        assert ws.close_code == 1007

    asyncio.run(run())


def test_stalled_reader_does_not_hold_back_other_subscribers(live) -> None:
    import base64
    import os
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(live.url)
    stalled = socket.create_connection((parts.hostname, parts.port), 5)
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    key = base64.b64encode(os.urandom(16)).decode()
    stalled.sendall(
        f"GET {parts.path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    reader = stalled.makefile("rb")
    while reader.readline() not in (b"\r\n", b""):
        pass
    stalled.sendall(masked_frame(json.dumps([hs()]).encode()))
    first = reader.read(2)  # a short server frame: 2-byte header, then the JSON
    length = first[1] & 0x7F
    if length == 126:
        length = int.from_bytes(reader.read(2), "big")
    client_id = json.loads(reader.read(length))[0]["clientId"]
    stalled.sendall(
        masked_frame(
            json.dumps(
                [
                    {
                        "channel": "/meta/subscribe",
                        "clientId": client_id,
                        "subscription": "/firehose",
                    },
                    connect_msg(client_id),
                ]
            ).encode()
        )
    )
    time.sleep(0.3)  # from here on the stalled client reads nothing

    payload = "x" * 65536
    count = 300  # ~19 MiB: far more than the loopback socket buffers hold

    async def run() -> list:
        ws = await tornado.websocket.websocket_connect(ws_url(live))
        (reply,) = await exchange(ws, [hs()])
        cid = reply["clientId"]
        await exchange(
            ws,
            [
                {
                    "channel": "/meta/subscribe",
                    "clientId": cid,
                    "subscription": "/firehose",
                    "id": "s",
                },
                connect_msg(cid, id="c"),
            ],
            want=2,
        )
        await ws.write_message(json.dumps([connect_msg(cid, id="c2")]))
        loop = asyncio.get_running_loop()
        got: list = []
        for i in range(count):
            await loop.run_in_executor(
                None, live.call, live.endpoint.publish, "/firehose", {"i": i, "p": payload}
            )
            queued.append(live.call(lambda: session.queued_bytes()))
            while len(got) < i - 8:  # this subscriber keeps up
                frame = await next_frame(ws, 10)
                got.extend(m["data"]["i"] for m in json.loads(frame) if "data" in m)
        while len(got) < count:
            frame = await next_frame(ws, 10)
            got.extend(m["data"]["i"] for m in json.loads(frame) if "data" in m)
        ws.close()
        return got

    session = live.endpoint.server.sessions[client_id]
    queued: list[int] = []
    assert asyncio.run(run()) == list(range(count))
    # The stalled client's backlog waited in its session queue, not in socket write buffers,
    # up to max_queue_bytes; then the default policy ended the session (the client will know
    # it missed messages when it handshakes again).
    limit = live.endpoint.settings.max_queue_bytes
    assert limit // 2 < max(queued) <= limit
    assert session.ended is Ended.QUEUE_FULL
    stalled.close()


def test_frames_are_capped_but_never_split_a_message() -> None:
    from bayeux.transports.websocket import _frames

    items = [b"a" * 40, b"b" * 40, b"c" * 200, b"d" * 10]
    assert _frames(items, 100) == [[b"a" * 40, b"b" * 40], [b"c" * 200], [b"d" * 10]]
    assert _frames([], 100) == []


def test_ack_session_gets_messages_only_in_connect_replies(live) -> None:
    publisher = handshake(live.url)

    async def run() -> None:
        ws = await tornado.websocket.websocket_connect(ws_url(live))
        (reply,) = await exchange(ws, [{**hs(), "ext": {"ack": True}}])
        assert reply["ext"]["ack"] is True
        cid = reply["clientId"]
        await exchange(
            ws, [{"channel": "/meta/subscribe", "clientId": cid, "subscription": "/k", "id": "s"}]
        )
        (first,) = await exchange(
            ws,
            [connect_msg(cid, id="c1", ext={"ack": 0})],
        )
        batch = first["ext"]["ack"]
        await ws.write_message(json.dumps([connect_msg(cid, id="c2", ext={"ack": batch})]))
        await asyncio.sleep(0.2)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(
            None,
            lambda: post_json(live.url, [{"channel": "/k", "clientId": publisher, "data": "m"}]),
        )
        frame = json.loads(await next_frame(ws, 5))
        # The held connect is released by the message and carries it, with the next batch id.
        assert frame[0] == {"channel": "/k", "data": "m"}
        assert frame[-1]["id"] == "c2" and frame[-1]["ext"]["ack"] == batch + 1
        ws.close()

    asyncio.run(run())


def test_shutdown_answers_held_websocket_connects(live) -> None:
    async def run() -> None:
        ws = await tornado.websocket.websocket_connect(ws_url(live))
        (reply,) = await exchange(ws, [hs()])
        cid = reply["clientId"]
        connect = connect_msg(cid)
        await exchange(ws, [{**connect, "id": "c1"}])
        await ws.write_message(json.dumps([{**connect, "id": "c2"}]))
        await asyncio.sleep(0.2)
        live.call(live.endpoint.server.shutdown)
        # At once, not at the connect's timeout (2 s in this fixture).
        (released,) = json.loads(await next_frame(ws, 0.5))
        assert released["id"] == "c2" and released["successful"] is True
        assert released["advice"]["interval"] == live.endpoint.settings.multi_session_interval
        ws.close()

    asyncio.run(run())
