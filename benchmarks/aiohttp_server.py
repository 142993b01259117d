"""The endpoint mounted in an aiohttp application (Endpoint.aiohttp_mount), for
benchmarks/servers.py's `bayeux-aiohttp`.
Usage: python benchmarks/aiohttp_server.py --port N [--timeout MS]"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bayeux import Endpoint, Settings  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--timeout", type=int, default=30000)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    endpoint = Endpoint(
        Settings(timeout=args.timeout, max_sessions_per_browser=-1, max_handshakes_per_address=-1)
    )
    app = web.Application()
    endpoint.aiohttp_mount(app, "/cometd")
    web.run_app(
        app,
        host="127.0.0.1",
        port=args.port,
        print=None,
        access_log=None,
        handler_args={"max_line_size": 65536},
    )


if __name__ == "__main__":
    main()
