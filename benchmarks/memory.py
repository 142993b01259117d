"""Memory per idle client, side by side: bayeux (standalone and embedded), Faye and
cometd-nodejs-server on 127.0.0.1.

    .venv/bin/python benchmarks/memory.py [--clients 10000]

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

from servers import SERVERS, rss_kib, start  # noqa: E402

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


def measure(server: str, transport: str, count: int) -> float | None:
    if transport == "websocket" and server == "cometd-nodejs":
        return None  # cometd-nodejs-server serves HTTP transports only
    port = free_port()
    # The standalone server's connection bound (10,000 by default) would refuse the last ones.
    extra = ("--max-connections", str(2 * count + 100)) if server == "bayeux" else ()
    process = start(server, port, *extra)
    url = f"http://127.0.0.1:{port}/cometd"
    try:
        time.sleep(0.5)
        before = rss_kib(process.pid)

        async def run() -> float:
            if transport == "websocket":
                held = await open_websockets(url, count)
            else:
                held = await park_long_polls(url, count, first_connect_returns=server != "faye")
            await asyncio.sleep(1.0)
            after = rss_kib(process.pid)
            for item in held:
                item.close()
            return after

        after = asyncio.run(run())
    finally:
        stop_process(process)
    return (after - before) / count


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--server", action="append", choices=SERVERS, help="default: all")
    args = parser.parse_args()
    print(
        f"{args.clients} idle clients, each with a /meta/connect held; KiB of server RSS per client"
    )
    print(f"{'server':<20} {'long-polling':>14} {'websocket':>12}")
    for server in args.server or SERVERS:
        figures = [measure(server, t, args.clients) for t in ("long-polling", "websocket")]
        cells = [f"{f:.1f}" if f is not None else "n/a" for f in figures]
        print(f"{server:<20} {cells[0]:>14} {cells[1]:>12}", flush=True)


if __name__ == "__main__":
    main()
