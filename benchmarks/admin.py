"""What the admin page costs the server: fanout.py's WebSocket fan-out, run alternately against
`python -m bayeux` without the page, with it (`--admin-path`, nobody looking), and with it
watched (its API polled once a second, as the page does), in one sitting.

    .venv/bin/python benchmarks/admin.py                        # 5 rounds of each, default load
    .venv/bin/python benchmarks/admin.py --rounds 7 --subscribers 500 --messages 400

Reported per run and as medians: deliveries per CPU-second of the server process (the figure
docs/performance.md compares), and deliveries per second of wall time.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
from pathlib import Path

import tornado.httpclient

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import servers  # noqa: E402
from fanout import load  # noqa: E402

from bayeux.testing import free_port, stop_process  # noqa: E402

TOKEN = "benchmark-admin-token-0123456789"
MODES = ("without", "admin-unwatched", "admin-watched")


async def watch(admin: str) -> None:
    """What an open admin page asks: the overview every second, the lists every other."""
    client = tornado.httpclient.AsyncHTTPClient()
    headers = {"Authorization": f"Bearer {TOKEN}"}
    tick = 0
    while True:
        names = ["overview"] + (["sessions", "channels", "users"] if tick % 2 == 0 else [])
        for name in names:
            await client.fetch(f"{admin}/api/{name}", headers=headers)
        tick += 1
        await asyncio.sleep(1)


async def measured(
    mode: str, url: str, pid: int, args: argparse.Namespace
) -> tuple[int, float, float]:
    watching = (
        asyncio.ensure_future(watch(url.replace("/cometd", "/admin")))
        if mode == "admin-watched"
        else None
    )
    try:
        subs, elapsed, cpu = await load(
            url, args.subscribers, args.messages, args.burst, args.payload, args.deadline, pid
        )
    finally:
        if watching is not None:
            watching.cancel()
    return sum(len(s.latencies) for s in subs), elapsed, cpu


def run(mode: str, args: argparse.Namespace) -> tuple[float, float]:
    port = free_port()
    extra = ("--admin-path", "/admin") if mode != "without" else ()
    os.environ["BAYEUX_ADMIN_TOKEN"] = TOKEN
    process = servers.start("bayeux", port, *extra)
    try:
        delivered, elapsed, cpu = asyncio.run(
            measured(mode, f"http://127.0.0.1:{port}/cometd", process.pid, args)
        )
    finally:
        stop_process(process)
    expected = args.subscribers * args.messages
    if delivered != expected:
        print(f"  {mode}: delivered {delivered} of {expected}", file=sys.stderr)
    return delivered / max(cpu, 1e-9), delivered / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--subscribers", type=int, default=200)
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--burst", type=int, default=10)
    parser.add_argument("--payload", type=int, default=100)
    parser.add_argument("--deadline", type=float, default=60)
    parser.add_argument(
        "--modes", default=",".join(MODES), help="comma-separated, of " + ", ".join(MODES)
    )
    args = parser.parse_args()
    modes = [m for m in args.modes.split(",") if m]
    print(
        f"{args.rounds} rounds; {args.subscribers} WebSocket subscribers, {args.messages} messages"
        f" of {args.payload} B in bursts of {args.burst}; python {sys.version.split()[0]},"
        f" {os.cpu_count()} CPUs"
    )
    figures: dict[str, list[tuple[float, float]]] = {m: [] for m in modes}
    for round_ in range(args.rounds):
        for mode in modes if round_ % 2 == 0 else reversed(modes):
            per_cpu, per_second = run(mode, args)
            figures[mode].append((per_cpu, per_second))
            print(
                f"round {round_ + 1} {mode:<16} {per_cpu:>10.0f}/CPU-s {per_second:>10.0f}/s",
                flush=True,
            )
    base = statistics.median(f[0] for f in figures[modes[0]])
    print(f"{'mode':<16} {'median /CPU-s':>14} {'vs ' + modes[0]:>14} {'median /s':>12}")
    for mode in modes:
        per_cpu = statistics.median(f[0] for f in figures[mode])
        per_second = statistics.median(f[1] for f in figures[mode])
        print(
            f"{mode:<16} {per_cpu:>14.0f} {100 * (per_cpu / base - 1):>+13.1f}% {per_second:>12.0f}"
        )


if __name__ == "__main__":
    main()
