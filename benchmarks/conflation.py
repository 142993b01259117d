"""Conflation for slow readers of a price feed: fast and slow subscribers with `/prices/*`
conflated and without, each server alone in its own process on 127.0.0.1.

    .venv/bin/python benchmarks/conflation.py
    .venv/bin/python benchmarks/conflation.py --modes on,off,on:16384 --fast 200
    .venv/bin/python benchmarks/conflation.py --fast 90 --slow-ws 5 --slow-lp 5 --seconds 5

The feed: one publisher (a WebSocket client) sends --rate updates a second for --seconds, in
frames of --burst updates on schedule, over --keys channels /prices/K000 ... (one channel per
key, each update's drawn at random); the data carries a global sequence number. Every
subscriber subscribes to /prices/* and to /bench/role/<kind> (so that the server can tell the
kinds apart). The server is `python -m bayeux` as benchmarks/servers.py starts it, with
`--app benchmarks.conflation_app:conflated` (/prices/* conflated by channel with --backlog
and --after; the API's defaults when not given) or `:plain`; a mode "on:BYTES" also sets its
--socket-send-buffer.

The subscribers:
- fast: --fast WebSocket clients that read whatever arrives at once (raw sockets; the updates of
  a frame are counted without decoding it, so that hundreds of them fit in one process);
- slow-ws: --slow-ws WebSocket clients on a poor link: SO_RCVBUF of --slow-rcvbuf bytes (a
  small TCP window) and at most --slow-read bytes read every --slow-interval seconds (20 KiB/s
  by default, an EDGE-class mobile link, about a third of the feed's bytes). What they do not
  read fills their receive buffer, then the server's socket send buffer (--socket-send-buffer,
  which the kernel doubles); the server then has one frame in flight per socket, and what comes
  meanwhile waits in the session's queue (bayeux/transports/websocket.py), the only place
  where conflation reaches it;
- slow-lp: --slow-lp long-polling clients that wait --poll-interval seconds after each connect
  reply before the next connect (a client on a metered or battery-bound link): between two
  polls, the session's queue collects the feed.
Each subscriber connects from a loopback address of its own (127.1-3.x.y), as clients on the
Internet do: the server bounds the memory held for each client address. Slow clients decode
every update and keep the latest sequence number per channel.

Reported for each mode, in one sitting: the updates the fast clients missed (expected minus
received: conflated, or still on their way when the settling ended, marked *) and the latency
of their frames; for each slow kind, the updates received, how stale
the newest one was when the feed ended, and how many clients held the latest value of every
key by the end (and how long after the feed); the longest queue of each kind (the server
samples them: benchmarks/conflation_app.py) and the server's resident memory; deliveries
(updates the subscribers received) and updates queued (fanned out), per server CPU-second, from
the first publish to the end of the settling; how much of the feed's time the server used a CPU
and waited for one (other processes); and what limited the run. The last line printed is one
JSON object with the figures of every mode.

Everything is bounded: joining by --join-timeout, the feed by --seconds, the settling (until
every client has the last update) by --settle, the whole run by --deadline.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import resource
import socket
import statistics
import sys
import time
import traceback
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import servers  # noqa: E402
from scale_load import HEAD_END, WS_KEY, ws_frame  # noqa: E402
from servers import cpu_seconds, rss_kib  # noqa: E402

from bayeux.testing import free_port, stop_process  # noqa: E402

PRICES = "/prices/"
SEQ_NUMBER = re.compile(rb'"seq":(\d+)')
KINDS = ("fast", "slow-ws", "slow-lp")


class Deadline(Exception):
    """The run's --deadline passed."""


@dataclass
class Feed:
    """What the publisher sent, shared by every client of this process."""

    deadline: float  # monotonic
    sent_at: array = field(default_factory=lambda: array("d"))  # by sequence number
    final: dict[str, int] = field(default_factory=dict)  # channel: its last sequence number
    published: int = 0
    ended: float = 0.0  # monotonic, once the last update is sent
    latencies: array = field(default_factory=lambda: array("d"))  # fast clients, per frame

    def left(self) -> float:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise Deadline
        return remaining


