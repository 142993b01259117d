"""permessage-deflate on the standalone server: negotiated without context takeover, frames
compressed once for every subscriber, and inbound messages inflated no further than the
message size limit."""

from __future__ import annotations

import asyncio
import json
import os
import struct
import tracemalloc
import zlib
from typing import Any

import pytest
import tornado.websocket

from ..helpers.rawws import RawWebSocket
from ..helpers.servers import handshake_message, next_frame, serve, ws_url

HANDSHAKE = handshake_message("websocket")


async def joined(url: str, channel: str) -> tuple[tornado.websocket.WebSocketClientConnection, str]:
    """A compressing client (Tornado's), handshaken and subscribed to `channel`."""
    ws = await tornado.websocket.websocket_connect(url, compression_options={})
    await ws.write_message(json.dumps([HANDSHAKE]))
    client_id = json.loads(await next_frame(ws))[0]["clientId"]
    await ws.write_message(
        json.dumps(
            [
                {"channel": "/meta/subscribe", "clientId": client_id, "subscription": channel},
                {
                    "channel": "/meta/connect",
                    "clientId": client_id,
                    "connectionType": "websocket",
                    "advice": {"timeout": 0},
                },
            ]
        )
    )
    pending = {"/meta/subscribe", "/meta/connect"}
    while pending:
        for message in json.loads(await next_frame(ws)):
            pending.discard(message["channel"])
    return ws, client_id


def test_a_compressing_client_negotiates_and_reads_every_message() -> None:
    with serve(embedded=False, max_message_size=64 * 1024) as server:

        async def run() -> None:
            ws, client_id = await joined(ws_url(server), "/z")
            assert ws.headers is not None
            extensions = ws.headers.get("Sec-WebSocket-Extensions", "")
            assert "permessage-deflate" in extensions
            assert "server_no_context_takeover" in extensions
            text = "compress me " * 200
            await ws.write_message(
                json.dumps([{"channel": "/z", "clientId": client_id, "data": {"text": text}}])
            )
            got: list[dict[str, Any]] = []
            while not got:
                got = [m for m in json.loads(await next_frame(ws)) if "data" in m]
            assert got[0]["data"]["text"] == text
            ws.close()

        asyncio.run(run())


@pytest.mark.parametrize("size", [500, 300_000], ids=["small", "large"])
def test_a_broadcast_is_compressed_once_for_all_subscribers(
    monkeypatch: pytest.MonkeyPatch, size: int
) -> None:
    """Large ones too: they were compressed again for each socket (200 compressing
    subscribers of a 1 MiB message kept an honest client waiting 8.3 s), and are written to
    the sockets over several loop turns (WRITE_SHARE)."""
    with serve(embedded=False, max_message_size=64 * 1024) as server:

        async def run() -> int:
            sockets = [await joined(ws_url(server), "/many") for _ in range(20)]
            calls = 0
            real = zlib.compressobj

            def counting(*args: object) -> object:
                nonlocal calls
                calls += 1
                return real(*args)  # type: ignore[arg-type]

            monkeypatch.setattr(zlib, "compressobj", counting)
            server.call(server.endpoint.publish, "/many", {"text": "x" * size})
            for ws, _ in sockets:
                (message,) = json.loads(await next_frame(ws))
                assert message["data"]["text"] == "x" * size
                ws.close()
            return calls

        assert asyncio.run(run()) == 1


def _compressed_frame(payload: bytes) -> bytes:
    """A masked text frame with RSV1 set carrying `payload` deflated (no context takeover)."""
    deflater = zlib.compressobj(9, zlib.DEFLATED, -15)
    body = deflater.compress(payload) + deflater.flush(zlib.Z_SYNC_FLUSH)
    body = body[:-4]
    mask = os.urandom(4)
    first = 0x80 | 0x40 | 0x1  # FIN, RSV1 (compressed), text
    if len(body) < 126:
        header = struct.pack("!BB", first, 0x80 | len(body))
    elif len(body) < 1 << 16:
        header = struct.pack("!BBH", first, 0x80 | 126, len(body))
    else:
        header = struct.pack("!BBQ", first, 0x80 | 127, len(body))
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(body))
    return header + mask + masked


def test_an_inflating_bomb_is_closed_with_1009_not_inflated() -> None:
    with serve(embedded=False, max_message_size=64 * 1024) as server:
        ws = RawWebSocket(
            ws_url(server), headers="Sec-WebSocket-Extensions: permessage-deflate\r\n"
        )
        bomb = b"[" + b" " * (50 * 1024 * 1024) + b"]"  # 50 MiB of JSON, ~50 KiB deflated
        frame = _compressed_frame(bomb)
        del bomb
        tracemalloc.start()
        try:
            ws.sock.sendall(frame)
            opcode, payload = ws.read_frame()
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert opcode == 0x8 and struct.unpack("!H", payload[:2])[0] == 1009
        # Inflated no further than the 64 KiB limit (the whole would have been 50 MiB).
        assert peak < 8 * 1024 * 1024, peak
        # Nobody else noticed: the server still answers.
        other = RawWebSocket(ws_url(server))
        other.send([HANDSHAKE])
        assert other.read()[0]["successful"] is True


def test_compression_can_be_turned_off() -> None:
    with serve(embedded=False, max_message_size=64 * 1024, ws_compression=False) as server:

        async def run() -> None:
            ws = await tornado.websocket.websocket_connect(ws_url(server), compression_options={})
            assert ws.headers is not None and "Sec-WebSocket-Extensions" not in ws.headers
            ws.close()

        asyncio.run(run())
