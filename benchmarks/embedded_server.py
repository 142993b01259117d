"""The endpoint mounted in a Tornado Application on Tornado's HTTPServer, as an application that
embeds it runs it: the comparison point for the standalone connection layer.
Usage: python benchmarks/embedded_server.py --port N [--timeout MS]"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

import tornado.httpserver
import tornado.web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bayeux import Endpoint, Settings  # noqa: E402


async def serve(port: int, timeout: int) -> None:
    endpoint = Endpoint(
        Settings(timeout=timeout, max_sessions_per_browser=-1, max_handshakes_per_address=-1)
    )
    server = tornado.httpserver.HTTPServer(tornado.web.Application(endpoint.routes("/cometd")))
    server.listen(port, "127.0.0.1")
    endpoint.start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    server.stop()
    await endpoint.shutdown(1.0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--timeout", type=int, default=30000)
    args = parser.parse_args()
    import logging

    logging.basicConfig(level=logging.ERROR)
    asyncio.run(serve(args.port, args.timeout))


if __name__ == "__main__":
    main()
