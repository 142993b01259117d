"""The Bayeux work of a long-polling request without any I/O: what `PollingExchange` costs
(decode, the core's `handle`, encode, the response's headers) for the requests of
benchmarks/requests.py, a publish to the client's own channel and the connect it answers.
The rest of a request's cost is the connection layer and the HTTP stack (http_floor.py).

    .venv/bin/python benchmarks/exchange.py
    .venv/bin/python benchmarks/exchange.py --server-extensions 1 --session-extensions 1

With extensions, each is a plain (synchronous) pass-through: what the hooks' machinery costs a
server whose extensions never await.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bayeux import Endpoint, Extension, Settings  # noqa: E402
from bayeux.transports.http import HttpRequest  # noqa: E402
from bayeux.transports.polling import PollingExchange  # noqa: E402

HEADERS = {
    "host": "127.0.0.1:8080",
    "connection": "keep-alive",
    "content-type": "application/json",
    "content-length": "100",
}
# Every header line, as both HTTP layers hand them over (for the request context).
LINES = tuple(HEADERS.items())


async def exchange(endpoint: Endpoint, messages: list[dict]) -> bytes:
    body = orjson.dumps(messages)
    request = HttpRequest(
        "POST", "/cometd", "", dict(HEADERS), body, "127.0.0.1", header_lines=LINES
    )
    answer = PollingExchange(endpoint, request)
    assert answer.early_refusal(len(body)) is None
    response = await answer.respond()
    assert response is not None and response.status == 200
    return response.body


class PassThrough(Extension):
    def incoming(self, session, message):
        return True

    def outgoing(self, session, message):
        return True


async def main(
    rounds: int = 20000, server_extensions: int = 0, session_extensions: int = 0
) -> None:
    endpoint = Endpoint(
        Settings(max_sessions_per_browser=-1, max_handshakes_per_address=-1, browser_cookie="")
    )
    handshake = {
        "channel": "/meta/handshake",
        "version": "1.0",
        "supportedConnectionTypes": ["long-polling"],
    }
    for _ in range(server_extensions):
        endpoint.server.add_extension(PassThrough())
    client_id = orjson.loads(await exchange(endpoint, [handshake]))[0]["clientId"]
    for _ in range(session_extensions):
        endpoint.server.sessions[client_id].add_extension(PassThrough())
    first = {"channel": "/meta/connect", "clientId": client_id, "connectionType": "long-polling"}
    await exchange(endpoint, [{**first, "advice": {"timeout": 0}}])
    subscribe = {"channel": "/meta/subscribe", "clientId": client_id, "subscription": "/b/1"}
    await exchange(endpoint, [subscribe])
    publish = [{"channel": "/b/1", "clientId": client_id, "data": {"n": 1}}]
    connect = [first]
    started = time.process_time()
    for _ in range(rounds):
        await exchange(endpoint, publish)
        await exchange(endpoint, connect)
    seconds = time.process_time() - started
    print(f"{seconds / (2 * rounds) * 1e6:.1f} us of CPU per request (a publish and a connect)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=20000)
    parser.add_argument("--server-extensions", type=int, default=0)
    parser.add_argument("--session-extensions", type=int, default=0)
    args = parser.parse_args()
    asyncio.run(main(args.rounds, args.server_extensions, args.session_extensions))