def upgrade_request(port: int) -> bytes:
    return (
        f"GET /cometd HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {WS_KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


def split_frames(buf: bytes) -> tuple[list[tuple[int, bytes]], bytes]:
    """The whole server frames at the start of `buf` (opcode, payload), and what follows."""
    frames = []
    pos = 0
    size = len(buf)
    while size - pos >= 2:
        n = buf[pos + 1] & 0x7F
        start = pos + 2
        if n == 126:
            if size - pos < 4:
                break
            n = int.from_bytes(buf[pos + 2 : pos + 4], "big")
            start = pos + 4
        elif n == 127:
            if size - pos < 10:
                break
            n = int.from_bytes(buf[pos + 2 : pos + 10], "big")
            start = pos + 10
        end = start + n
        if end > size:
            break
        frames.append((buf[pos] & 0x0F, buf[start:end]))
        pos = end
    return frames, buf[pos:]


def handshake(connection_type: str) -> list[dict]:
    return [
        {
            "channel": "/meta/handshake",
            "version": "1.0",
            "supportedConnectionTypes": [connection_type],
        }
    ]


def joining(client_id: str, kind: str, connection_type: str) -> list[dict]:
    """Subscribing to the feed and to the kind's role channel, and the first connect."""
    return [
        {"channel": "/meta/subscribe", "clientId": client_id, "subscription": PRICES + "*"},
        {
            "channel": "/meta/subscribe",
            "clientId": client_id,
            "subscription": f"/bench/role/{kind}",
        },
        {
            "channel": "/meta/connect",
            "clientId": client_id,
            "connectionType": connection_type,
            "advice": {"timeout": 0},
        },
    ]


def connect(client_id: str, connection_type: str) -> list[dict]:
    return [{"channel": "/meta/connect", "clientId": client_id, "connectionType": connection_type}]


class Problems:
    """What went wrong for the clients, by kind and reason (reported, never hidden)."""

    counts: dict[str, int] = {}

    @classmethod
    def add(cls, why: str) -> None:
        cls.counts[why] = cls.counts.get(why, 0) + 1


# ------------------------------------------------------------------------------ fast clients


class FastReader(asyncio.Protocol):
    """A WebSocket subscriber that reads everything as it comes and counts the updates of each
    frame without decoding it (a frame with a meta reply in it is decoded)."""

    def __init__(self, feed: Feed, port: int) -> None:
        self.feed = feed
        self.port = port
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.upgraded = False
        self.client_id = ""
        self.received = 0
        self.newest = -1  # the highest sequence number received
        self.pending_replies = 0
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.closing = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not a subclass
        transport.write(upgrade_request(self.port))

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.ready.done():
            self.ready.set_exception(ConnectionError("closed while joining"))
        elif not self.closing:
            Problems.add("fast: connection lost")

    def send(self, messages: list[dict]) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(ws_frame(orjson.dumps(messages)))

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data if self.buf else data
        if not self.upgraded:
            end = buf.find(HEAD_END)
            if end < 0:
                self.buf = buf
                return
            if not buf.startswith(b"HTTP/1.1 101"):
                self.ready.set_exception(ConnectionError(buf[:40].decode("latin-1")))
                return
            self.upgraded = True
            buf = buf[end + 4 :]
            self.send(handshake("websocket"))
        frames, self.buf = split_frames(buf)
        for opcode, payload in frames:
            if opcode == 1:
                if b'"/meta/' in payload:
                    self.meta(orjson.loads(payload))
                else:
                    self.updates(payload)
            elif opcode == 9 and self.transport is not None:
                self.transport.write(ws_frame(payload, 10))
            elif opcode == 8:
                Problems.add("fast: closed by the server")

    def updates(self, payload: bytes) -> None:
        numbers = SEQ_NUMBER.findall(payload)
        if not numbers:
            return
        self.received += len(numbers)
        # The newest is not always last: a conflated update takes the place of the queued one.
        newest = max(map(int, numbers))
        self.newest = max(self.newest, newest)
        self.feed.latencies.append(time.monotonic() - self.feed.sent_at[newest])

    def meta(self, messages: list[dict]) -> None:
        for m in messages:
            channel = m.get("channel", "")
            if channel.startswith(PRICES):
                self.received += 1
                self.newest = max(self.newest, m["data"]["seq"])
                continue
            if not m.get("successful"):
                if not self.ready.done():
                    self.ready.set_exception(ConnectionError(f"{channel}: {m.get('error')}"))
                else:
                    Problems.add(f"fast: {channel} {m.get('error')}")
                continue
            if channel == "/meta/handshake":
                self.client_id = m["clientId"]
                self.pending_replies = 3
                self.send(joining(self.client_id, "fast", "websocket"))
            elif channel == "/meta/subscribe":
                self.pending_replies -= 1
            elif channel == "/meta/connect":
                self.pending_replies -= 1
                self.send(connect(self.client_id, "websocket"))
            if self.pending_replies == 0 and not self.ready.done():
                self.ready.set_result(None)


# ------------------------------------------------------------------------------ slow clients


@dataclass
class SlowState:
    """What a slow client has seen: the latest sequence number per channel."""

    kind: str
    latest: dict[str, int] = field(default_factory=dict)
    received: int = 0
    newest: int = -1  # the highest sequence number received
    stale_at_end: float = float("nan")  # age of the newest update when the feed ended
    caught_up: float = 0.0  # monotonic: when it first held every key's final value
    ended: str = ""  # why it stopped early, if it did

    def take(self, messages: list[dict], feed: Feed) -> list[dict]:
        """Keeps the updates; returns the other messages."""
        others = []
        latest = self.latest
        for m in messages:
            channel = m.get("channel", "")
            if channel.startswith(PRICES):
                seq = m["data"]["seq"]
                self.received += 1
                if seq > latest.get(channel, -1):
                    latest[channel] = seq
                if seq > self.newest:
                    self.newest = seq
            else:
                others.append(m)
        if feed.ended and not self.caught_up and self.has_final(feed):
            self.caught_up = time.monotonic()
        return others

    def has_final(self, feed: Feed) -> bool:
        latest = self.latest
        return all(latest.get(channel) == seq for channel, seq in feed.final.items())


class SlowSocket:
    """A WebSocket subscriber on a poor link: a small receive buffer, read a little at a time."""

    def __init__(self, feed: Feed, port: int, args: argparse.Namespace, source: str) -> None:
        self.feed = feed
        self.port = port
        self.args = args
        self.state = SlowState("slow-ws")
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # Before connecting: the window the connection advertises follows from it.
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, args.slow_rcvbuf)
        self.sock.setblocking(False)
        self.sock.bind((source, 0))
        self.buf = b""
        self.client_id = ""
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def send(self, messages: list[dict]) -> None:
        await self.write(ws_frame(orjson.dumps(messages)))

    async def write(self, data: bytes) -> None:
        await asyncio.get_running_loop().sock_sendall(self.sock, data)

    async def recv(self, size: int) -> bytes:
        data = await asyncio.wait_for(
            asyncio.get_running_loop().sock_recv(self.sock, size), self.feed.left()
        )
        if not data:
            raise ConnectionError("closed by the server")
        return data

    async def run(self) -> None:
        try:
            await self._run()
        except Deadline:
            pass
        except (ConnectionError, OSError, TimeoutError) as exc:
            self.state.ended = type(exc).__name__ + f": {exc}"
            if not self.ready.done():
                self.ready.set_exception(exc)
        finally:
            self.sock.close()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        await asyncio.wait_for(loop.sock_connect(self.sock, ("127.0.0.1", self.port)), 20)
        await loop.sock_sendall(self.sock, upgrade_request(self.port))
        head = b""
        while HEAD_END not in head:
            head += await self.recv(4096)
        if not head.startswith(b"HTTP/1.1 101"):
            raise ConnectionError(head[:40].decode("latin-1"))
        self.buf = head[head.find(HEAD_END) + 4 :]
        await self.send(handshake("websocket"))
        pending = -1
        while pending != 0:  # joining: read at full speed
            for message in await self.messages(65536):
                if not message.get("successful"):
                    raise ConnectionError(f"{message.get('channel')}: {message.get('error')}")
                if message["channel"] == "/meta/handshake":
                    self.client_id = message["clientId"]
                    pending = 3
                    await self.send(joining(self.client_id, "slow-ws", "websocket"))
                else:
                    pending -= 1
                    if message["channel"] == "/meta/connect":
                        await self.send(connect(self.client_id, "websocket"))
        self.ready.set_result(None)
        interval = self.args.slow_interval
        while True:  # the poor link: at most --slow-read bytes every --slow-interval
            started = loop.time()
            for message in await self.messages(self.args.slow_read):
                if message["channel"] == "/meta/connect" and message.get("successful"):
                    await self.send(connect(self.client_id, "websocket"))
                elif not message.get("successful"):
                    raise ConnectionError(f"{message.get('channel')}: {message.get('error')}")
            await asyncio.sleep(max(0.0, started + interval - loop.time()))

    async def messages(self, size: int) -> list[dict]:
        """What one read completes: the non-update messages (updates are kept)."""
        frames, self.buf = split_frames(self.buf + await self.recv(size))
        out: list[dict] = []
        for opcode, payload in frames:
            if opcode == 1:
                out.extend(self.state.take(orjson.loads(payload), self.feed))
            elif opcode == 9:
                await self.write(ws_frame(payload, 10))
            elif opcode == 8:
                raise ConnectionError("close frame from the server")
        return out


