"""One load-generator process of benchmarks/scale.py: holds up to ~19,000 Bayeux clients on raw
sockets (asyncio on uvloop, a hand-written HTTP/1.1 and WebSocket client: a few hundred bytes
of Python state per connection), from loopback source addresses 127.0.<--subnet>.2 and up,
--per-address clients each (the server bounds what one address may hold: max_address_bytes),
and answers the coordinator's commands on stdin with JSON lines on stdout.

    scale_load.py --transport websocket --count 16000 --subnet 1 --port 8080 [--port ...]

Each client handshakes, subscribes to the benchmark channel and keeps a /meta/connect held:
over WebSocket, on its socket, sending the next connect as each reply comes, and answering
pings; over long-polling, a parked POST on its own keep-alive connection, polled again as
each reply comes. Broadcasts on the channel carry a sequence number: the arrival time of each
is kept per sequence number for the coordinator.

Commands (one JSON object a line): {"cmd": "connect"}, {"cmd": "count", "seq": n},
{"cmd": "times", "seq": n}, {"cmd": "stats"}, {"cmd": "quit"}. Every loop is bounded: the
connect phase by --setup-timeout, the process by --deadline.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import resource
import socket
import struct
import sys
import time

import orjson

CHANNEL = "/scale"
WS_KEY = base64.b64encode(b"bayeux-scale-key").decode()
MASK = b"\x00\x00\x00\x00"  # a zero mask: the payload goes out as it is (RFC 6455 allows it)
HEAD_END = b"\r\n\r\n"


def ws_frame(payload: bytes, opcode: int = 1) -> bytes:
    """A masked client frame."""
    n = len(payload)
    if n < 126:
        head = bytes((0x80 | opcode, 0x80 | n))
    elif n < 65536:
        head = bytes((0x80 | opcode, 0x80 | 126)) + struct.pack("!H", n)
    else:
        head = bytes((0x80 | opcode, 0x80 | 127)) + struct.pack("!Q", n)
    return head + MASK + payload


class Generator:
    """What the clients of this process share: figures, settings and the arrival times."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.ports: list[int] = args.port
        self.path = args.path
        self.arrivals: dict[int, list[float]] = {}
        self.ready = 0
        self.opened = 0
        self.closed = 0
        self.rehandshakes = 0
        self.failures: dict[str, int] = {}
        self.connects = 0
        self.pings = 0
        self.clients: list[Client] = []

    def arrived(self, seq: int, now: float) -> None:
        times = self.arrivals.get(seq)
        if times is None:
            times = self.arrivals[seq] = []
        times.append(now)

    def failed(self, why: str) -> None:
        self.failures[why] = self.failures.get(why, 0) + 1


