"""Hostile input from one address, one attack at a time, against a server with its default
settings, with an honest client measuring its round trip meanwhile; on 127.0.0.1 only.

    .venv/bin/python benchmarks/soak.py --attacks               # every attack, this tree
    .venv/bin/python benchmarks/soak.py --attacks --root OLD    # the same against another tree

For each attack: the server's resident memory growth at the attack's peak and one second after
it, the peak growth of the kernel's TCP buffers (machine-wide: both ends of loopback), the
server's CPU seconds, the honest client's round-trip p99 (a WebSocket client publishing
to itself every 20 ms from its own process), and the outcome: whether the attacker's
connection was closed ("yes"/"no"), or for a legitimate big broadcast how many subscribers got
it. Each attack runs against a fresh server, and every loop stops by itself.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import subprocess
import sys
import time
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from servers import cpu_seconds, rss_kib  # noqa: E402

from bayeux.testing import client_frame, free_port, stop_process, wait_for_port  # noqa: E402

HANDSHAKE = {"channel": "/meta/handshake", "version": "1.0"}
HONEST_SCRIPT = """
import asyncio, json, sys, time
import tornado.websocket
async def main(url, seconds):
    ws = await tornado.websocket.websocket_connect(url)
    async def call(*messages):
        await ws.write_message(json.dumps(list(messages)))
    await call({"channel": "/meta/handshake", "version": "1.0",
                "supportedConnectionTypes": ["websocket"]})
    cid = json.loads(await ws.read_message())[0]["clientId"]
    await call({"channel": "/meta/subscribe", "clientId": cid, "subscription": "/honest"},
               {"channel": "/meta/connect", "clientId": cid, "connectionType": "websocket",
                "advice": {"timeout": 0}})
    rtts, end = [], time.monotonic() + seconds
    async def reader():
        while True:
            frame = await ws.read_message()
            if frame is None:
                return
            for m in json.loads(frame):
                if m.get("channel") == "/honest" and "data" in m:
                    rtts.append(time.monotonic() - m["data"]["t"])
                elif m.get("channel") == "/meta/connect":
                    await call({"channel": "/meta/connect", "clientId": cid,
                                "connectionType": "websocket"})
    task = asyncio.ensure_future(reader())
    while time.monotonic() < end:
        await call({"channel": "/honest", "clientId": cid, "data": {"t": time.monotonic()}})
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.5)
    task.cancel()
    rtts.sort()
    p99 = rtts[int(len(rtts) * 0.99)] if rtts else float("inf")
    print(json.dumps({"p99_ms": p99 * 1000, "count": len(rtts)}))
asyncio.run(main(sys.argv[1], float(sys.argv[2])))
"""


@dataclass
class Outcome:
    attack: str
    peak_mib: float
    after_mib: float
    kernel_mib: float
    cpu_s: float
    honest_p99_ms: float
    closed: str

    def line(self) -> str:
        return (
            f"{self.attack:<26} {self.peak_mib:>8.1f} {self.after_mib:>8.1f}"
            f" {self.kernel_mib:>8.1f} {self.cpu_s:>7.2f} {self.honest_p99_ms:>9.0f}"
            f" {self.closed:>10}"
        )


HEADER = (
    f"{'attack':<26} {'peak MiB':>8} {'after':>8} {'kernel':>8} {'CPU s':>7} {'p99 ms':>9}"
    f" {'outcome':>10}"
)


def tcp_kernel_kib() -> int:
    """The kernel's memory in TCP socket buffers, machine-wide (/proc/net/sockstat)."""
    for line in Path("/proc/net/sockstat").read_text().splitlines():
        if line.startswith("TCP:"):
            fields = line.split()
            return int(fields[fields.index("mem") + 1]) * os.sysconf("SC_PAGE_SIZE") // 1024
    return 0


# ------------------------------------------------------------------ raw wire helpers


def ws_key() -> str:
    return base64.b64encode(os.urandom(16)).decode()