class SlowPoller:
    """A long-polling subscriber that waits --poll-interval seconds between two connects."""

    def __init__(self, feed: Feed, port: int, args: argparse.Namespace, source: str) -> None:
        self.feed = feed
        self.port = port
        self.args = args
        self.source = source
        self.state = SlowState("slow-lp")
        self.client_id = ""
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, messages: list[dict]) -> list[dict]:
        assert self.reader is not None and self.writer is not None
        body = orjson.dumps(messages)
        self.writer.write(
            (
                f"POST /cometd HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode()
            + body
        )
        head = await asyncio.wait_for(self.reader.readuntil(HEAD_END), self.feed.left())
        if not head.startswith(b"HTTP/1.1 200"):
            raise ConnectionError(head[:40].decode("latin-1"))
        length = -1
        for line in head.lower().split(b"\r\n"):
            if line.startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        if length < 0:
            raise ConnectionError("a response without Content-Length")
        body = await asyncio.wait_for(self.reader.readexactly(length), self.feed.left())
        return self.state.take(orjson.loads(body), self.feed)

    async def run(self) -> None:
        try:
            await self._run()
        except Deadline:
            pass
        except (ConnectionError, OSError, TimeoutError, asyncio.IncompleteReadError) as exc:
            self.state.ended = type(exc).__name__ + f": {exc}"
            if not self.ready.done():
                self.ready.set_exception(exc)
        finally:
            if self.writer is not None:
                self.writer.close()

    async def _run(self) -> None:
        self.reader, self.writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", self.port, local_addr=(self.source, 0)), 20
        )
        (reply,) = await self.post(handshake("long-polling"))
        if not reply.get("successful"):
            raise ConnectionError(f"handshake: {reply.get('error')}")
        self.client_id = reply["clientId"]
        for reply in await self.post(joining(self.client_id, "slow-lp", "long-polling")):
            if not reply.get("successful"):
                raise ConnectionError(f"{reply.get('channel')}: {reply.get('error')}")
        self.ready.set_result(None)
        while True:
            await asyncio.sleep(min(self.args.poll_interval, self.feed.left()))
            for reply in await self.post(connect(self.client_id, "long-polling")):
                if not reply.get("successful"):
                    raise ConnectionError(f"connect: {reply.get('error')}")


