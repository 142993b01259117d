"""Soak: many clients churning over every transport against one server with its default settings,
for a given number of minutes, on 127.0.0.1 only.

    .venv/bin/python benchmarks/soak.py --minutes 10
    .venv/bin/python benchmarks/soak.py --attacks            # hostile input, one attack at a time

Who takes part, all at once:
- well-behaved clients over long-polling, callback-polling, WebSocket (JSON), WebSocket (msgpack)
  and EventSource: each handshakes, subscribes to its own channel and to a shared one, receives
  for a while, then leaves by disconnect, by unsubscribe and disconnect, or (WebSocket) by closing
  its socket abruptly; and again, for the whole run;
- a publisher that sends numbered messages to each well-behaved client's channel and to the
  shared channel; a message counts as sent once the server acknowledged the publish;
- clients that vanish without a word (a long-poll that never comes back, a dropped socket);
- stalled readers: WebSockets that subscribe to a channel of 32 KiB messages and stop reading;
- clients sending garbage (bad JSON, huge channel names, batches of handshakes).

Each minute it prints the server's resident memory, its open sessions and connections, and the
running totals; at the end, how many acknowledged messages the well-behaved clients did not
receive (lost), or received out of order. Every loop is bounded by the run's end.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import random
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import msgpack
import tornado.httpclient
import tornado.iostream
import tornado.websocket

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from fanout import rss_mib  # noqa: E402

from bayeux.testing import free_port, stop_process, wait_for_port  # noqa: E402
from spec_tests.client import Client  # noqa: E402

SHARED = "/soak/shared"
BIG = "/soak/big"
HANDSHAKE = {"channel": "/meta/handshake", "version": "1.0"}
totals: Counter[str] = Counter()


class Publisher:
    """Publishes numbered messages to each registered client's channel and to the shared one,
    over one WebSocket, counting what the server acknowledged."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.acked: dict[str, int] = {}  # channel -> messages acknowledged
        self.sending: set[str] = set()
        self.shared_acked = 0

    async def run(self, until: float) -> None:
        client = await connected_client(self.url, until)
        while time.monotonic() < until:
            channels = list(self.sending)
            batch = [
                {"channel": c, "clientId": client.client_id, "data": {"seq": self.acked[c]}}
                for c in channels
            ]
            batch.append(
                {
                    "channel": SHARED,
                    "clientId": client.client_id,
                    "data": {"seq": self.shared_acked},
                }
            )
            replies = await client.send(*batch)
            for message, reply in zip(batch, replies, strict=True):
                if not reply.get("successful"):
                    totals["publish refused"] += 1
                elif message["channel"] == SHARED:
                    self.shared_acked += 1
                elif message["channel"] in self.acked:
                    self.acked[message["channel"]] += 1
            totals["published"] += len(batch)
            await asyncio.sleep(0.05)
        await close_connected(client)

    def start_sending(self, channel: str) -> None:
        self.acked[channel] = 0
        self.sending.add(channel)

    def stop_sending(self, channel: str) -> int:
        self.sending.discard(channel)
        return self.acked.pop(channel)


