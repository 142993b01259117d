"""What each per-session listener costs a delivery, in the core without I/O: a broadcast to
1,000 sessions of one process, each session with the listener (or none), drained after each
broadcast as a transport would.

    .venv/bin/python benchmarks/flow_cost.py
    .venv/bin/python benchmarks/flow_cost.py --sessions 1000 --broadcasts 300

Reported per case: CPU microseconds per delivery (the best of --repeat rounds, each round
running every case once: timings on a shared machine are noisy; compare cases of one run), and
the case's cost against no listener.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bayeux import BayeuxServer, Overflow, Settings  # noqa: E402
from bayeux.core.session import ServerSession  # noqa: E402

Setup = Callable[[BayeuxServer, ServerSession], None]


def nothing(server: BayeuxServer, session: ServerSession) -> None:
    pass


def queued(server: BayeuxServer, session: ServerSession) -> None:
    session.on_queued(lambda s, d: True)


def queue_full(server: BayeuxServer, session: ServerSession) -> None:
    session.on_queue_full(lambda s, d: Overflow.POLICY)  # never full here: never called


def dequeue(server: BayeuxServer, session: ServerSession) -> None:
    session.on_dequeue(lambda s, deliveries: None)


def events(server: BayeuxServer, session: ServerSession) -> None:
    session.on_held(lambda s: None)
    session.on_released(lambda s: None)
    session.on_removed(lambda s, reason: None)


CASES: dict[str, Setup] = {
    "no listener": nothing,
    "on_queued": queued,
    "on_queue_full (not full)": queue_full,
    "on_dequeue": dequeue,
    "held/released/removed": events,
}


def run(setup: Setup | None, sessions: int, broadcasts: int, conflate: bool, drain: bool) -> float:
    """Process CPU seconds per delivery, in microseconds; without `drain`, the sessions are
    readers left behind (nothing taken), so that a conflated channel merges every delivery."""
    server = BayeuxServer(Settings(max_sessions=sessions + 10))
    if conflate:
        # A reader that keeps up is conflated only once it has left its queue waiting `after`
        # (the API's 0.1 s); one left behind (not drained) with `after` 0, at every message.
        after = 0.1 if drain else 0.0
        server.channel("/prices/*").conflate(key=lambda m: m["data"]["k"], backlog=8, after=after)
    members = [server.create_session() for _ in range(sessions)]
    for session in members:
        server.subscribe(session, "/prices/*")
        if setup is not None:
            setup(server, session)
    started = time.process_time()
    for n in range(broadcasts):
        server.publish(f"/prices/s{n % 10}", {"k": n % 10, "v": n})
        if drain:
            for session in members:
                session.drain()
    return (time.process_time() - started) / (sessions * broadcasts) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--broadcasts", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    rows = [(name, setup, False, True) for name, setup in CASES.items()]
    rows.append(("conflation on the channel", None, True, True))
    rows.append(("conflation, every one merged", None, True, False))
    # Rounds interleave the cases, so that a change of the machine's load meets them all.
    best = {name: float("inf") for name, _, _, _ in rows}
    for _ in range(args.repeat):
        for name, setup, conflate, drain in rows:
            took = run(setup, args.sessions, args.broadcasts, conflate, drain)
            best[name] = min(best[name], took)
    base = best["no listener"]
    print(f"{args.sessions} sessions, {args.broadcasts} broadcasts, best of {args.repeat}")
    print(f"{'case':<30} {'us/delivery':>12} {'vs none':>8}")
    for name, _, _, _ in rows:
        print(f"{name:<30} {best[name]:>12.3f} {best[name] / base:>7.2f}x")


if __name__ == "__main__":
    main()