# ----------------------------------------------------------------------------- the publisher


class Publisher:
    """The feed's publisher, which also asks the server for its queue figures."""

    def __init__(self, feed: Feed, port: int) -> None:
        self.feed = feed
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.client_id = ""
        self.buf = b""
        self.calls: dict[str, asyncio.Future[Any]] = {}
        self.next_id = 0
        self.replies: asyncio.Task[None] | None = None
        self.broken: Exception | None = None

    def send(self, messages: list[dict]) -> None:
        assert self.writer is not None
        self.writer.write(ws_frame(orjson.dumps(messages)))

    async def frames(self) -> list[dict]:
        """The messages of the next whole frames (pings answered)."""
        assert self.reader is not None and self.writer is not None
        out: list[dict] = []
        while not out:
            data = await self.reader.read(65536)
            if not data:
                raise ConnectionError("the publisher's socket closed")
            frames, self.buf = split_frames(self.buf + data)
            for opcode, payload in frames:
                if opcode == 1:
                    out.extend(orjson.loads(payload))
                elif opcode == 9:
                    self.writer.write(ws_frame(payload, 10))
        return out

    async def join(self) -> None:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        self.writer.write(upgrade_request(self.port))
        head = await self.reader.readuntil(HEAD_END)
        if not head.startswith(b"HTTP/1.1 101"):
            raise ConnectionError(head[:40].decode("latin-1"))
        self.send(handshake("websocket"))
        (reply,) = await self.frames()
        self.client_id = reply["clientId"]
        self.send(
            [
                {
                    "channel": "/meta/connect",
                    "clientId": self.client_id,
                    "connectionType": "websocket",
                    "advice": {"timeout": 0},
                }
            ]
        )
        await self.frames()
        self.send(connect(self.client_id, "websocket"))
        self.replies = asyncio.ensure_future(self.read_replies())

    async def read_replies(self) -> None:
        try:
            await self._read_replies()
        except (ConnectionError, OSError) as exc:
            self.broken = exc
            Problems.add(f"publisher: {type(exc).__name__}: {exc}")
            for call in self.calls.values():
                if not call.done():
                    call.set_exception(ConnectionError(f"the publisher's connection: {exc}"))

    async def _read_replies(self) -> None:
        while True:
            for m in await self.frames():
                # A service call is acknowledged first, then answered with its data.
                answered = "data" in m or not m.get("successful", True)
                call = self.calls.pop(m.get("id", ""), None) if answered else None
                if call is not None and not call.done():
                    if m.get("successful", True):
                        call.set_result(m.get("data"))
                    else:
                        call.set_exception(ConnectionError(f"the stats service: {m}"))
                elif m.get("id", "").startswith("stats-"):
                    continue
                elif m.get("channel") == "/meta/connect":
                    self.send(connect(self.client_id, "websocket"))
                elif not m.get("successful", True):
                    Problems.add(f"publisher: {m.get('error')}")

    async def stats(self, data: str | None = None) -> dict:
        if self.broken is not None:
            raise ConnectionError(f"the publisher's connection: {self.broken}")
        self.next_id += 1
        call_id = f"stats-{self.next_id}"
        self.calls[call_id] = asyncio.get_running_loop().create_future()
        self.send(
            [
                {
                    "channel": "/service/bench/stats",
                    "clientId": self.client_id,
                    "id": call_id,
                    "data": data,
                }
            ]
        )
        # A server far behind the feed answers late: as long as the run's deadline allows.
        return await asyncio.wait_for(self.calls[call_id], self.feed.left())

    async def publish(self, args: argparse.Namespace) -> float:
        """The feed, on schedule; how late the latest burst left, at most (seconds)."""
        feed = self.feed
        rng = random.Random(1)
        channels = [f"{PRICES}K{k:03d}" for k in range(args.keys)]
        total = int(args.rate * args.seconds)
        started = time.monotonic()
        late = 0.0
        seq = 0
        while seq < total:
            due = started + seq / args.rate
            now = time.monotonic()
            if due > now:
                await asyncio.sleep(due - now)
            else:
                late = max(late, now - due)
            feed.left()
            burst = []
            now = time.monotonic()
            for _ in range(min(args.burst, total - seq)):
                channel = rng.choice(channels)
                burst.append(
                    {
                        "channel": channel,
                        "clientId": self.client_id,
                        "data": {"seq": seq, "v": round(rng.uniform(10, 1000), 2)},
                    }
                )
                feed.sent_at.append(now)
                feed.final[channel] = seq
                seq += 1
            feed.published = seq
            self.send(burst)
            assert self.writer is not None
            await self.writer.drain()
        feed.ended = time.monotonic()
        return late

    def close(self) -> None:
        if self.replies is not None:
            self.replies.cancel()
        if self.writer is not None:
            self.writer.close()