class MsgpackWebSocket:
    """A minimal msgpack WebSocket Bayeux client with the receiving side of spec_tests' Client."""

    def __init__(self, url: str) -> None:
        self.url = url.replace("http://", "ws://")
        self.inbox: list[dict] = []
        self.replies: dict[str, dict] = {}
        self.ids = itertools.count()
        self.client_id = ""
        self.held: str | None = None  # id of the connect the server holds

    async def start(self) -> None:
        self.ws = await tornado.websocket.websocket_connect(
            self.url, subprotocols=["bayeux-msgpack"]
        )
        self.reader = asyncio.ensure_future(self._read())
        reply = await self.request({**HANDSHAKE, "supportedConnectionTypes": ["websocket"]})
        self.client_id = reply["clientId"]
        await self.request(self._connect(timeout=0))

    def _connect(self, **advice: int) -> dict:
        message = {
            "channel": "/meta/connect",
            "clientId": self.client_id,
            "connectionType": "websocket",
        }
        if advice:
            message["advice"] = advice
        return message

    async def _read(self) -> None:
        while True:
            frame = await self.ws.read_message()
            if frame is None:
                return
            for message in msgpack.unpackb(frame):
                if "data" in message and "successful" not in message:
                    self.inbox.append(message)
                elif "id" in message:
                    self.replies[message["id"]] = message

    async def request(self, message: dict) -> dict:
        message["id"] = str(next(self.ids))
        await self.ws.write_message(msgpack.packb([message]), binary=True)
        for _ in range(1000):
            if message["id"] in self.replies:
                return self.replies.pop(message["id"])
            await asyncio.sleep(0.01)
        raise TimeoutError(f"no reply to {message['channel']}")

    async def subscribe(self, channels: list[str]) -> dict:
        return await self.request(
            {"channel": "/meta/subscribe", "clientId": self.client_id, "subscription": channels}
        )

    async def deliveries(self, within: float) -> list[dict]:
        # Deliveries are pushed; a held connect keeps the session alive: a new one is sent
        # once the server has answered the previous one (at its timeout).
        if self.held is None or self.held in self.replies:
            self.replies.pop(self.held or "", None)
            message = self._connect()
            message["id"] = self.held = str(next(self.ids))
            await self.ws.write_message(msgpack.packb([message]), binary=True)
        await asyncio.sleep(within)
        taken, self.inbox = self.inbox, []
        return taken

    async def disconnect(self) -> None:
        await self.request({"channel": "/meta/disconnect", "clientId": self.client_id})

    async def close(self) -> None:
        self.ws.close()
        self.reader.cancel()


class EventSourceClient:
    """Faye's eventsource transport: deliveries on a Server-Sent Events stream, requests (and
    connects) by long-polling POST."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.inbox: list[dict] = []
        self.http = tornado.httpclient.AsyncHTTPClient(force_instance=True)
        self.stream: asyncio.Future | None = None
        self.client_id = ""
        self._buffer = b""

    async def post(self, *messages: dict) -> list[dict]:
        response = await self.http.fetch(
            self.url,
            method="POST",
            body=json.dumps(list(messages)),
            headers={"Content-Type": "application/json"},
            request_timeout=40,
        )
        return json.loads(response.body)

    async def start(self) -> None:
        (reply,) = await self.post({**HANDSHAKE, "supportedConnectionTypes": ["eventsource"]})
        self.client_id = reply["clientId"]
        self.stream = asyncio.ensure_future(
            self.http.fetch(
                f"{self.url}/{self.client_id}",
                headers={"Accept": "text/event-stream"},
                streaming_callback=self._chunk,
                request_timeout=3600,
            )
        )
        await self.connect()

    def _chunk(self, data: bytes) -> None:
        self._buffer += data
        while b"\n\n" in self._buffer:
            event, self._buffer = self._buffer.split(b"\n\n", 1)
            if event.startswith(b"data: "):
                self.inbox.extend(m for m in json.loads(event[6:]) if "data" in m)

    async def connect(self) -> None:
        await self.post(
            {
                "channel": "/meta/connect",
                "clientId": self.client_id,
                "connectionType": "eventsource",
            }
        )

    async def subscribe(self, channels: list[str]) -> dict:
        (reply,) = await self.post(
            {"channel": "/meta/subscribe", "clientId": self.client_id, "subscription": channels}
        )
        return reply

    async def deliveries(self, within: float) -> list[dict]:
        await self.connect()  # the heartbeat that keeps the session alive
        await asyncio.sleep(within)
        taken, self.inbox = self.inbox, []
        return taken

    async def disconnect(self) -> None:
        await self.post({"channel": "/meta/disconnect", "clientId": self.client_id})

    async def close(self) -> None:
        if self.stream is not None:
            self.stream.cancel()
        self.http.close()


class SpecClient:
    """spec_tests' wire client (long-polling, callback-polling, WebSocket) behind the same face."""

    def __init__(self, url: str, transport: str) -> None:
        self.client = Client(url, transport, timeout=40)

    async def start(self) -> None:
        await self.client.start()

    async def subscribe(self, channels: list[str]) -> dict:
        return await self.client.subscribe(channels)

    async def deliveries(self, within: float) -> list[dict]:
        return await self.client.deliveries(10**9, within=within)

    async def unsubscribe(self, channels: list[str]) -> None:
        await self.client.unsubscribe(channels)

    async def disconnect(self) -> None:
        await self.client.disconnect()

    async def close(self) -> None:
        await self.client.close()


