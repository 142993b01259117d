"""Fan-out over WebSocket, side by side: bayeux against Faye (and itself) on 127.0.0.1.

    .venv/bin/python benchmarks/fanout.py                       # both servers, default load
    .venv/bin/python benchmarks/fanout.py --server bayeux --subscribers 500 --messages 400

Each server runs alone in its own process; this process is the load generator. N subscribers
hold WebSockets and subscribe to one channel; one publisher sends M messages in bursts of
--burst, each carrying its send time. Reported: deliveries per second of wall time, deliveries per
CPU-second of the server process (the fairer figure on a 2-core machine shared with the load
generator), delivery latency percentiles, and the server's resident memory at the end.
Everything is bounded: a run stops after --deadline seconds whatever happens.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import tornado.httpclient
import tornado.websocket

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

sys.path.insert(0, str(ROOT / "benchmarks"))

import servers  # noqa: E402
from servers import cpu_seconds  # noqa: E402

from bayeux.testing import free_port, stop_process  # noqa: E402


@dataclass
class Figures:
    server: str
    deliveries: int
    expected: int
    seconds: float
    cpu_seconds: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    rss_mib: float
    wire_bytes: int = 0  # loopback bytes during the run (WebSocket runs)

    def line(self) -> str:
        measured = self.wire_bytes > 0 and self.deliveries
        per_delivery = f"{self.wire_bytes / self.deliveries:.1f}" if measured else "n/a"
        return (
            f"{self.server:<24} {self.deliveries:>8}/{self.expected:<8} "
            f"{self.deliveries / self.seconds:>10.0f}/s {self.deliveries / self.cpu_seconds:>12.0f}"
            f" {self.p50_ms:>8.1f} {self.p99_ms:>8.1f} {self.max_ms:>8.1f} {self.rss_mib:>8.1f}"
            f" {per_delivery:>10}"
        )


HEADER = (
    f"{'server':<24} {'delivered':>17} {'per second':>12} {'per CPU-sec':>12}"
    f" {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'RSS MiB':>8} {'wire B/msg':>10}"
)


def start(server: str, port: int) -> subprocess.Popen:
    if server == "bayeux-metrics":
        return servers.start("bayeux", port, "--metrics-path", "/metrics")
    if server == "bayeux-channels":
        return servers.start("bayeux", port, "--app", "benchmarks.channel_app:install")
    return servers.start(server, port)


def rss_mib(pid: int) -> float:
    return servers.rss_kib(pid) / 1024


def loopback_bytes() -> int:
    """Bytes sent over the loopback interface so far (every byte between the load generator
    and the server, TCP and WebSocket framing included, counted once)."""
    for line in Path("/proc/net/dev").read_text().splitlines():
        name, _, counters = line.partition(":")
        if name.strip() == "lo":
            return int(counters.split()[8])
    return 0


class Subscriber:
    # Offer permessage-deflate (--compression): the server may compress what it sends.
    compress = False
    # Loopback bytes of the last run, from the first publish to the last delivery.
    wire_bytes = 0

    def __init__(self, url: str) -> None:
        self.url = url
        self.latencies: list[float] = []
        self.ws: tornado.websocket.WebSocketClientConnection | None = None
        self.client_id = ""
        self.next_id = 0

    async def send(self, *messages: dict) -> None:
        for m in messages:
            self.next_id += 1
            m["id"] = str(self.next_id)
            if self.client_id:
                m["clientId"] = self.client_id
        assert self.ws is not None
        await self.ws.write_message(json.dumps(list(messages)))

    async def read(self) -> list[dict]:
        assert self.ws is not None
        frame = await self.ws.read_message()
        if frame is None:
            raise ConnectionError("socket closed")
        return json.loads(frame)

    async def join(self, channel: str, ext: dict | None = None) -> None:
        """Handshakes (with `ext`, if given), connects and subscribes to `channel`."""
        self.ws = await tornado.websocket.websocket_connect(
            self.url.replace("http://", "ws://"),
            max_message_size=64 << 20,
            compression_options={} if self.compress else None,
        )
        handshake = {
            "channel": "/meta/handshake",
            "version": "1.0",
            "supportedConnectionTypes": ["websocket"],
        }
        if ext is not None:
            handshake["ext"] = ext
        await self.send(handshake)
        (reply,) = [m for m in await self.read() if m["channel"] == "/meta/handshake"]
        self.client_id = reply["clientId"]
        await self.send(
            {"channel": "/meta/connect", "connectionType": "websocket", "advice": {"timeout": 0}},
            {"channel": "/meta/subscribe", "subscription": channel},
        )
        pending = {"/meta/connect", "/meta/subscribe"}
        while pending:
            for m in await self.read():
                pending.discard(m.get("channel"))
        await self.send({"channel": "/meta/connect", "connectionType": "websocket"})

    async def listen(self, expected: int, channel: str) -> None:
        while len(self.latencies) < expected:
            for m in await self.read():
                if m.get("channel") == channel and "data" in m:
                    self.latencies.append(time.time() - m["data"]["sent"])
                elif m.get("channel") == "/meta/connect":
                    await self.send({"channel": "/meta/connect", "connectionType": "websocket"})


async def load(
    url: str,
    subscribers: int,
    messages: int,
    burst: int,
    payload: int,
    deadline: float,
    server_pid: int,
    rate: float = 0,
    scrape: bool = False,
) -> tuple[list[Subscriber], float, float]:
    """The subscribers, and the wall and server CPU seconds from the first publish to the last
    delivery (joining is not counted)."""
    channel = "/bench/fanout"
    subs = [Subscriber(url) for _ in range(subscribers)]
    for i in range(0, subscribers, 50):
        await asyncio.gather(*(s.join(channel) for s in subs[i : i + 50]))
    publisher = Subscriber(url)
    await publisher.join("/bench/unused")
    listeners = [asyncio.ensure_future(s.listen(messages, channel)) for s in subs]
    scraper = asyncio.ensure_future(scrape_every_second(url)) if scrape else None
    # Words rather than one repeated letter: compression gets what ordinary text gives it.
    words = random.Random(1).choices(
        ["order", "status", "shipped", "amount", "customer", "item", "price", "note", "id"],
        k=payload,
    )
    text = " ".join(words)[:payload]
    cpu_before = cpu_seconds(server_pid)
    wire_before = loopback_bytes()
    started = time.monotonic()
    for i in range(0, messages, burst):
        await publisher.send(
            *(
                {"channel": channel, "data": {"n": n, "sent": time.time(), "text": text}}
                for n in range(i, min(i + burst, messages))
            )
        )
        # Paced: the next burst leaves on schedule; unpaced (rate 0): as fast as possible.
        delay = started + (i + burst) / rate - time.monotonic() if rate else 0
        await asyncio.sleep(max(0.0, delay))
    done, pending = await asyncio.wait(listeners, timeout=deadline)
    elapsed = time.monotonic() - started
    cpu = cpu_seconds(server_pid) - cpu_before
    Subscriber.wire_bytes = loopback_bytes() - wire_before
    if scraper is not None:
        scraper.cancel()
    for task in pending:
        task.cancel()
    for s in [*subs, publisher]:
        if s.ws is not None:
            s.ws.close()
    return subs, elapsed, cpu


async def scrape_every_second(url: str) -> None:
    """What Prometheus does to a server with --metrics-path: its scrapes count in the CPU."""
    client = tornado.httpclient.AsyncHTTPClient()
    while True:
        await client.fetch(url.replace("/cometd", "/metrics"))
        await asyncio.sleep(1)


def run_long_polling(server: str, args: argparse.Namespace) -> Figures:
    """The same measure over long-polling, with a Node load generator (lp_fanout.mjs): a
    Python one could not hold 1000 long-polls at 100 messages/s without being the limit."""
    port = free_port()
    process = start(server, port)
    try:
        result, cpu = servers.run_node_load(
            "lp_fanout.mjs",
            process.pid,
            f"http://127.0.0.1:{port}/cometd",
            str(args.subscribers),
            str(args.messages),
            str(args.rate or 100),
            str(args.deadline),
        )
        memory = rss_mib(process.pid)
    finally:
        stop_process(process)
    return Figures(
        server,
        result["delivered"],
        result["expected"],
        result["seconds"],
        cpu,
        result.get("p50_ms", float("nan")),
        result.get("p99_ms", float("nan")),
        result.get("max_ms", float("nan")),
        memory,
    )


def run(server: str, args: argparse.Namespace) -> Figures:
    if args.transport == "long-polling":
        return run_long_polling(server, args)
    port = free_port()
    process = start(server, port)
    try:
        subs, elapsed, cpu = asyncio.run(
            load(
                f"http://127.0.0.1:{port}/cometd",
                args.subscribers,
                args.messages,
                args.burst,
                args.payload,
                args.deadline,
                process.pid,
                args.rate,
                server == "bayeux-metrics",
            )
        )
        memory = rss_mib(process.pid)
    finally:
        stop_process(process)
    latencies = sorted(x * 1000 for s in subs for x in s.latencies)
    delivered = len(latencies)
    return Figures(
        server,
        delivered,
        args.subscribers * args.messages,
        elapsed,
        max(cpu, 1e-9),
        statistics.median(latencies) if latencies else float("nan"),
        latencies[int(0.99 * (delivered - 1))] if latencies else float("nan"),
        latencies[-1] if latencies else float("nan"),
        memory,
        Subscriber.wire_bytes,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--server",
        action="append",
        choices=["bayeux", "bayeux-metrics", "bayeux-channels", *servers.SERVERS[1:]],
        help="server(s) to measure; default: bayeux and faye (bayeux-metrics: bayeux with"
        " --metrics-path, scraped every second; bayeux-channels: with the channel objects and"
        " decorators of benchmarks/channel_app.py)",
    )
    parser.add_argument(
        "--transport",
        choices=["websocket", "long-polling"],
        default="websocket",
        help="long-polling: one held connect per subscriber, Node load generator, --rate"
        " default 100/s, no bursts",
    )
    parser.add_argument("--subscribers", type=int, default=200)
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--burst", type=int, default=10, help="messages per publish frame")
    parser.add_argument("--payload", type=int, default=100, help="bytes of text per message")
    parser.add_argument("--deadline", type=float, default=60, help="seconds a run may take")
    parser.add_argument(
        "--rate",
        type=float,
        default=0,
        help="messages per second to publish; 0: as fast as possible",
    )
    parser.add_argument(
        "--compression",
        action="store_true",
        help="WebSocket subscribers offer permessage-deflate (the server may compress)",
    )
    args = parser.parse_args()
    Subscriber.compress = args.compression
    if args.transport == "long-polling" and not args.rate:
        args.rate = 100
    pace = f"{args.rate:g} messages/s" if args.rate else "as fast as possible"
    bursts = "" if args.transport == "long-polling" else f" in bursts of {args.burst}"
    print(
        f"{pace}; {args.subscribers} {args.transport} subscribers, {args.messages} messages of"
        f" {args.payload} B{bursts}; python {sys.version.split()[0]}, {os.cpu_count()} CPUs"
    )
    print(HEADER)
    default = ["bayeux", "faye", "cometd-nodejs"] if args.transport == "long-polling" else None
    for server in args.server or default or ["bayeux", "faye"]:
        print(run(server, args).line(), flush=True)


if __name__ == "__main__":
    main()