# ----------------------------------------------------------------------------------- a mode


def source(group: int, index: int) -> str:
    """A loopback address of its own for the `index`-th slow client of a group."""
    return f"127.{group}.{index // 250}.{index % 250 + 1}"


def waited_seconds(pid: int) -> float:
    """How long the process's main thread has waited for a CPU while ready to run (the
    kernel's run-queue delay, /proc/PID/schedstat): what other processes took from it."""
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[1]) / 1e9


def percentile(values: list[float], q: float) -> float:
    return values[int(q * (len(values) - 1))] if values else float("nan")


async def sample_rss(pid: int, figures: dict) -> None:
    while True:
        try:
            figures["rss_max_kib"] = max(figures.get("rss_max_kib", 0), rss_kib(pid))
        except OSError:
            return
        await asyncio.sleep(0.1)


async def server_figures(publisher: Publisher) -> dict | None:
    """The server's queue figures; None (reported as a problem) when it cannot answer: a
    server far behind its input loses the publisher's session (its next connect is handled
    after maxInterval) or connection (a pong behind a ping interval's worth of publishes)."""
    try:
        return await publisher.stats()
    except (ConnectionError, OSError, TimeoutError) as exc:
        Problems.add(f"server figures: {exc}"[:120])
        return None


async def measure(args: argparse.Namespace, port: int, pid: int, deadline: float) -> dict:
    loop = asyncio.get_running_loop()
    feed = Feed(deadline)
    Problems.counts = {}
    # Join: the fast clients in groups, then the slow ones, then the publisher.
    # Every client from a loopback address of its own, as over the Internet: the server bounds
    # the memory of each client address (--max-address-bytes), and what one client holds must
    # not count against the others (nor the publisher's).
    fast: list[FastReader] = []
    for start in range(0, args.fast, 100):
        group = [FastReader(feed, port) for _ in range(start, min(start + 100, args.fast))]
        for index, reader in enumerate(group, start):
            await loop.create_connection(
                lambda r=reader: r, "127.0.0.1", port, local_addr=(source(3, index), 0)
            )
        await asyncio.wait_for(asyncio.gather(*(r.ready for r in group)), args.join_timeout)
        fast.extend(group)
    sockets = [SlowSocket(feed, port, args, source(1, i)) for i in range(args.slow_ws)]
    pollers = [SlowPoller(feed, port, args, source(2, i)) for i in range(args.slow_lp)]
    slow_tasks = [asyncio.ensure_future(s.run()) for s in [*sockets, *pollers]]
    await asyncio.wait_for(
        asyncio.gather(*(s.ready for s in [*sockets, *pollers])), args.join_timeout
    )
    publisher = Publisher(feed, port)
    await publisher.join()
    await publisher.stats("reset")
    figures: dict[str, Any] = {"rss_before_kib": rss_kib(pid)}
    rss = asyncio.ensure_future(sample_rss(pid, figures))
    cpu_before = cpu_seconds(pid)
    waited_before = waited_seconds(pid)
    own_waited_before = waited_seconds(os.getpid())
    usage = resource.getrusage(resource.RUSAGE_SELF)
    own_before = usage.ru_utime + usage.ru_stime
    started = time.monotonic()
    late = await publisher.publish(args)
    feed_seconds = time.monotonic() - started
    feed_cpu = cpu_seconds(pid) - cpu_before
    feed_waited = waited_seconds(pid) - waited_before
    own_waited = waited_seconds(os.getpid()) - own_waited_before
    slow = [s.state for s in [*sockets, *pollers]]
    for state in slow:
        if state.newest >= 0:
            state.stale_at_end = feed.ended - feed.sent_at[state.newest]
        if state.has_final(feed):
            state.caught_up = feed.ended
    at_feed_end = await server_figures(publisher)
    figures["rss_feed_end_kib"] = rss_kib(pid)
    # Settle: until every fast client has everything and every slow one the final values.
    settle_until = min(feed.ended + args.settle, deadline)
    while time.monotonic() < settle_until:
        last = feed.published - 1
        if all(r.newest == last for r in fast) and all(s.caught_up for s in slow):
            break
        await asyncio.sleep(0.05)
    settled = time.monotonic()
    cpu = cpu_seconds(pid) - cpu_before
    usage = resource.getrusage(resource.RUSAGE_SELF)
    own = usage.ru_utime + usage.ru_stime - own_before
    at_end = await server_figures(publisher)
    figures["rss_end_kib"] = rss_kib(pid)
    rss.cancel()
    publisher.close()
    for reader in fast:
        reader.closing = True
        if reader.transport is not None:
            reader.transport.abort()
    for task in slow_tasks:
        task.cancel()
    await asyncio.gather(*slow_tasks, return_exceptions=True)

    wall = settled - started
    received_fast = sum(r.received for r in fast)
    delivered = received_fast + sum(s.received for s in slow)
    latencies = sorted(x * 1000 for x in feed.latencies)
    out: dict[str, Any] = {
        "published": feed.published,
        "feed_seconds": round(feed_seconds, 2),
        "publisher_late_ms": round(late * 1000, 1),
        "settle_seconds": round(settled - feed.ended, 2),
        "fast": {
            "clients": len(fast),
            "lost": feed.published * len(fast) - received_fast,
            "clients_short": sum(1 for r in fast if r.received < feed.published),
            # Whether every fast client had the last update by the end: if not, what they
            # miss may be on its way (the server behind), not only conflated.
            "all_have_last": all(r.newest == feed.published - 1 for r in fast),
            "frame_latency_p50_ms": round(percentile(latencies, 0.5), 1),
            "frame_latency_p99_ms": round(percentile(latencies, 0.99), 1),
        },
    }
    for kind in ("slow-ws", "slow-lp"):
        states = [s for s in slow if s.kind == kind]
        if not states:
            continue
        stale = sorted(s.stale_at_end for s in states if s.stale_at_end == s.stale_at_end)
        caught = sorted(s.caught_up - feed.ended for s in states if s.caught_up)
        out[kind] = {
            "clients": len(states),
            "received": sum(s.received for s in states),
            "received_per_client": round(statistics.mean(s.received for s in states)),
            "stale_at_feed_end_s": [round(percentile(stale, q), 2) for q in (0.5, 1.0)],
            "latest_of_every_key": len(caught),
            "caught_up_after_s": [round(percentile(caught, q), 2) for q in (0.5, 1.0)],
            "stopped": sorted({s.ended for s in states if s.ended}),
        }
    queues = at_feed_end or {}
    counts = at_end or {}
    dropped = counts.get("dropped", {})
    queued = counts.get("deliveries")
    out.update(
        {
            # None: the server could not be asked (see problems).
            "max_queue": queues.get("max_queue"),
            "max_queue_bytes": queues.get("max_queue_bytes"),
            "queue_at_feed_end": queues.get("queue_now"),
            "rss_mib": {
                "before": round(figures["rss_before_kib"] / 1024, 1),
                "max": round(figures.get("rss_max_kib", 0) / 1024, 1),
                "feed_end": round(figures["rss_feed_end_kib"] / 1024, 1),
                "end": round(figures["rss_end_kib"] / 1024, 1),
            },
            "server_cpu_s": round(cpu, 2),
            "server_cpu_share_during_feed": round(feed_cpu / feed_seconds, 2),
            "server_waiting_share_during_feed": round(feed_waited / feed_seconds, 2),
            "loadgen_cpu_share": round(own / wall, 2),
            "loadgen_waiting_share_during_feed": round(own_waited / feed_seconds, 2),
            "wall_s": round(wall, 2),
            "delivered": delivered,
            "delivered_per_cpu_s": round(delivered / max(cpu, 1e-9)),
            "queued": queued,
            "queued_per_cpu_s": None if queued is None else round(queued / max(cpu, 1e-9)),
            "conflated": None if at_end is None else dropped.get("conflated", 0),
            "dropped": {k: v for k, v in dropped.items() if k != "conflated"},
            "ended": counts.get("ended"),
            "problems": dict(Problems.counts),
            "load_average": [round(x, 2) for x in os.getloadavg()],
        }
    )
    out["limit"] = limit(out, args)
    return out


