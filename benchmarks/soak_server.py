"""The server a soak run measures: `python -m bayeux`'s endpoint with its default settings, plus
a `/soak-stats` route reporting open sessions and what was refused or dropped. Run by soak.py."""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
from pathlib import Path

import tornado.web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bayeux import Endpoint, Settings  # noqa: E402
from bayeux.testing import ServerThread  # noqa: E402


class Stats(tornado.web.RequestHandler):
    def initialize(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint

    def get(self) -> None:
        server = self.endpoint.server
        self.set_header("Content-Type", "application/json")
        self.finish(
            json.dumps(
                {
                    "sessions": len(server.sessions),
                    "connections": self.endpoint.connections,
                    "refused": dict(server.stats.refused),
                    "dropped": dict(server.stats.dropped),
                    "errors": dict(server.stats.errors),
                }
            )
        )


def main() -> None:
    logging.basicConfig(level=logging.ERROR)
    endpoint = Endpoint(Settings())
    server = ServerThread(
        endpoint=endpoint, extra_routes=[("/soak-stats", Stats, {"endpoint": endpoint})]
    )
    server.start()
    print(server.port, flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    server.stop()


if __name__ == "__main__":
    main()