TRANSPORTS = ("long-polling", "callback-polling", "websocket", "websocket-msgpack", "eventsource")


def make_client(url: str, transport: str) -> Any:
    if transport == "websocket-msgpack":
        return MsgpackWebSocket(url)
    if transport == "eventsource":
        return EventSourceClient(url)
    return SpecClient(url, transport)


async def well_behaved(url: str, transport: str, publisher: Publisher, until: float) -> None:
    """One client slot: session after session until the end of the run."""
    n = 0
    while time.monotonic() < until - 40:
        n += 1
        client = make_client(url, transport)
        own = f"/soak/c/{transport}/{id(client)}/{n}"
        try:
            await client.start()
            reply = await client.subscribe([own, SHARED])
            assert reply.get("successful"), reply
            publisher.start_sending(own)
            received: list[int] = []
            shared: list[int] = []
            stay = time.monotonic() + random.uniform(5, 30)
            while time.monotonic() < stay:
                for m in await client.deliveries(0.5):
                    (received if m["channel"] == own else shared).append(m["data"]["seq"])
            sent = publisher.stop_sending(own)
            deadline = time.monotonic() + 15
            while len(received) < sent and time.monotonic() < deadline:
                for m in await client.deliveries(0.5):
                    (received if m["channel"] == own else shared).append(m["data"]["seq"])
            got = set(received)
            totals["lost"] += sum(1 for seq in range(sent) if seq not in got)
            totals["out-of-order"] += sum(1 for a, b in itertools.pairwise(received) if b != a + 1)
            totals["shared-gaps"] += sum(1 for a, b in itertools.pairwise(shared) if b != a + 1)
            totals["delivered"] += len(received) + len(shared)
            how = random.choice(["disconnect", "unsubscribe", "abrupt"])
            if how == "unsubscribe" and isinstance(client, SpecClient):
                await client.unsubscribe([own, SHARED])
            if how != "abrupt":
                await client.disconnect()
            totals[f"left by {how}"] += 1
            totals["sessions completed"] += 1
        except Exception as exc:  # noqa: BLE001 - counted and shown: a soak must not stop
            totals[f"client error: {type(exc).__name__}: {str(exc)[:60]}"] += 1
            publisher.sending.discard(own)
            publisher.acked.pop(own, None)
            await asyncio.sleep(1)
        finally:
            await client.close()


async def vanishing(url: str, until: float) -> None:
    """Sessions whose clients disappear: they must expire on the server."""
    while time.monotonic() < until - 5:
        transport = random.choice(["long-polling", "websocket"])
        client = Client(url, transport, timeout=10)
        try:
            await client.start()
            await client.subscribe([SHARED])
        except Exception:  # noqa: BLE001
            totals["vanishing error"] += 1
        await client.close()  # no disconnect: the socket drops, or the polls just stop
        totals["vanished"] += 1
        await asyncio.sleep(1)


async def stalled(url: str, until: float) -> None:
    """WebSockets that subscribe to large messages and then stop reading, for a minute each."""
    from tests.helpers.rawws import RawWebSocket

    while time.monotonic() < until - 5:
        ws = await asyncio.to_thread(RawWebSocket, url.replace("http://", "ws://"), rcvbuf=4096)
        try:
            ws.send([{**HANDSHAKE, "supportedConnectionTypes": ["websocket"]}])
            client_id = (await asyncio.to_thread(ws.read))[0]["clientId"]
            connect = {"channel": "/meta/connect", "clientId": client_id}
            connect["connectionType"] = "websocket"
            subscribe = {"channel": "/meta/subscribe", "clientId": client_id, "subscription": BIG}
            ws.send([subscribe, connect])
            ws.send([connect])  # held: the session lives on while its reader reads nothing
            totals["stalled readers"] += 1
            await asyncio.sleep(min(60, max(0, until - 5 - time.monotonic())))
        except Exception:  # noqa: BLE001
            totals["stalled error"] += 1
        finally:
            ws.close()


