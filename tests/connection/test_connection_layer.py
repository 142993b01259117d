"""The standalone connection layer on the wire: what HTTP/1.1 and WebSocket clients may do that
a transport test does not (pipelining, chunked bodies, HTTP/1.0, fragmented frames), and the
answers it owes to bad input."""

from __future__ import annotations

import json
import os
import socket
import struct
import time

import pytest

from bayeux import Settings
from bayeux.connection.http1 import DeclaredChunks
from bayeux.testing import ServerThread

from ..helpers.rawws import RawWebSocket
from ..helpers.servers import HANDSHAKE, ws_url


@pytest.fixture
def server():
    with ServerThread(Settings(timeout=2000, max_message_size=4096), embedded=False) as server:
        yield server


def raw(server: ServerThread, data: bytes) -> bytes:
    """Sends `data`, then reads until the server closes or goes quiet for a second."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(data)
        sock.settimeout(1)
        out = b""
        try:
            while chunk := sock.recv(65536):
                out += chunk
        except TimeoutError:
            pass
        return out


def post(body: bytes, *, extra: str = "", version: str = "1.1") -> bytes:
    return (
        f"POST /cometd HTTP/{version}\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n{extra}\r\n"
    ).encode() + body


def replies(response: bytes) -> list:
    """The JSON bodies of every response in `response`, in order."""
    bodies = []
    while response:
        head, _, rest = response.partition(b"\r\n\r\n")
        length = next(
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length")
        )
        bodies.append(json.loads(rest[:length]))
        response = rest[length:]
    return bodies


def test_pipelined_requests_are_answered_in_order(server: ServerThread) -> None:
    messages = [dict(HANDSHAKE, id=str(i)) for i in range(3)]
    data = b"".join(post(json.dumps([m]).encode()) for m in messages)
    answers = replies(raw(server, data))
    assert [a[0]["id"] for a in answers] == ["0", "1", "2"]
    assert all(a[0]["successful"] for a in answers)


def test_a_chunked_body_is_read_whole(server: ServerThread) -> None:
    body = json.dumps([HANDSHAKE]).encode()
    half = len(body) // 2
    chunked = b"%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n" % (
        half,
        body[:half],
        len(body) - half,
        body[half:],
    )
    response = raw(
        server,
        b"POST /cometd HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n" + chunked,
    )
    assert response.startswith(b"HTTP/1.1 200 ")
    assert b'"successful":true' in response


def test_a_chunked_body_past_the_limit_gets_413_and_a_close(server: ServerThread) -> None:
    chunk = b"x" * 3000
    response = raw(
        server,
        b"POST /cometd HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        + (b"%x\r\n%s\r\n" % (len(chunk), chunk)) * 2,
    )
    assert response.startswith(b"HTTP/1.1 413 ")
    assert b"Connection: close" in response


def test_oversized_headers_get_431(server: ServerThread) -> None:
    response = raw(
        server, b"GET /cometd HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n"
    )
    assert response.startswith(b"HTTP/1.1 431 ")


def test_garbage_gets_400_and_a_close(server: ServerThread) -> None:
    response = raw(server, b"\x16\x03\x01 this is not HTTP\r\n\r\n")
    assert response.startswith(b"HTTP/1.1 400 ")
    assert b"Connection: close" in response


def test_http_1_0_gets_its_answer_and_a_close(server: ServerThread) -> None:
    response = raw(server, post(json.dumps([HANDSHAKE]).encode(), version="1.0"))
    assert response.startswith(b"HTTP/1.1 200 ")
    assert b"Connection: close" in response


def test_an_upgrade_to_something_else_is_refused(server: ServerThread) -> None:
    response = raw(
        server, b"GET /cometd HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"
    )
    assert response.startswith(b"HTTP/1.1 400 ")


def test_other_paths_get_404(server: ServerThread) -> None:
    response = raw(server, b"GET /elsewhere HTTP/1.1\r\nHost: x\r\n\r\n")
    assert response.startswith(b"HTTP/1.1 404 ")


def _frame(payload: bytes, opcode: int, fin: bool) -> bytes:
    mask = os.urandom(4)
    first = (0x80 if fin else 0) | opcode
    if len(payload) < 126:
        header = struct.pack("!BB", first, 0x80 | len(payload))
    else:
        header = struct.pack("!BBH", first, 0x80 | 126, len(payload))
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return header + mask + masked


def test_a_fragmented_websocket_message_is_reassembled(server: ServerThread) -> None:
    ws = RawWebSocket(ws_url(server))
    payload = json.dumps([dict(HANDSHAKE, supportedConnectionTypes=["websocket"])]).encode()
    ws.sock.sendall(_frame(payload[:40], 0x1, False) + _frame(payload[40:], 0x0, True))
    assert ws.read()[0]["successful"] is True
    ws.close()


def test_a_fragmented_message_past_the_limit_is_closed_with_1009(server: ServerThread) -> None:
    ws = RawWebSocket(ws_url(server))
    part = b"[" + b" " * 2999
    ws.sock.sendall(_frame(part, 0x1, False) + _frame(b" " * 3000, 0x0, False))
    opcode, payload = ws.read_frame()
    assert opcode == 0x8 and struct.unpack("!H", payload[:2])[0] == 1009


def test_invalid_utf8_is_closed_with_1007(server: ServerThread) -> None:
    ws = RawWebSocket(ws_url(server))
    ws.sock.sendall(_frame(b"[\xff\xfe]" + b" " * 200, 0x1, True))
    opcode, payload = ws.read_frame()
    assert opcode == 0x8 and struct.unpack("!H", payload[:2])[0] == 1007


def test_a_chunked_body_declared_past_the_limit_is_refused_before_its_data(
    server: ServerThread,
) -> None:
    # Only the head and one size line (16 MiB declared against a 4 KiB bound) are sent, the
    # blank line ending the head in one read and the size line in the next: the answer comes
    # at once, without waiting for data that would take seconds to arrive.
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"POST /cometd HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r")
        time.sleep(0.2)
        sock.sendall(b"\n1000")
        time.sleep(0.2)
        started = time.monotonic()
        sock.sendall(b"000\r\n" + b"x" * 100)
        response = sock.recv(65536)
        waited = time.monotonic() - started
    assert response.startswith(b"HTTP/1.1 413 "), response[:80]
    assert waited < 2


def test_declared_chunk_sizes_add_up_whatever_the_reads() -> None:
    body = b"5\r\nhello\r\n1A;name=value\r\n" + b"z" * 26 + b"\r\n0\r\nTrailer: x\r\n\r\n"
    whole = DeclaredChunks()
    assert whole.feed(body) == 5 + 26
    bytewise = DeclaredChunks()
    for i in range(len(body)):
        bytewise.feed(body[i : i + 1])
    assert bytewise.total == 31
    # After the last chunk nothing more counts (the next pipelined request is not a chunk).
    assert whole.feed(b"ffff\r\n") == 31
