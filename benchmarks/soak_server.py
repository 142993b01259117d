"""The server a soak run measures: `python -m bayeux`'s endpoint with its default settings, plus
a `/soak-stats` route reporting open sessions and what was refused or dropped. Run by soak.py."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
import tracemalloc
from pathlib import Path

import tornado.netutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bayeux import Endpoint, Settings  # noqa: E402
from bayeux.transports.http import HttpResponse  # noqa: E402

# SOAK_TRACEMALLOC=1 adds the biggest allocation growths since start to the stats: for finding
# what grows when the RSS curve is not flat.
TRACE = os.environ.get("SOAK_TRACEMALLOC") == "1"
if TRACE:
    tracemalloc.start(8)
    baseline = tracemalloc.take_snapshot()


def soak_stats(endpoint: Endpoint) -> HttpResponse:
    server = endpoint.server
    stats: dict = {
        "sessions": len(server.sessions),
        "connections": endpoint.connections,
        "refused": dict(server.stats.refused),
        "dropped": dict(server.stats.dropped),
        "errors": dict(server.stats.errors),
    }
    engine = endpoint.engine
    if engine is not None:
        stats["moved"] = {"claims": engine.claims, "handoffs": engine.handoffs}
    if TRACE:
        growth = tracemalloc.take_snapshot().compare_to(baseline, "traceback")
        stats["growth"] = [
            f"{d.size_diff // 1024} KiB {d.count_diff} blocks: "
            + " < ".join(f"{f.filename.rsplit('/', 2)[-1]}:{f.lineno}" for f in d.traceback[:6])
            for d in growth[:8]
        ]
    return HttpResponse(200, [("Content-Type", "application/json")], json.dumps(stats).encode())


async def serve() -> None:
    """As `python -m bayeux` serves: the endpoint on the main thread's loop, the bounded
    listener, SIGTERM to stop. With SOAK_REDIS (a Redis URL) and SOAK_PORT, as one worker of
    `--workers N --redis`: on that port shared with the others (SO_REUSEPORT), and on a port of
    its own for soak.py to read this worker's stats."""
    redis_url = os.environ.get("SOAK_REDIS")
    engine = None
    if redis_url:
        from bayeux.engines.redis import RedisEngine

        engine = RedisEngine(redis_url, "soak")
    endpoint = Endpoint(Settings(), engine=engine)
    shared = int(os.environ.get("SOAK_PORT", "0"))
    sockets = tornado.netutil.bind_sockets(shared, "127.0.0.1", reuse_port=bool(shared))
    own = tornado.netutil.bind_sockets(0, "127.0.0.1")
    listener = endpoint.listener(
        "/cometd", extra={"/soak-stats": lambda request: soak_stats(endpoint)}
    )
    listener.add_sockets(sockets + own)
    endpoint.start()
    print(sockets[0].getsockname()[1], own[0].getsockname()[1], flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    listener.stop()
    await endpoint.shutdown(0.1)


def main() -> None:
    logging.basicConfig(level=logging.ERROR)
    asyncio.run(serve())


if __name__ == "__main__":
    main()