async def connected_client(url: str, until: float) -> Client:
    """A WebSocket client that keeps a connect outstanding until `until`, as every Bayeux
    client must to keep its session (publishers included)."""
    client = Client(url, "websocket", timeout=40)
    await client.start()

    async def keep_alive() -> None:
        while time.monotonic() < until:
            reply = await client.connect()
            if not reply.get("successful"):
                totals["publisher session lost"] += 1

    client.keep_alive = asyncio.ensure_future(keep_alive())  # type: ignore[attr-defined]
    return client


async def close_connected(client: Client) -> None:
    client.keep_alive.cancel()  # type: ignore[attr-defined]
    await asyncio.gather(client.keep_alive, return_exceptions=True)  # type: ignore[attr-defined]
    await client.close()


async def big_publisher(url: str, until: float) -> None:
    """32 KiB messages, up to 20 a second, to the stalled readers' channel."""
    client = await connected_client(url, until)
    payload = "x" * 32768
    while time.monotonic() < until:
        reply = await client.publish(BIG, {"p": payload})
        totals["big published" if reply.get("successful") else "big refused"] += 1
        await asyncio.sleep(0.05)
    await close_connected(client)


async def garbage(url: str, until: float) -> None:
    """Hostile requests now and then: none may disturb anyone else."""
    http = tornado.httpclient.AsyncHTTPClient()
    bodies = [
        "{not json",
        json.dumps([{"channel": "/x" * 5000, "data": 1}]),
        json.dumps([{**HANDSHAKE, "supportedConnectionTypes": ["long-polling"]}] * 50),
        json.dumps([{"channel": "/meta/connect", "clientId": "nope", "advice": {"timeout": -1}}]),
    ]
    while time.monotonic() < until:
        try:
            response = await http.fetch(
                url,
                method="POST",
                body=random.choice(bodies),
                raise_error=False,
                headers={"Content-Type": "application/json"},
            )
            totals[f"garbage answered {response.code}"] += 1
        except Exception as exc:  # noqa: BLE001
            totals[f"garbage error: {type(exc).__name__}: {str(exc)[:60]}"] += 1
        await asyncio.sleep(0.5)


# Where each server process answers /soak-stats on a port of its own (one, or the workers).
STATS_URLS: list[str] = []


async def stats(url: str) -> dict:
    """The servers' stats, summed over the processes."""
    total: dict = {"sessions": 0, "connections": 0, "refused": {}, "dropped": {}, "errors": {}}
    for base in STATS_URLS:
        response = await tornado.httpclient.AsyncHTTPClient().fetch(base + "/soak-stats")
        one = json.loads(response.body)
        total["sessions"] += one["sessions"]
        total["connections"] += one["connections"]
        for key in ("refused", "dropped", "errors"):
            for reason, count in one[key].items():
                total[key][reason] = total[key].get(reason, 0) + count
        total.setdefault("growth", []).extend(one.get("growth", []))
        for key, count in one.get("moved", {}).items():
            total.setdefault("moved", {})[key] = total.get("moved", {}).get(key, 0) + count
    return total


def total_rss(pids: list[int]) -> float:
    return sum(rss_mib(pid) for pid in pids)


