"""The core's part of a fan-out, without I/O, for counting instructions with callgrind: --sessions
sessions subscribed to /prices/*, --publishes server-side publishes over 100 channels, and every
session's queue drained after each --burst publishes (as a WebSocket flush takes a loop turn's
messages).

    PYTHONHASHSEED=0 valgrind --tool=callgrind .venv/bin/python benchmarks/fanout_core.py \\
        --publishes 200
    (the same with --publishes 400; the difference of the two totals, divided by 200 publishes
    times 500 sessions, is the instructions a delivery costs, start-up left out)

It imports the bayeux of the directory it is run from (a worktree of another commit: run it
there with this file's path). With --conflate, /prices/* is conflated by channel with the API's
default backlog.
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.getcwd())

from bayeux import BayeuxServer, Settings  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=500)
    parser.add_argument("--publishes", type=int, default=200)
    parser.add_argument("--burst", type=int, default=10, help="publishes between two drains")
    parser.add_argument("--conflate", action="store_true")
    args = parser.parse_args()
    server = BayeuxServer(Settings(max_sessions=args.sessions + 10))
    if args.conflate:
        server.channel("/prices/*").conflate(key=lambda message: message["channel"], after=0)
    sessions = [server.create_session() for _ in range(args.sessions)]
    for session in sessions:
        server.subscribe(session, "/prices/*")
    channels = [f"/prices/K{k:03d}" for k in range(100)]
    for n in range(args.publishes):
        server.publish(channels[n % len(channels)], {"seq": n, "v": 1.5})
        if n % args.burst == args.burst - 1:
            for session in sessions:
                session.drain()
    import bayeux

    if not bayeux.__file__ or not bayeux.__file__.startswith(os.getcwd()):
        raise SystemExit(f"measured {bayeux.__file__}, not the bayeux of {os.getcwd()}")


if __name__ == "__main__":
    main()
