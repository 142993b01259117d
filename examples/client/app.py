"""bayeux.client against a running server: subscribe, publish, and stop after the echo.

Run a server (./serve), then:   .venv/bin/python examples/client/app.py http://127.0.0.1:8080/cometd
(pip install 'bayeux-server[client]')
"""

from __future__ import annotations

import asyncio
import sys

from bayeux.client import AckExtension, Client


async def main(url: str) -> None:
    async with Client(url, extensions=[AckExtension()]) as client:
        print("connected over", client.transport.name if client.transport else None)
        got = asyncio.Event()

        async def show(message: dict) -> None:
            print("received", message["channel"], message["data"])
            got.set()

        await client.subscribe("/demo/*", show)
        reply = await client.publish("/demo/hello", {"text": "hi"})
        print("published", reply["successful"])
        await asyncio.wait_for(got.wait(), 10)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8080/cometd"))