async def soak(url: str, pids: list[int], minutes: float, per_transport: int) -> None:
    started = time.monotonic()
    until = started + minutes * 60
    publisher = Publisher(url)
    tasks = [asyncio.ensure_future(publisher.run(until))]
    await asyncio.sleep(0.5)
    for transport in TRANSPORTS:
        for _ in range(per_transport):
            tasks.append(asyncio.ensure_future(well_behaved(url, transport, publisher, until)))
    tasks += [asyncio.ensure_future(vanishing(url, until)) for _ in range(2)]
    tasks += [asyncio.ensure_future(stalled(url, until)) for _ in range(3)]
    tasks += [
        asyncio.ensure_future(big_publisher(url, until)),
        asyncio.ensure_future(garbage(url, until)),
    ]
    print(
        f"{'minute':>6} {'RSS MiB':>8} {'sessions':>8} {'conns':>6} {'sessions done':>13} "
        f"{'delivered':>10} {'lost':>5}",
        flush=True,
    )
    minute = 0
    while time.monotonic() < until:
        await asyncio.sleep(min(60, until - time.monotonic()))
        minute += 1
        s = await stats(url)
        print(
            f"{minute:>6} {total_rss(pids):>8.1f} {s['sessions']:>8} {s['connections']:>6} "
            f"{totals['sessions completed']:>13} {totals['delivered']:>10} {totals['lost']:>5}",
            flush=True,
        )
    await asyncio.gather(*tasks, return_exceptions=True)
    # Vanished sessions expire: maxInterval (10 s) after their last connect reply, or for
    # EventSource sessions (whose connects advise an interval of the timeout) 30 s more.
    await asyncio.sleep(45)
    s = await stats(url)
    print(f"\nafter the run: RSS {total_rss(pids):.1f} MiB, {s['sessions']} sessions left")
    counted = {k: s[k] for k in ("refused", "dropped", "errors", "moved") if k in s}
    print("server counted:", json.dumps(counted))
    print("totals:", json.dumps(dict(sorted(totals.items()))))
    for line in s.get("growth", []):
        print("grown:", line)
    print(
        f"lost among well-behaved clients: {totals['lost']}; out of order: "
        f"{totals['out-of-order']}; gaps on the shared channel: {totals['shared-gaps']}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--clients", type=int, default=8, help="well-behaved clients per transport")
    parser.add_argument(
        "--workers",
        type=int,
        default=0,
        help="soak a deployment of this many processes on one port sharing a redis-server the"
        " run starts (each connection reaches any of them: sessions move between them)",
    )
    parser.add_argument(
        "--attacks",
        nargs="*",
        metavar="NAME",
        help="instead of the soak: run the hostile-input attacks of benchmarks/attacks.py one at"
        " a time (all, or those named), each against a fresh server with its defaults",
    )
    parser.add_argument(
        "--root",
        type=Path,
        default=ROOT,
        help="with --attacks: the tree whose server is attacked (another checkout, to compare"
        " before and after in one sitting)",
    )
    parser.add_argument(
        "--honest-seconds", type=float, default=12, help="with --attacks: the honest client's run"
    )
    args = parser.parse_args()
    if args.attacks is not None:
        import attacks

        attacks.run_all(args.root.resolve(), args.attacks, args.honest_seconds)
        return
    processes: list[subprocess.Popen] = []
    env = dict(os.environ)
    if args.workers:
        redis_port = free_port()
        redis = subprocess.Popen(
            ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        processes.append(redis)
        wait_for_port(redis_port, redis)
        env.update(SOAK_REDIS=f"redis://127.0.0.1:{redis_port}/0", SOAK_PORT=str(free_port()))
    try:
        port = 0
        servers = []
        for _ in range(max(1, args.workers)):
            process = subprocess.Popen(
                [sys.executable, str(ROOT / "benchmarks" / "soak_server.py")],
                stdout=subprocess.PIPE,
                text=True,
                env=env,
            )
            processes.append(process)
            servers.append(process)
            assert process.stdout is not None
            shared, own = (int(p) for p in process.stdout.readline().split())
            port = shared
            STATS_URLS.append(f"http://127.0.0.1:{own}")
        if args.workers:
            time.sleep(2)  # the engines connected and following the log
        url = f"http://127.0.0.1:{port}/cometd"
        deployment = f"{args.workers} workers on Redis at" if args.workers else "one process,"
        print(
            f"soak: {args.minutes} min, {args.clients} well-behaved clients per transport "
            f"({', '.join(TRANSPORTS)}), against {url} ({deployment} default settings)"
        )
        asyncio.run(soak(url, [s.pid for s in servers], args.minutes, args.clients))
    finally:
        for process in reversed(processes):
            stop_process(process)


if __name__ == "__main__":
    main()
