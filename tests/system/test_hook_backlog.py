"""What waits on a hook is charged: a decoded batch (or a WebSocket frame's messages) waiting on
an asynchronous extension, policy, authorizer or service counts against its address's budget
(--max-address-bytes) at its decoded size, and its messages against --max-extension-backlog
(issue 32: one address with 150 long-polls of 950 publishes each, behind a 0.2 s extension,
took a server from 58 to 485 MiB)."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
from typing import Any

import orjson
import pytest

from bayeux import BayeuxServer, Extension, ServerSession, Settings
from bayeux.core.message import batch_from, decoded_cost
from bayeux.core.peer import Peer
from bayeux.testing import start_cli, stop_process

from ..helpers.http import post_json
from ..helpers.rawws import RawWebSocket, masked_frame

HANDSHAKE = {
    "channel": "/meta/handshake",
    "version": "1.0",
    "supportedConnectionTypes": ["long-polling", "websocket"],
}
MIB = 1024 * 1024


class Gate(Extension):
    """Holds every publish until the test opens the gate."""

    def __init__(self) -> None:
        self.open = asyncio.Event()

    async def incoming(self, session: ServerSession | None, message: dict[str, Any]) -> bool:
        if not message["channel"].startswith("/meta/"):
            await self.open.wait()
        return True


def test_a_batch_waiting_on_a_hook_is_charged_to_its_address_until_handled() -> None:
    async def scenario() -> None:
        server = BayeuxServer(Settings(max_address_bytes=8 * MIB, max_extension_backlog=1000))
        gate = Gate()
        server.add_extension(gate)
        peer = Peer(address="10.1.1.1")
        reply = (await server.handle([dict(HANDSHAKE)], peer)).replies[0]
        cid = reply["clientId"]
        batch = [{"channel": "/a", "clientId": cid, "data": "x" * 1000}] * 900
        body = orjson.dumps(batch)
        cost = decoded_cost(body)
        budget = server.budgets.of("10.1.1.1")
        before = budget.used
        waiting = asyncio.ensure_future(
            server.handle(batch_from(orjson.loads(body), 1000), peer, cost=cost)
        )
        await asyncio.sleep(0)
        assert budget.used == before + cost and budget.waiting == 900
        # One more batch of 900 would pass the backlog of 1000 messages: refused whole.
        second = await server.handle(list(batch), peer, cost=cost)
        assert [r["error"] for r in second.replies] == ["503::Too many messages waiting"] * 900
        assert second.replies[0]["advice"] == {"reconnect": "retry", "interval": 1000}
        assert server.stats.refused["batch-waiting"] == 1
        # Another address is not disturbed.
        other = await server.handle([dict(HANDSHAKE)], Peer(address="10.2.2.2"), cost=500)
        assert other.replies[0]["successful"] is True
        gate.open.set()
        outcome = await waiting
        assert all(r["successful"] for r in outcome.replies)
        assert budget.used == before and budget.waiting == 0

    asyncio.run(scenario())


def test_a_batch_whose_decoded_size_passes_the_address_budget_is_refused() -> None:
    async def scenario() -> None:
        # A backlog that the bytes reach first.
        server = BayeuxServer(Settings(max_address_bytes=2 * MIB, max_extension_backlog=10**6))
        gate = Gate()
        server.add_extension(gate)
        peer = Peer(address="10.1.1.1")
        cid = (await server.handle([dict(HANDSHAKE)], peer)).replies[0]["clientId"]
        batch = [{"channel": "/a", "clientId": cid, "data": "x" * 1000}] * 900
        cost = decoded_cost(orjson.dumps(batch))
        assert MIB < cost < 2 * MIB - 4096
        first = asyncio.ensure_future(server.handle(list(batch), peer, cost=cost))
        await asyncio.sleep(0)
        refused = await server.handle(list(batch), peer, cost=cost)
        assert refused.replies[0]["error"] == "503::Too many messages waiting"
        gate.open.set()
        assert all(r["successful"] for r in (await first).replies)
        # Once the first is handled, the same batch fits again.
        again = await server.handle(list(batch), peer, cost=cost)
        assert all(r["successful"] for r in again.replies)

    asyncio.run(scenario())


def _decoding_takes(body: bytes) -> int:
    """What orjson allocates decoding `body` and keeps for the result (tracemalloc)."""
    import tracemalloc

    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        decoded = orjson.loads(body)
        taken = tracemalloc.get_traced_memory()[0] - start
    finally:
        tracemalloc.stop()
    assert decoded
    return taken


@pytest.mark.parametrize(
    "shape",
    [
        [{"channel": "/a/b", "data": "x" * 1024, "id": "1"}] * 900,
        [{"channel": "/a", "data": {f"k{j}": "v" * 20 for j in range(40)}}] * 500,
        [{"channel": "/a", "data": 1, "clientId": "c" * 40}] * 1000,
        [{"channel": "/a", "data": [[[[]]]] * 100}] * 100,
        [{"channel": "/a", "data": [{}] * 100}] * 100,
        [{"channel": "/a", "data": [{"a": 1}] * 100}] * 100,
        [{"channel": "/a", "data": list(range(10**6, 10**6 + 300))}] * 100,
        [{"channel": "/a", "data": [1.5] * 300}] * 100,
        [{"channel": "/a", "data": "\u00e9\U0001f600" * 500}] * 100,
    ],
    ids=[
        "strings",
        "dicts",
        "tiny",
        "nested-lists",
        "empty-dicts",
        "small-dicts",
        "ints",
        "floats",
        "unicode",
    ],
)
def test_the_decoded_cost_is_at_least_what_decoding_takes(shape: list[dict[str, Any]]) -> None:
    body = orjson.dumps(shape)
    taken = _decoding_takes(body)
    assert taken <= decoded_cost(body) <= 3 * taken + len(body), (taken, decoded_cost(body))
    text = body.decode()
    assert decoded_cost(text) >= taken  # a text frame, counted as it is


def _rss(pid: int) -> int:
    with open(f"/proc/{pid}/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _post(port: int, body: bytes, source: str = "127.0.0.1") -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))
    sock.sendall(
        b"POST /cometd HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + b"Content-Length: %d\r\n\r\n" % len(body)
        + body
    )
    return sock


def _ws_send(port: int, payload: bytes) -> socket.socket:
    ws = RawWebSocket(f"http://127.0.0.1:{port}/cometd")
    ws.sock.sendall(masked_frame(payload))
    return ws.sock


@pytest.mark.parametrize("transport", ["long-polling", "websocket"])
def test_slow_hook_attack_from_one_address_stays_within_its_budget(transport: str) -> None:
    """The attack of issue 32 against `python -m bayeux` with a 0.2 s asynchronous incoming
    extension: 150 connections from one address, each with a batch of 950 publishes of 1 KiB.
    The server grows by at most --max-address-bytes (128 MiB) plus 64 MiB, and an honest
    client on another address gets its publish answered in under a second meanwhile."""
    process, url = start_cli(
        "--app",
        "tests.helpers.app_hooks:slow_lookup",
        "--max-interval",
        "60000",
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    port = int(url.split(":")[2].split("/")[0])
    sockets: list[socket.socket] = []
    try:
        cid = post_json(url, [dict(HANDSHAKE)]).json()[0]["clientId"]
        before = _rss(process.pid)
        batch = [{"channel": "/flood", "clientId": cid, "data": "x" * 1000}] * 950
        body = json.dumps(batch).encode()
        assert len(body) < 1024 * 1024  # within --max-message-size
        peak = before
        for _ in range(150):
            try:
                sockets.append(
                    _post(port, body) if transport == "long-polling" else _ws_send(port, body)
                )
            except OSError:
                pass  # refused on accept: the address is over its budget
            peak = max(peak, _rss(process.pid))
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            peak = max(peak, _rss(process.pid))
            time.sleep(0.05)
        # An honest client on another address meanwhile.
        shake = _post(port, json.dumps([HANDSHAKE]).encode(), source="127.0.0.2")
        honest = json.loads(shake.recv(65536).split(b"\r\n\r\n", 1)[1])[0]["clientId"]
        shake.close()
        started = time.monotonic()
        publish = {"channel": "/honest", "clientId": honest, "data": "hi"}
        sock = _post(port, json.dumps([publish]).encode(), source="127.0.0.2")
        answer = sock.recv(65536)
        took = time.monotonic() - started
        sock.close()
        peak = max(peak, _rss(process.pid))
        assert b" 200 " in answer.split(b"\r\n")[0] and b'"successful":true' in answer, answer[:300]
        assert took < 1.0, took
        growth = peak - before
        print(f"{transport}: grew {growth / MIB:.0f} MiB, honest publish answered in {took:.2f} s")
        assert growth < 128 * MIB + 64 * MIB, growth / MIB
    finally:
        for sock in sockets:
            sock.close()
        stop_process(process)


def test_a_lone_batch_larger_than_the_backlog_is_handled() -> None:
    """The backlog bounds what piles up: one batch alone may carry up to --max-batch-messages,
    more than --max-extension-backlog, from an idle address."""

    async def scenario() -> None:
        server = BayeuxServer(Settings(max_extension_backlog=10, max_batch_messages=1000))
        peer = Peer(address="10.1.1.1")
        cid = (await server.handle([dict(HANDSHAKE)], peer)).replies[0]["clientId"]
        batch = [{"channel": "/a", "clientId": cid, "data": n} for n in range(50)]
        outcome = await server.handle(batch, peer, cost=decoded_cost(orjson.dumps(batch)))
        assert all(r["successful"] for r in outcome.replies)
        assert server.budgets.of("10.1.1.1").waiting == 0

    asyncio.run(scenario())


@pytest.mark.parametrize(
    "body",
    [
        json.dumps([{"channel": "/a", "data": "\U0001f600" + "x" * 100_000}]).encode(),  # \ud83d
        json.dumps([{"channel": "/a", "data": "\u0100" + "x" * 100_000}]).encode(),
    ],
    ids=["escaped-astral", "escaped-latin"],
)
def test_escaped_wide_characters_are_costed_as_wide_strings(body: bytes) -> None:
    assert body.isascii()
    taken = _decoding_takes(body)
    assert decoded_cost(body) >= taken, (decoded_cost(body), taken)


def test_a_form_body_is_costed_as_the_json_it_carries() -> None:
    """Faye's cross-origin transport posts `message=<urlencoded JSON>`: its `%7B`s are
    charged as the `{`s they decode to. A 0.6 MiB form body decoding into ~4 MiB is refused by
    a 3 MiB budget, as the same JSON posted as JSON is."""
    from urllib.parse import quote

    from bayeux.testing import ServerThread

    batch = [{"channel": "/a", "data": [{"k": j} for j in range(60)]}] * 300
    text = json.dumps(batch)
    form = ("message=" + quote(text)).encode()
    with ServerThread(Settings(max_address_bytes=3 * MIB)) as server:
        server.call(server.endpoint.server.add_extension, Gate())
        for body, kind in (
            (form, "application/x-www-form-urlencoded"),
            (text.encode(), "application/json"),
        ):
            from ..helpers.http import request as http_request

            answer = http_request(server.url, "POST", body=body, headers={"Content-Type": kind})
            # Refused before it is decoded (HTTP 503), or once decoded (a Bayeux 503).
            if answer.status == 200:
                assert answer.json()[0]["error"] == "503::Too many messages waiting", kind
            else:
                assert answer.status == 503, (kind, answer.status, answer.body)
                assert answer.body == b"too many messages waiting for this address\n"
