"""A tenth of the fleet restarting at once, simulated with the capacity model's figures
(docs/capacity.md): what the handoffs and handshakes cost Redis and the processes that stay,
and how long the moved clients wait.

    .venv/bin/python benchmarks/restart_model.py [--clients 1000000] [--per-process 16000]

No server runs here: this is arithmetic on measured costs. Each moved client, once its
connection drops, comes back within a reconnect window (spread evenly over it: clients back
off with jitter) to one of the processes that stay, which serves its new connection (server
CPU) and claims its session from Redis (Redis CPU); Redis runs one command at a time, each
process one core. Two ways to restart:

- drain (SIGTERM, a rolling deploy): the process answers held connects with advice to come
  back and releases every session to Redis (a RELEASE script each) before it exits; the
  clients claim them at once.
- crash (SIGKILL, a host lost): nothing is released; a claim finds the owner's `alive` key
  still there (it lives 3 s) and waits for an answer that never comes (--redis-handoff-timeout,
  2 s) before taking the session by force.

A session whose client is not back within maxInterval of losing its connection is ended
(reaped) and its client handshakes again: a handshake and a subscribe more, for Redis and for
the process. The defaults are the figures measured on this machine (2 cores, shared): scale
them by how much faster the target's cores are (--speed).
"""

from __future__ import annotations

import argparse
import heapq
import math
from dataclasses import dataclass

# Measured here (docs/capacity.md has where each comes from): benchmarks/redis_costs.py for
# Redis's CPU and the servers' per operation, the round-trip and command costs from
# redis-benchmark on the same machine.
REDIS_US_PER_HANDOFF = 380.0  # a connect claiming a session a live process serves
REDIS_US_PER_CLAIM = 230.0  # a claim with no owner to ask (released, or taken by force)
REDIS_US_PER_RELEASE = 25.0  # one RELEASE script in a pipeline of 1,000 (a drain)
REDIS_US_PER_REHANDSHAKE = 135.0  # a WebSocket client's handshake, subscribe, first connect
SERVER_US_PER_RECONNECT = 2720.0  # a connect claiming its session, on the process claiming
SERVER_US_PER_REHANDSHAKE = 1280.0  # a WebSocket client's whole setup on Redis
REDIS_BASELINE = 0.10  # Redis busy share before the restart (steady traffic)
SERVER_BASELINE = 0.50  # each process's busy share before the restart
ALIVE_SECONDS = 3.0  # a process's alive key outlives it by this much
HANDOFF_TIMEOUT = 2.0  # --redis-handoff-timeout
MAX_INTERVAL = 10.0  # --max-interval


@dataclass
class Outcome:
    mode: str
    window: float
    moved: int
    rehandshakes: int
    p50: float
    p99: float
    last: float
    redis_peak: float
    server_peak: float