class Client(asyncio.Protocol):
    """One Bayeux client on one connection: WebSocket, or long-polling with a parked connect."""

    __slots__ = (
        "gen", "port", "transport", "buf", "state", "client_id", "ready", "next_id", "cookie",
    )  # fmt: skip

    websocket = True

    def __init__(self, gen: Generator, port: int) -> None:
        self.gen = gen
        self.port = port
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.state = 0  # 0 opening, 1 handshaking, 2 subscribing, 3 connected, 4 closed
        self.client_id = ""
        self.ready: asyncio.Future[None] | None = None
        self.next_id = 0
        # The browser cookie a server sets (cometd-nodejs-server finds sessions by it).
        self.cookie = ""

    # ---------------------------------------------------------------- what both share

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  (uvloop's is no subclass)
        self.gen.opened += 1

    def connection_lost(self, exc: Exception | None) -> None:
        if self.state != 4:
            self.gen.closed += 1
            if self.state == 3:
                self.gen.ready -= 1
        self.state = 4
        self._settle(ConnectionError("closed"))

    def _settle(self, problem: Exception | None = None) -> None:
        ready, self.ready = self.ready, None
        if ready is not None and not ready.done():
            if problem is None:
                ready.set_result(None)
            else:
                ready.set_exception(problem)

    def _messages(self, messages: list) -> None:
        for m in messages:
            channel = m.get("channel")
            if channel == CHANNEL:
                data = m.get("data")
                if isinstance(data, dict):
                    self.gen.arrived(data.get("seq", -1), time.time())
            elif channel == "/meta/connect":
                if m.get("successful"):
                    if self.state == 3:
                        self.gen.connects += 1
                        self._send([self._connect()])
                else:
                    self._lost_session(m)
            elif channel == "/meta/handshake":
                if not m.get("successful"):
                    self.gen.failed("handshake:" + str(m.get("error")))
                    self._abort()
                    return
                self.client_id = m["clientId"]
                self.state = 2
                self._send([self._message("/meta/subscribe", subscription=CHANNEL)])
            elif channel == "/meta/subscribe":
                if not m.get("successful"):
                    self.gen.failed("subscribe:" + str(m.get("error")))
                    self._abort()
                    return
                if self.state == 2:
                    self.state = 3
                    self.gen.ready += 1
                    self._send([self._connect(advice={"timeout": 0})])
                    self._settle()

    def _lost_session(self, reply: dict) -> None:
        """A connect refused (expired, unknown client): handshake again, as clients do."""
        advice = reply.get("advice") or {}
        if advice.get("reconnect") == "none":
            self.gen.failed("reconnect-none")
            self._abort()
            return
        if self.state == 3:
            self.gen.ready -= 1
        self.gen.rehandshakes += 1
        self.state = 1
        self._send([self._handshake()])

    def _message(self, channel: str, **fields: object) -> dict:
        self.next_id += 1
        return {"channel": channel, "clientId": self.client_id, "id": str(self.next_id), **fields}

    def _connect(self, **fields: object) -> dict:
        conn = "websocket" if self.websocket else "long-polling"
        return self._message("/meta/connect", connectionType=conn, **fields)

    def _handshake(self) -> dict:
        conn = "websocket" if self.websocket else "long-polling"
        return {"channel": "/meta/handshake", "version": "1.0", "supportedConnectionTypes": [conn]}

    def _abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def _send(self, messages: list) -> None:
        raise NotImplementedError


class WebSocketClient(Client):
    __slots__ = ()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        assert self.transport is not None
        self.transport.write(
            (
                f"GET {self.gen.path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
                f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {WS_KEY}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data if self.buf else data
        if self.state == 0:
            end = buf.find(HEAD_END)
            if end < 0:
                self.buf = buf
                return
            if not buf.startswith(b"HTTP/1.1 101"):
                self.gen.failed("upgrade:" + buf[:12].decode("latin-1"))
                self._abort()
                return
            buf = buf[end + 4 :]
            self.state = 1
            self._send([self._handshake()])
        pos = 0
        size = len(buf)
        while size - pos >= 2:
            b0 = buf[pos]
            n = buf[pos + 1] & 0x7F
            start = pos + 2
            if n == 126:
                if size - pos < 4:
                    break
                n = (buf[pos + 2] << 8) | buf[pos + 3]
                start = pos + 4
            elif n == 127:
                if size - pos < 10:
                    break
                n = struct.unpack_from("!Q", buf, pos + 2)[0]
                start = pos + 10
            end = start + n
            if end > size:
                break
            opcode = b0 & 0x0F
            if opcode == 1 or opcode == 2:
                try:
                    self._messages(orjson.loads(buf[start:end]))
                except orjson.JSONDecodeError:
                    self.gen.failed("bad-json")
            elif opcode == 9:
                self.gen.pings += 1
                if self.transport is not None:
                    self.transport.write(ws_frame(buf[start:end], 10))
            elif opcode == 8:
                self.gen.failed("closed-by-server")
                self._abort()
                return
            pos = end
        self.buf = buf[pos:] if pos < size else b""

    def _send(self, messages: list) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(ws_frame(orjson.dumps(messages)))


class PollingClient(Client):
    """Long-polling over one keep-alive connection: one request at a time on it (the parked
    connect), as a client's connect connection is."""

    __slots__ = ()

    websocket = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.state = 1
        self._send([self._handshake()])

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data if self.buf else data
        while True:
            end = buf.find(HEAD_END)
            if end < 0:
                break
            raw_head = buf[:end]
            head = raw_head.lower()
            length_at = head.find(b"\r\ncontent-length:")
            if length_at >= 0:
                stop = head.find(b"\r\n", length_at + 2)
                length = int(head[length_at + 17 : stop if stop > 0 else None])
                if len(buf) < end + 4 + length:
                    break
                body = buf[end + 4 : end + 4 + length]
                buf = buf[end + 4 + length :]
            elif b"transfer-encoding: chunked" in head:
                body, rest = _dechunk(buf, end + 4)
                if rest is None:
                    break
                buf = rest
            else:
                self.gen.failed("no-length")
                self._abort()
                return
            cookie_at = head.find(b"\r\nset-cookie:")
            if cookie_at >= 0:
                stop = raw_head.find(b"\r\n", cookie_at + 2)
                value = raw_head[cookie_at + 13 : stop if stop > 0 else None].decode("latin-1")
                value = value.strip()
                self.cookie = value.split(";", 1)[0]
            if not head.startswith(b"http/1.1 200"):
                self.gen.failed("http:" + head[9:12].decode("latin-1"))
                self._abort()
                return
            try:
                self._messages(orjson.loads(body))
            except orjson.JSONDecodeError:
                self.gen.failed("bad-json")
        self.buf = buf

    def _send(self, messages: list) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        body = orjson.dumps(messages)
        self.transport.write(
            (
                f"POST {self.gen.path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                + (f"Cookie: {self.cookie}\r\n\r\n" if self.cookie else "\r\n")
            ).encode()
            + body
        )

    def _messages(self, messages: list) -> None:
        # One request at a time: a subscribe reply's connect goes out after this response.
        super()._messages(messages)


def _dechunk(buf: bytes, start: int) -> tuple[bytes, bytes | None]:
    """The body of a chunked response starting at `start`, and what follows it (None: not
    all there yet)."""
    pieces = []
    pos = start
    while True:
        line_end = buf.find(b"\r\n", pos)
        if line_end < 0:
            return b"", None
        size = int(buf[pos:line_end].split(b";")[0], 16)
        if size == 0:
            if len(buf) < line_end + 4:
                return b"", None
            return b"".join(pieces), buf[line_end + 4 :]
        if len(buf) < line_end + 2 + size + 2:
            return b"", None
        pieces.append(buf[line_end + 2 : line_end + 2 + size])
        pos = line_end + 2 + size + 2


async def open_clients(gen: Generator) -> dict:
    """Opens --count clients, --concurrency at a time; what it took."""
    args = gen.args
    loop = asyncio.get_running_loop()
    kind = WebSocketClient if args.transport == "websocket" else PollingClient
    limit = asyncio.Semaphore(args.concurrency)
    started = time.monotonic()
    deadline = started + args.setup_timeout

    async def one(index: int) -> None:
        port = gen.ports[index % len(gen.ports)]
        for attempt in range(3):
            if time.monotonic() > deadline:
                gen.failed("setup-deadline")
                return
            async with limit:
                client = kind(gen, port)
                client.ready = loop.create_future()
                try:
                    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                    sock.setblocking(False)
                    source = f"127.0.{args.subnet}.{2 + index // args.per_address}"
                    sock.bind((source, 0))
                    await asyncio.wait_for(loop.sock_connect(sock, ("127.0.0.1", port)), 20)
                    await loop.create_connection(lambda c=client: c, sock=sock)
                    await asyncio.wait_for(asyncio.shield(client.ready), 30)
                    gen.clients.append(client)
                    return
                except (OSError, TimeoutError, ConnectionError) as exc:
                    gen.failed(f"connect:{type(exc).__name__}")
                    if client.transport is not None:
                        client.transport.abort()
                    else:
                        sock.close()
            await asyncio.sleep(0.5 * (attempt + 1))

    await asyncio.gather(*(one(i) for i in range(args.count)))
    return {
        "event": "connected",
        "ready": gen.ready,
        "seconds": time.monotonic() - started,
        "failures": gen.failures,
    }


async def serve(gen: Generator) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    def say(event: dict) -> None:
        sys.stdout.write(orjson.dumps(event).decode() + "\n")
        sys.stdout.flush()

    say({"event": "hello", "pid": os.getpid()})
    opening: asyncio.Task | None = None
    end = time.monotonic() + gen.args.deadline
    while time.monotonic() < end:
        try:
            line = await asyncio.wait_for(reader.readline(), max(0.1, end - time.monotonic()))
        except TimeoutError:
            break
        if not line:
            break
        command = orjson.loads(line)
        cmd = command["cmd"]
        if cmd == "connect":

            async def opened() -> None:
                say(await open_clients(gen))

            opening = asyncio.ensure_future(opened())
        elif cmd == "count":
            say({"event": "count", "n": len(gen.arrivals.get(command["seq"], ()))})
        elif cmd == "times":
            say({"event": "times", "times": gen.arrivals.pop(command["seq"], [])})
        elif cmd == "stats":
            usage = resource.getrusage(resource.RUSAGE_SELF)
            say(
                {
                    "event": "stats",
                    "ready": gen.ready,
                    "opened": gen.opened,
                    "closed": gen.closed,
                    "rehandshakes": gen.rehandshakes,
                    "connects": gen.connects,
                    "pings": gen.pings,
                    "failures": gen.failures,
                    "cpu": usage.ru_utime + usage.ru_stime,
                    "maxrss_kib": usage.ru_maxrss,
                }
            )
        elif cmd == "quit":
            break
    if opening is not None and not opening.done():
        opening.cancel()
    for client in gen.clients:
        if client.transport is not None:
            client.transport.abort()
    await asyncio.sleep(0.1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--transport", choices=("websocket", "long-polling"), required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--subnet", type=int, default=0, help="source addresses 127.0.N.2, ...")
    parser.add_argument("--per-address", type=int, default=1000, help="clients a source address")
    parser.add_argument("--port", type=int, action="append", required=True)
    parser.add_argument("--path", default="/cometd")
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--setup-timeout", type=float, default=300)
    parser.add_argument("--deadline", type=float, default=1800)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if args.count // args.per_address > 250:
        raise SystemExit("--count / --per-address: at most 250 source addresses")
    if args.count + 64 > hard:
        raise SystemExit(f"--count {args.count} needs more open files than the limit {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(serve(Generator(args)))


if __name__ == "__main__":
    main()