def limit(out: dict, args: argparse.Namespace) -> str:
    """What held the run back, from its figures."""
    reasons = []
    if out["feed_seconds"] > 1.02 * args.seconds:
        reasons.append("the publisher could not keep the feed's pace (the load generator)")
    if out["fast"]["frame_latency_p50_ms"] > 1000:
        reasons.append(
            "the server fell behind the feed (the fast clients' median latency is over a second):"
            f" it used {out['server_cpu_share_during_feed']:.0%} of a core during the feed and"
            f" waited for one {out['server_waiting_share_during_feed']:.0%} of the time"
        )
    elif out["server_cpu_share_during_feed"] >= 0.9:
        reasons.append("the server's CPU (a core, busy throughout the feed)")
    if out["server_waiting_share_during_feed"] >= 0.2:
        reasons.append(
            "other processes on the machine: the server waited for a CPU"
            f" {out['server_waiting_share_during_feed']:.0%} of the feed's time"
        )
    if out["loadgen_cpu_share"] >= 0.9:
        reasons.append("the load generator's CPU (a core, one process)")
    if not reasons:
        return (
            "the feed's pace (neither the server nor the load generator was saturated), and"
            " the slow clients by their links"
        )
    return "; ".join(reasons)


def run_mode(args: argparse.Namespace, mode: str, deadline: float) -> dict:
    """One server, one measure: `mode` is "on" or "off" (conflation), optionally followed by
    ":BYTES", the server's --socket-send-buffer."""
    conflate, _, send_buffer = mode.partition(":")
    port = free_port()
    env_before = {name: os.environ.get(name) for name in ("CONFLATION_BACKLOG", "CONFLATION_AFTER")}
    if args.backlog is not None:
        os.environ["CONFLATION_BACKLOG"] = str(args.backlog)
    if args.after is not None:
        os.environ["CONFLATION_AFTER"] = str(args.after)
    app = "benchmarks.conflation_app:" + ("conflated" if conflate == "on" else "plain")
    extra = ["--app", app]
    if send_buffer:
        extra += ["--socket-send-buffer", send_buffer]
    process = servers.start("bayeux", port, *extra)
    for name, value in env_before.items():
        if value is None:
            os.environ.pop(name, None)
    try:
        if args.uvloop:
            import uvloop

            figures = uvloop.run(measure(args, port, process.pid, deadline))
        else:
            figures = asyncio.run(measure(args, port, process.pid, deadline))
    finally:
        stop_process(process)
    return {"conflation": conflate, "socket_send_buffer": send_buffer or "default", **figures}


