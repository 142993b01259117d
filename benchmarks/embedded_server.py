"""The endpoint mounted in a Tornado Application on Tornado's HTTPServer, as an application that
embeds it runs it: the comparison point for the standalone connection layer.
Usage: python benchmarks/embedded_server.py --port N [--timeout MS] [--sync-extensions]

--sync-extensions installs a pass-through server extension and one on every session (plain
methods, never awaiting): what the extension machinery costs when nothing awaits."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

import tornado.httpserver
import tornado.web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bayeux import Endpoint, Extension, ServerSession, Settings  # noqa: E402


class PassThrough(Extension):
    def incoming(self, session, message):
        return True

    def outgoing(self, session, message):
        return True


async def serve(port: int, timeout: int, extensions: bool = False) -> None:
    endpoint = Endpoint(
        Settings(timeout=timeout, max_sessions_per_browser=-1, max_handshakes_per_address=-1)
    )
    if extensions:
        endpoint.server.add_extension(PassThrough())

        def own_extension(session: ServerSession) -> None:
            session.add_extension(PassThrough())

        endpoint.server.on_session_added(own_extension)
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
    parser.add_argument("--sync-extensions", action="store_true")
    args = parser.parse_args()
    import logging

    logging.basicConfig(level=logging.ERROR)
    asyncio.run(serve(args.port, args.timeout, args.sync_extensions))


if __name__ == "__main__":
    main()
