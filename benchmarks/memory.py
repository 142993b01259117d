"""Memory per idle client, side by side: bayeux against Faye on 127.0.0.1.

    .venv/bin/python benchmarks/memory.py [--clients 1000]

For each server and transport, N clients handshake and leave a /meta/connect held (a parked
long-poll, or an open WebSocket with its connect held); the server's resident memory is read
before and after, and the difference divided by N is printed. Bounded: every client is closed and
the server stopped at the end of its run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

import tornado.httpclient
import tornado.websocket

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from fanout import rss_mib, start  # noqa: E402

from bayeux.testing import free_port, stop_process  # noqa: E402

HANDSHAKE = {"channel": "/meta/handshake", "version": "1.0"}


async def park_long_polls(url: str, count: int, first_connect_returns: bool) -> list:
    """`count` sessions, each with a connect held on its own raw HTTP connection."""
    http = tornado.httpclient.AsyncHTTPClient(max_clients=50)
    host, port = url.split("//")[1].split("/")[0].split(":")
    writers = []
    for _ in range(count):
        body = json.dumps([{**HANDSHAKE, "supportedConnectionTypes": ["long-polling"]}])
        reply = await http.fetch(
            url, method="POST", body=body, headers={"Content-Type": "application/json"}
        )
        client_id = json.loads(reply.body)[0]["clientId"]
        connect = json.dumps(
            [{"channel": "/meta/connect", "clientId": client_id, "connectionType": "long-polling"}]
        )
        if first_connect_returns:
            await http.fetch(
                url, method="POST", body=connect, headers={"Content-Type": "application/json"}
            )
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(
            (
                f"POST /cometd HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json"
                f"\r\nContent-Length: {len(connect)}\r\n\r\n{connect}"
            ).encode()
        )
        await writer.drain()
        writers.append(writer)
    return writers


async def open_websockets(url: str, count: int) -> list:
    """`count` sessions, each on its own WebSocket with a connect held."""
    sockets = []
    for _ in range(count):
        ws = await tornado.websocket.websocket_connect(url.replace("http://", "ws://"))
        await ws.write_message(
            json.dumps([{**HANDSHAKE, "supportedConnectionTypes": ["websocket"]}])
        )
        client_id = json.loads(await ws.read_message())[0]["clientId"]
        for advice in ({"timeout": 0}, {}):
            await ws.write_message(
                json.dumps(
                    [
                        {
                            "channel": "/meta/connect",
                            "clientId": client_id,
                            "connectionType": "websocket",
                            "advice": advice,
                        }
                    ]
                )
            )
        sockets.append(ws)
    return sockets


def measure(server: str, transport: str, count: int) -> float:
    port = free_port()
    process = start(server, port)
    url = f"http://127.0.0.1:{port}/cometd"
    try:
        time.sleep(0.5)
        before = rss_mib(process.pid)

        async def run() -> float:
            if transport == "websocket":
                held = await open_websockets(url, count)
            else:
                held = await park_long_polls(url, count, first_connect_returns=server == "bayeux")
            await asyncio.sleep(1.0)
            after = rss_mib(process.pid)
            for item in held:
                item.close()
            return after

        after = asyncio.run(run())
    finally:
        stop_process(process)
    return (after - before) * 1024 / count


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--server", action="append", choices=["bayeux", "faye"])
    args = parser.parse_args()
    print(
        f"{args.clients} idle clients, each with a /meta/connect held; KiB of server RSS per client"
    )
    print(f"{'server':<8} {'long-polling':>14} {'websocket':>12}")
    for server in args.server or ["bayeux", "faye"]:
        lp = measure(server, "long-polling", args.clients)
        ws = measure(server, "websocket", args.clients)
        print(f"{server:<8} {lp:>14.1f} {ws:>12.1f}", flush=True)


if __name__ == "__main__":
    main()
