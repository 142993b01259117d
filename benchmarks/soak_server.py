"""The server a soak run measures: `python -m bayeux`'s endpoint with its default settings, plus
a `/soak-stats` route reporting open sessions and what was refused or dropped. Run by soak.py."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import tracemalloc
from pathlib import Path

import tornado.web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bayeux import Endpoint, Settings  # noqa: E402
from bayeux.testing import ServerThread  # noqa: E402

# SOAK_TRACEMALLOC=1 adds the biggest allocation growths since start to the stats: for finding
# what grows when the RSS curve is not flat.
TRACE = os.environ.get("SOAK_TRACEMALLOC") == "1"
if TRACE:
    tracemalloc.start(8)
    baseline = tracemalloc.take_snapshot()


class Stats(tornado.web.RequestHandler):
    def initialize(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint

    def get(self) -> None:
        server = self.endpoint.server
        self.set_header("Content-Type", "application/json")
        stats = {
            "sessions": len(server.sessions),
            "connections": self.endpoint.connections,
            "refused": dict(server.stats.refused),
            "dropped": dict(server.stats.dropped),
            "errors": dict(server.stats.errors),
        }
        if TRACE:
            growth = tracemalloc.take_snapshot().compare_to(baseline, "traceback")
            stats["growth"] = [
                f"{d.size_diff // 1024} KiB {d.count_diff} blocks: "
                + " < ".join(f"{f.filename.rsplit('/', 2)[-1]}:{f.lineno}" for f in d.traceback[:6])
                for d in growth[:8]
            ]
        self.finish(json.dumps(stats))


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