def count(value: int | None) -> str:
    return "n/a" if value is None else f"{value:,}"


def heading(result: dict) -> str:
    buffer = result["socket_send_buffer"]
    return f"conflation {result['conflation']}" + ("" if buffer == "default" else f", {buffer} B")


def table(results: list[dict]) -> str:
    rows = [
        (
            "fast clients: updates missed (lost, or late*)",
            lambda r: (
                f"{r['fast']['lost']:,} ("
                f"{r['fast']['lost'] / max(1, r['published'] * r['fast']['clients']):.0%})"
                + ("" if r["fast"]["all_have_last"] else "*")
            ),
        ),
        (
            "fast clients: frame latency p50 / p99 ms",
            lambda r: f"{r['fast']['frame_latency_p50_ms']} / {r['fast']['frame_latency_p99_ms']}",
        ),
    ]
    for kind in ("slow-ws", "slow-lp"):
        if kind not in results[0]:
            continue
        rows += [
            (
                f"{kind}: updates received per client",
                lambda r, k=kind: f"{r[k]['received_per_client']:,} of {r['published']:,}",
            ),
            (
                f"{kind}: staleness at feed end, median / max s",
                lambda r, k=kind: " / ".join(map(str, r[k]["stale_at_feed_end_s"])),
            ),
            (
                f"{kind}: clients with every key's latest value",
                lambda r, k=kind: (
                    f"{r[k]['latest_of_every_key']}/{r[k]['clients']}"
                    + " after "
                    + " / ".join(map(str, r[k]["caught_up_after_s"]))
                    + " s"
                ),
            ),
            (
                f"{kind}: longest queue (messages / KiB)",
                lambda r, k=kind: (
                    "n/a"
                    if r["max_queue"] is None
                    else f"{r['max_queue'].get(k, 0)} / {r['max_queue_bytes'].get(k, 0) / 1024:.0f}"
                ),
            ),
        ]
    rows += [
        (
            "fast: longest queue (messages)",
            lambda r: "n/a" if r["max_queue"] is None else f"{r['max_queue'].get('fast', 0)}",
        ),
        (
            "server RSS MiB: before / max / at the end",
            lambda r: f"{r['rss_mib']['before']} / {r['rss_mib']['max']} / {r['rss_mib']['end']}",
        ),
        ("deliveries per server CPU-s", lambda r: f"{r['delivered_per_cpu_s']:,}"),
        ("queued per server CPU-s", lambda r: count(r["queued_per_cpu_s"])),
        ("updates conflated", lambda r: count(r["conflated"])),
        (
            "sessions the server ended",
            lambda r: (
                "n/a"
                if r["ended"] is None
                else ", ".join(
                    f"{kind} {reason} {n}"
                    for kind, reasons in sorted(r["ended"].items())
                    for reason, n in sorted(reasons.items())
                )
                or "none"
            ),
        ),
        (
            "server CPU share / waiting share during the feed",
            lambda r: (
                f"{r['server_cpu_share_during_feed']} / {r['server_waiting_share_during_feed']}"
            ),
        ),
    ]
    width = max(len(name) for name, _ in rows)
    lines = [f"{'':<{width}}  " + "  ".join(f"{heading(r):>24}" for r in results)]
    for name, value in rows:
        lines.append(f"{name:<{width}}  " + "  ".join(f"{value(r):>24}" for r in results))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--fast", type=int, default=900, help="fast WebSocket subscribers")
    parser.add_argument("--slow-ws", type=int, default=50, help="slow WebSocket subscribers")
    parser.add_argument("--slow-lp", type=int, default=50, help="slow long-polling subscribers")
    parser.add_argument("--rate", type=float, default=1000, help="updates a second")
    parser.add_argument("--keys", type=int, default=100, help="channels (keys) of the feed")
    parser.add_argument("--burst", type=int, default=10, help="updates per publish frame")
    parser.add_argument("--seconds", type=float, default=20, help="how long the feed runs")
    parser.add_argument("--settle", type=float, default=20, help="seconds after the feed")
    parser.add_argument(
        "--backlog", type=int, default=None, help="conflation backlog (default: the API's)"
    )
    parser.add_argument(
        "--after", type=float, default=None, help="conflation's wait, s (default: the API's)"
    )
    parser.add_argument("--slow-rcvbuf", type=int, default=4096, help="SO_RCVBUF, bytes")
    parser.add_argument("--slow-read", type=int, default=2048, help="bytes per read")
    parser.add_argument("--slow-interval", type=float, default=0.1, help="seconds between reads")
    parser.add_argument(
        "--poll-interval", type=float, default=1.0, help="slow long-polling: seconds between"
    )
    parser.add_argument(
        "--modes",
        default="on,off",
        help="measures to make, in order: on or off (conflation), each optionally with"
        " :BYTES, the server's --socket-send-buffer (e.g. on,off,on:16384)",
    )
    parser.add_argument("--join-timeout", type=float, default=60)
    parser.add_argument(
        "--deadline", type=float, default=300, help="seconds the whole run may take"
    )
    parser.add_argument("--no-uvloop", dest="uvloop", action="store_false")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = args.fast + args.slow_ws + args.slow_lp + 256
    if need > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard))
    deadline = time.monotonic() + args.deadline
    modes = args.modes.split(",")
    for mode in modes:
        conflate, _, send_buffer = mode.partition(":")
        if conflate not in ("on", "off") or not (send_buffer.isdigit() or not send_buffer):
            parser.error(f"--modes: {mode!r} is not on or off, with an optional :BYTES")
    print(
        f"{args.rate:g} updates/s over {args.keys} keys for {args.seconds:g} s in frames of"
        f" {args.burst}; {args.fast} fast WebSocket, {args.slow_ws} slow WebSocket"
        f" ({args.slow_read} B every {args.slow_interval:g} s, SO_RCVBUF {args.slow_rcvbuf}),"
        f" {args.slow_lp} long-polling every {args.poll_interval:g} s; python"
        f" {sys.version.split()[0]}, {os.cpu_count()} CPUs",
        flush=True,
    )
    results = []
    failed = {}
    for mode in modes:
        try:
            results.append(run_mode(args, mode, deadline))
        except Exception as exc:  # reported with the others' figures, not instead of them
            traceback.print_exc()
            failed[mode] = f"{type(exc).__name__}: {exc}"
            continue
        print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    if results:
        print(table(results))
    for r in results:
        print(f"{heading(r)}: limited by {r['limit']}")
        if r["problems"]:
            print(f"{heading(r)}: problems {r['problems']}")
    for mode, why in failed.items():
        print(f"mode {mode} failed: {why}")
    print(json.dumps({"args": vars(args), "results": results, "failed": failed}))


if __name__ == "__main__":
    main()
