"""The capacity model of docs/capacity.md as arithmetic: processes, memory and Redis load for N
clients each receiving r messages a second, published on one channel for all or in rooms.

    .venv/bin/python benchmarks/capacity_model.py [--clients 1000000] [--rates 1,10,100]

Every constant is a figure measured on the project's machine (docs/capacity.md says where);
--speed scales the CPU figures for faster cores.
"""

from __future__ import annotations

import argparse
import math

DELIVERY_US = 27.0  # server CPU per WebSocket delivery (scale.py, 18,000 in one process)
IDLE_US = 1.7  # server CPU per idle client a second (renewed connects, pings)
KIB_PER_CLIENT = 9.3  # RSS per WebSocket client, Redis included (100,000 over 6 workers)
MIB_PER_PROCESS = 40.0  # RSS of a process with no client
MAX_PER_PROCESS = 16_000  # clients a process, under the 20,000 open files here
UTILIZATION = 0.7  # of a core, the most a process is planned to use
PROCESS_COMMANDS = 16.7  # Redis commands a second a process makes, idle
XADD_US = 36.0  # Redis CPU to append one entry (redis_stream.py)
READ_US = 15.0  # Redis CPU per XREAD answered with an entry (redis_stream.py)
BATCHED_US = 2.0  # Redis CPU per further entry in one XREAD's answer
XREADS_PER_S = 1000.0  # XREADs a process makes a second at most (each waits for the last)
ENTRY_BYTES = 700  # a 100-byte message's log entry, as an XREAD returns it
DECODE_US = 10.0  # a process's CPU to read and decode one log entry
ROOM = 1000  # subscribers of a room


def row(clients: int, rate: float, rooms: bool, speed: float) -> dict[str, float]:
    per_core = UTILIZATION / ((IDLE_US + rate * DELIVERY_US) / speed * 1e-6)
    per_process = min(MAX_PER_PROCESS, per_core)
    processes = math.ceil(clients / per_process)
    published = rate * clients / ROOM if rooms else rate
    reads = published * processes  # each process reads every entry of the one log
    xreads = processes * min(published, XREADS_PER_S)
    redis_cpu = (
        (published * XADD_US + xreads * READ_US + (reads - xreads) * BATCHED_US) / speed * 1e-6
    )
    return {
        "processes": processes,
        "per_process": clients / processes,
        "memory_gib": (clients * KIB_PER_CLIENT / 1024 + processes * MIB_PER_PROCESS) / 1024,
        "deliveries": rate * clients,
        "published": published,
        "redis_commands": processes * PROCESS_COMMANDS + published + xreads,
        "redis_out_mb": reads * ENTRY_BYTES / 1e6,
        "redis_cores": redis_cpu,
        "decode_share": published * DECODE_US / speed * 1e-6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=1_000_000)
    parser.add_argument("--rates", default="1,10,100")
    parser.add_argument("--speed", type=float, default=1.0, help="cores this much faster")
    args = parser.parse_args()
    print(
        "| messages/s to each client | published as | processes (clients each) | RSS |"
        " messages published/s | Redis commands/s | Redis bytes out/s | Redis cores |"
        " log decoding, share of each process |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for rate in (float(r) for r in args.rates.split(",")):
        for rooms in (False, True):
            r = row(args.clients, rate, rooms, args.speed)
            print(
                f"| {rate:g} | {'rooms of 1,000' if rooms else 'one channel'} |"
                f" {r['processes']:,} ({r['per_process']:,.0f}) | {r['memory_gib']:.1f} GiB |"
                f" {r['published']:,.0f} | {r['redis_commands']:,.0f} |"
                f" {r['redis_out_mb']:,.1f} MB | {r['redis_cores']:.2f} |"
                f" {r['decode_share']:.0%} |"
            )


if __name__ == "__main__":
    main()