def upgrade(port: int, extensions: str = "") -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(
        f"GET /cometd HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {ws_key()}\r\n"
        f"Sec-WebSocket-Version: 13\r\n{extensions}\r\n".encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("upgrade refused")
        head += chunk
    return sock


frame = client_frame


def send_until_closed(sock: socket.socket, data: bytes, total: int) -> bool:
    """Sends `data` repeatedly up to `total` bytes; whether the server closed on us first."""
    sock.settimeout(10)
    sent = 0
    try:
        while sent < total:
            sock.sendall(data)
            sent += len(data)
    except (BrokenPipeError, ConnectionResetError, TimeoutError):
        return True
    # Closed: the server hung up, or (WebSocket) sent its close frame (0x88: the attacker gets
    # no other frames), or answered the request with an error status.
    try:
        sock.settimeout(2)
        while True:
            data = sock.recv(65536)
            if not data or data[:1] == b"\x88" or data.startswith(b"HTTP/1.1 4"):
                return True
    except TimeoutError:
        return False
    except OSError:
        return True


def post(port: int, messages: list[dict]) -> list[dict]:
    body = json.dumps(messages).encode()
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    try:
        sock.sendall(
            b"POST /cometd HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + b"Content-Length: %d\r\n\r\n" % len(body)
            + body
        )
        data = b""
        while True:
            chunk = sock.recv(1 << 20)
            if not chunk:
                break
            data += chunk
            head, _, rest = data.partition(b"\r\n\r\n")
            length = next(
                (
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length")
                ),
                None,
            )
            if length is not None and len(rest) >= length:
                return json.loads(rest[:length]) if rest[:1] == b"[" else []
        return []
    finally:
        sock.close()


def handshake(port: int) -> str | None:
    reply = post(port, [{**HANDSHAKE, "supportedConnectionTypes": ["long-polling"]}])
    return reply[0].get("clientId") if reply and reply[0].get("successful") else None


# ------------------------------------------------------------------------- attacks
# Each takes the port, runs to its end, and returns whether the attacker was cut off
# ("yes"/"no"/"n/a").


def queue_small(port: int) -> str:
    cid = handshake(port)
    if cid is None:
        return "refused"
    post(port, [{"channel": "/meta/subscribe", "clientId": cid, "subscription": "/q"}])
    batch = [{"channel": "/q", "clientId": cid, "data": 1}] * 1000
    for _ in range(61):
        post(port, batch)
    return "n/a"


def subscriptions(port: int) -> str:
    for n in range(10):
        cid = handshake(port)
        if cid is None:
            return "refused"
        for chunk in range(8):
            deep = ["/" + "/".join(f"s{n}c{chunk}i{i}x{j}" for j in range(32)) for i in range(128)]
            post(port, [{"channel": "/meta/subscribe", "clientId": cid, "subscription": deep}])
    return "n/a"


def big_batch(port: int) -> str:
    # 60,000 minimal messages: just under the default 1 MiB body.
    body = json.dumps([{"channel": "/a"}] * 60_000, separators=(",", ":")).encode()
    sock = socket.create_connection(("127.0.0.1", port), timeout=60)
    sock.sendall(
        b"POST /cometd HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
        + body
    )
    status = sock.recv(64).split(b"\r\n", 1)[0]
    while sock.recv(1 << 20):
        pass
    sock.close()
    return status.decode().split(" ", 1)[1][:10]


def head_lines(port: int) -> str:
    closed = []
    for start in (b"GET /cometd?", b"GET /cometd HTTP/1.1\r\nX: ") * 2:
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        sock.sendall(start)
        closed.append(send_until_closed(sock, b"a" * 65536, 28 * 1024 * 1024))
        sock.close()
    return "yes" if all(closed) else "no"


def repeated_headers(port: int) -> str:
    request = b"POST /cometd HTTP/1.1\r\nHost: x\r\n" + b"a: b\r\n" * 20_000 + b"\r\n"
    for _ in range(110):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        send_until_closed(sock, request, len(request))
        sock.close()
    return "n/a"


def chunked(port: int) -> str:
    """A chunk declared 1 GiB: refused at its size line ("early"), or once the bound has
    arrived ("yes"), or never ("no")."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(
        b"POST /cometd HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        b"Content-Type: application/json\r\n\r\n40000000\r\n"
    )
    sock.settimeout(1)
    try:
        early = sock.recv(65536).startswith(b"HTTP/1.1 413")
    except TimeoutError:
        early = False
    if early:
        sock.close()
        return "early"
    closed = send_until_closed(sock, b" " * 65536, 8 * 1024 * 1024)
    sock.close()
    return "yes" if closed else "no"


def ws_fragments(port: int) -> str:
    sock = upgrade(port)
    data = frame(b"[{", 0x1, fin=False) + frame(b"ab", 0x0, fin=False) * 480_000
    closed = send_until_closed(sock, data, len(data))
    sock.close()
    return "yes" if closed else "no"


def ws_empty(port: int) -> str:
    sock = upgrade(port)
    empty = frame(b"", 0x0, fin=False) * 100_000
    sock.sendall(frame(b"[", 0x1, fin=False))
    closed = send_until_closed(sock, empty, 20 * len(empty))
    sock.close()
    return "yes" if closed else "no"


def ws_deflate_tail(port: int) -> str:
    sock = upgrade(port, "Sec-WebSocket-Extensions: permessage-deflate\r\n")
    deflater = zlib.compressobj(6, zlib.DEFLATED, -15)
    finished = deflater.compress(b"[]") + deflater.flush(zlib.Z_FINISH)
    sock.sendall(frame(finished, 0x1, fin=False, rsv1=True))
    closed = send_until_closed(sock, frame(b"\x00" * 60000, 0x0, fin=False), 34 * 1024 * 1024)
    sock.close()
    return "yes" if closed else "no"


def ws_pings(port: int) -> str:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.close()
    sock = upgrade(port)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    closed = send_until_closed(sock, frame(b"p" * 125, 0x9) * 1000, 40 * 1024 * 1024)
    sock.close()
    return "yes" if closed else "no"


class RawSubscriber:
    """A WebSocket subscriber of /big on a plain asyncio stream, from a loopback source address
    of its own choosing (the per-address handshake allowance is 200 per 10 s)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def join(
        cls, port: int, source: str, *, deflate: bool, stall: bool = False
    ) -> RawSubscriber:
        sock = socket.socket()
        if stall:  # before connecting, so that the kernel does not grow the window past it
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.bind((source, 0))
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        reader, writer = await asyncio.open_connection(sock=sock, limit=1 << 22)
        extensions = "Sec-WebSocket-Extensions: permessage-deflate\r\n" if deflate else ""
        writer.write(
            f"GET /cometd HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {ws_key()}\r\n"
            f"Sec-WebSocket-Version: 13\r\n{extensions}\r\n".encode()
        )
        await reader.readuntil(b"\r\n\r\n")
        self = cls(reader, writer)
        self.send([{**HANDSHAKE, "supportedConnectionTypes": ["websocket"]}])
        reply = await self.frame()
        cid = json.loads(reply)[0]["clientId"]
        self.send(
            [
                {"channel": "/meta/subscribe", "clientId": cid, "subscription": "/big"},
                {
                    "channel": "/meta/connect",
                    "clientId": cid,
                    "connectionType": "websocket",
                    "advice": {"timeout": 0},
                },
            ]
        )
        self.client_id = cid
        await self.frame()
        if stall:
            writer.transport.pause_reading()  # from here on, nothing is read
        return self

    def send(self, messages: list[dict]) -> None:
        self.writer.write(frame(json.dumps(messages).encode(), 0x1))

    async def frame(self) -> bytes:
        head = await self.reader.readexactly(2)
        length = head[1] & 0x7F
        if length == 126:
            length = int.from_bytes(await self.reader.readexactly(2), "big")
        elif length == 127:
            length = int.from_bytes(await self.reader.readexactly(8), "big")
        payload = await self.reader.readexactly(length)
        if head[0] & 0x40:  # compressed (permessage-deflate, no context takeover)
            payload = zlib.decompressobj(-15).decompress(payload + b"\x00\x00\xff\xff")
        return payload

    async def until_big(self) -> None:
        while len(await self.frame()) < 100_000:
            pass

    def close(self) -> None:
        self.writer.transport.abort()


def big_broadcast(count: int, *, read: bool, deflate: bool) -> Callable[[int], str]:
    def attack(port: int) -> str:
        async def run() -> str:
            subscribers = []
            for n in range(count):  # 100 per source address, from 127.0.0.2 on
                source = f"127.0.0.{2 + n // 100}"
                stall = not read and n > 0  # the first one publishes
                subscribers.append(
                    await RawSubscriber.join(port, source, deflate=deflate, stall=stall)
                )
            await asyncio.sleep(0.5)
            first = subscribers[0]
            first.send([{"channel": "/big", "clientId": first.client_id, "data": "x" * BIG}])
            if read:
                readers = [asyncio.ensure_future(s.until_big()) for s in subscribers]
                _, pending = await asyncio.wait(readers, timeout=30)
                for task in pending:
                    task.cancel()
                outcome = f"{count - len(pending)}/{count}"
            else:
                await asyncio.sleep(5)  # nobody reads: what piles up is the figure
                outcome = "n/a"
            for s in subscribers:
                s.close()
            return outcome

        return asyncio.run(run())

    return attack


BIG = 1024 * 1024 - 100


ATTACKS: dict[str, Callable[[int], str]] = {
    "queue-61k-small": queue_small,
    "subscriptions-10x1024": subscriptions,
    "batch-60k-messages": big_batch,
    "head-line-unterminated": head_lines,
    "header-repeated-110x": repeated_headers,
    "chunked-huge-chunk": chunked,
    "ws-480k-fragments": ws_fragments,
    "ws-2M-empty-fragments": ws_empty,
    "ws-data-after-deflate": ws_deflate_tail,
    "ws-40MiB-pings-unread": ws_pings,
    "broadcast-1MiB-1000-read": big_broadcast(1000, read=True, deflate=False),
    "broadcast-1MiB-1000-stall": big_broadcast(1000, read=False, deflate=False),
    "broadcast-1MiB-200-deflate": big_broadcast(200, read=True, deflate=True),
}


def run_attack(name: str, attack: Callable[[int], str], root: Path, seconds: float) -> Outcome:
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(root))
    server = subprocess.Popen(
        [sys.executable, "-m", "bayeux", "--port", str(port), "--log-level", "error"],
        cwd=root,
        env=env,
    )
    try:
        wait_for_port(port, server)
        handshake(port)  # warm up
        time.sleep(0.3)
        base_rss = rss_kib(server.pid)
        base_kernel = tcp_kernel_kib()
        base_cpu = cpu_seconds(server.pid)
        honest = subprocess.Popen(
            [sys.executable, "-c", HONEST_SCRIPT, f"ws://127.0.0.1:{port}/cometd", str(seconds)],
            stdout=subprocess.PIPE,
            text=True,
        )
        peak = [base_rss, base_kernel]

        async def watch(done: Awaitable[Any]) -> None:
            while not done.done():  # type: ignore[attr-defined]
                peak[0] = max(peak[0], rss_kib(server.pid))
                peak[1] = max(peak[1], tcp_kernel_kib())
                await asyncio.sleep(0.02)

        async def both() -> str:
            loop = asyncio.get_running_loop()
            future = loop.run_in_executor(None, attack, port)
            watcher = asyncio.ensure_future(watch(future))
            try:
                return await asyncio.wait_for(future, seconds + 60)
            finally:
                await watcher

        time.sleep(0.5)  # the honest client is connected and measuring
        closed = asyncio.run(both())
        cpu = cpu_seconds(server.pid) - base_cpu
        time.sleep(1)
        after = rss_kib(server.pid)
        out, _ = honest.communicate(timeout=seconds + 120)
        p99 = json.loads(out.strip().splitlines()[-1])["p99_ms"] if out.strip() else float("inf")
        return Outcome(
            name,
            (peak[0] - base_rss) / 1024,
            (after - base_rss) / 1024,
            (peak[1] - base_kernel) / 1024,
            cpu,
            p99,
            closed,
        )
    finally:
        stop_process(server)


def run_all(root: Path, only: list[str] | None, seconds: float) -> None:
    print(f"server tree: {root}")
    print(HEADER)
    for name, attack in ATTACKS.items():
        if only and name not in only:
            continue
        try:
            print(run_attack(name, attack, root, seconds).line(), flush=True)
        except Exception as exc:  # one attack's failure must not hide the others' figures
            print(f"{name:<22} failed: {exc!r}", flush=True)