def simulate(
    clients: int, per_process: int, fraction: float, mode: str, window: float, speed: float
) -> Outcome:
    processes = max(2, math.ceil(clients / per_process))
    restarting = max(1, round(processes * fraction))
    staying = processes - restarting
    moved = restarting * per_process if restarting * per_process <= clients else clients
    scale = 1.0 / speed
    redis_free = 0.0  # when Redis is next idle (seconds)
    busy: dict[int, float] = {}  # Redis busy seconds per 100 ms bucket

    def use_redis(at: float, seconds: float) -> float:
        nonlocal redis_free
        start = max(at, redis_free)
        redis_free = start + seconds
        t = start
        while t < redis_free:  # spread the busy time over the buckets it covers
            bucket = int(t * 10)
            end = min(redis_free, (bucket + 1) / 10)
            busy[bucket] = busy.get(bucket, 0.0) + end - t
            t = end
        return redis_free

    # Redis is busy at its baseline share all along: served as a slower Redis.
    redis_factor = 1.0 / max(1e-6, 1.0 - REDIS_BASELINE)
    server_factor = 1.0 / max(1e-6, 1.0 - SERVER_BASELINE)
    if mode == "drain":
        # Every restarting process releases its sessions first, pipelined.
        use_redis(0.0, moved * REDIS_US_PER_RELEASE * 1e-6 * scale * redis_factor)
    servers = [0.0] * staying  # when each staying process is next idle
    server_busy: dict[int, float] = {}
    waits: list[float] = []
    rehandshakes = 0
    arrivals = [window * (i + 0.5) / moved for i in range(moved)]
    heap: list[tuple[float, int]] = [(t, 0) for t in arrivals]  # (time, 1 if a rehandshake)
    heapq.heapify(heap)
    turn = 0
    while heap:
        at, again = heapq.heappop(heap)
        index = turn % staying
        turn += 1
        cost = (SERVER_US_PER_REHANDSHAKE if again else SERVER_US_PER_RECONNECT) * 1e-6
        cost *= scale * server_factor
        start = max(at, servers[index])
        servers[index] = start + cost
        bucket = int(start * 10)
        server_busy[bucket] = server_busy.get(bucket, 0.0) + cost / staying
        if again:
            done = use_redis(servers[index], REDIS_US_PER_REHANDSHAKE * 1e-6 * scale * redis_factor)
            waits.append(done)
            continue
        claimable = servers[index]
        if mode == "crash":
            # The owner still looks alive: asked, no answer, taken after the handoff timeout.
            claimable = max(claimable, min(ALIVE_SECONDS, claimable + HANDOFF_TIMEOUT))
        per = REDIS_US_PER_CLAIM if mode == "drain" else REDIS_US_PER_HANDOFF
        done = use_redis(claimable, per * 1e-6 * scale * redis_factor)
        # Released sessions are forgotten maxInterval after the drain; a crashed process's
        # once its alive key is gone too.
        forgotten_at = MAX_INTERVAL + (ALIVE_SECONDS if mode == "crash" else 0.0)
        if done > forgotten_at:
            # Reaped meanwhile: the client is told to handshake again.
            rehandshakes += 1
            heapq.heappush(heap, (done, 1))
            continue
        waits.append(done)
    waits.sort()
    redis_peak = max(busy.values(), default=0.0) * 10 / redis_factor + REDIS_BASELINE
    server_peak = max(server_busy.values(), default=0.0) * 10 / server_factor + SERVER_BASELINE
    return Outcome(
        mode=mode,
        window=window,
        moved=moved,
        rehandshakes=rehandshakes,
        p50=waits[len(waits) // 2],
        p99=waits[int(0.99 * (len(waits) - 1))],
        last=waits[-1],
        redis_peak=min(1.0, redis_peak),
        server_peak=min(1.0, server_peak),
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=1_000_000)
    parser.add_argument("--per-process", type=int, default=16_000)
    parser.add_argument("--fraction", type=float, default=0.1)
    parser.add_argument("--windows", default="1,5,15,30", help="reconnect windows, seconds")
    parser.add_argument("--speed", type=float, default=1.0, help="cores this much faster")
    args = parser.parse_args()
    processes = math.ceil(args.clients / args.per_process)
    print(
        f"{args.clients:,} clients, {args.per_process:,} a process ({processes} processes);"
        f" {args.fraction:.0%} of the processes restart at once; cores x{args.speed:g}"
    )
    print()
    print(
        "| restart | reconnect window (s) | sessions moved | handshakes again |"
        " served p50 (s) | p99 (s) | last (s) | Redis busiest 100 ms | process busiest |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for mode in ("drain", "crash"):
        for window in (float(w) for w in args.windows.split(",")):
            o = simulate(args.clients, args.per_process, args.fraction, mode, window, args.speed)
            print(
                f"| {o.mode} | {o.window:g} | {o.moved:,} | {o.rehandshakes:,} | {o.p50:.1f} |"
                f" {o.p99:.1f} | {o.last:.1f} | {o.redis_peak:.0%} | {o.server_peak:.0%} |"
            )


if __name__ == "__main__":
    main()
