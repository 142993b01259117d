"""Fan-out through a deployment on Redis, side by side, in one run on 127.0.0.1:

- bayeux: one process, no Redis (the in-process default)
- bayeux-redis: `python -m bayeux --workers 2 --redis URL` (two processes on one port)
- faye-redis: two Faye 1.4.3 processes with the faye-redis engine on the same Redis

    .venv/bin/python benchmarks/cluster.py
    .venv/bin/python benchmarks/cluster.py --subscribers 500 --messages 400 --rate 200

Subscribers hold WebSockets (benchmarks/fanout.py's load); with two Faye processes they
alternate between the two ports, and the kernel spreads them over bayeux's two workers. The
efficiency figure is deliveries per CPU-second of every process of the deployment: the
servers and redis-server. The load generator's own CPU is printed too: on a 2-core machine it
shares the cores, and its CPU per second says whether it was the limit.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import fanout  # noqa: E402
import servers  # noqa: E402

from bayeux.testing import child_pids, free_port, stop_process, wait_for_port  # noqa: E402

DEPLOYMENTS = ("bayeux", "bayeux-redis", "faye-redis")


class Deployment:
    """The processes of one deployment, their URLs, and the CPU they have used."""

    def __init__(self, name: str, workers: int = 2, options: tuple[str, ...] = ()) -> None:
        self.name = name
        self.workers = workers
        self.options = options
        self.processes: list[subprocess.Popen] = []
        self.urls: list[str] = []
        self.pids: list[int] = []

    def start(self) -> None:
        if self.name != "bayeux":
            redis_port = free_port()
            redis = subprocess.Popen(
                [shutil.which("redis-server") or "redis-server", "--port", str(redis_port),
                 "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                stdout=subprocess.DEVNULL,
            )  # fmt: skip
            wait_for_port(redis_port, redis)
            self.processes.append(redis)
            self.pids.append(redis.pid)
        if self.name == "bayeux":
            port = free_port()
            process = servers.start("bayeux", port)
            self.processes.append(process)
            self.pids.append(process.pid)
            self.urls.append(f"http://127.0.0.1:{port}/cometd")
        elif self.name == "bayeux-redis":
            port = free_port()
            redis_url = f"redis://127.0.0.1:{redis_port}/0"
            parent = servers.start(
                "bayeux", port, "--workers", str(self.workers), "--redis", redis_url, *self.options
            )
            self.processes.append(parent)
            if self.workers == 1:
                self.pids.append(parent.pid)
            else:
                deadline = time.monotonic() + 20
                while len(child_pids(parent.pid)) < self.workers and time.monotonic() < deadline:
                    time.sleep(0.05)
                self.pids.extend(child_pids(parent.pid))
            self.urls.append(f"http://127.0.0.1:{port}/cometd")
            time.sleep(1.0)  # both workers bound and their engines ready
        else:
            for _ in range(2):
                port = free_port()
                process = subprocess.Popen(
                    ["node", str(ROOT / "interop" / "peers" / "faye_redis_server.cjs"), str(port),
                     "30", str(redis_port)],
                    cwd=ROOT,
                    stdout=subprocess.DEVNULL,
                )  # fmt: skip
                wait_for_port(port, process)
                self.processes.append(process)
                self.pids.append(process.pid)
                self.urls.append(f"http://127.0.0.1:{port}/cometd")

    def cpu(self) -> float:
        return sum(servers.cpu_seconds(pid) for pid in self.pids)

    def redis_cpu(self) -> float:
        return servers.cpu_seconds(self.pids[0]) if self.name != "bayeux" else 0.0

    def stop(self) -> None:
        for process in reversed(self.processes):
            stop_process(process)


async def load(deployment: Deployment, args: argparse.Namespace) -> dict:
    channel = "/bench/fanout"
    urls = deployment.urls
    subs = [fanout.Subscriber(urls[i % len(urls)]) for i in range(args.subscribers)]
    for i in range(0, args.subscribers, 50):
        await asyncio.gather(*(s.join(channel) for s in subs[i : i + 50]))
    publisher = fanout.Subscriber(urls[0])
    await publisher.join("/bench/unused")
    listeners = [asyncio.ensure_future(s.listen(args.messages, channel)) for s in subs]
    cpu_before, redis_before = deployment.cpu(), deployment.redis_cpu()
    own_before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.monotonic()
    text = "x" * args.payload
    for i in range(0, args.messages, args.burst):
        await publisher.send(
            *(
                {"channel": channel, "data": {"n": n, "sent": time.time(), "text": text}}
                for n in range(i, min(i + args.burst, args.messages))
            )
        )
        delay = started + (i + args.burst) / args.rate - time.monotonic() if args.rate else 0
        await asyncio.sleep(max(0.0, delay))
    done, pending = await asyncio.wait(listeners, timeout=args.deadline)
    elapsed = time.monotonic() - started
    cpu, redis_cpu = deployment.cpu() - cpu_before, deployment.redis_cpu() - redis_before
    own_after = resource.getrusage(resource.RUSAGE_SELF)
    own = (own_after.ru_utime + own_after.ru_stime) - (own_before.ru_utime + own_before.ru_stime)
    for task in pending:
        task.cancel()
    for s in [*subs, publisher]:
        if s.ws is not None:
            s.ws.close()
    latencies = sorted(x * 1000 for s in subs for x in s.latencies)
    return {
        "delivered": len(latencies),
        "expected": args.subscribers * args.messages,
        "seconds": elapsed,
        "cpu": max(cpu, 1e-9),
        "redis_cpu": redis_cpu,
        "loader_cpu": own,
        "p50": statistics.median(latencies) if latencies else float("nan"),
        "p99": latencies[int(0.99 * (len(latencies) - 1))] if latencies else float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--deployment", action="append", choices=DEPLOYMENTS)
    parser.add_argument("--subscribers", type=int, default=200)
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--burst", type=int, default=10)
    parser.add_argument("--payload", type=int, default=100)
    parser.add_argument("--rate", type=float, default=0, help="messages/s; 0: flat out")
    parser.add_argument("--deadline", type=float, default=60)
    parser.add_argument("--workers", type=int, default=2, help="bayeux-redis's processes")
    parser.add_argument(
        "--bayeux-option",
        action="append",
        default=[],
        help="an option for bayeux-redis's command line (repeat for more), e.g. "
        "--bayeux-option=--redis-sync-interval=1000",
    )
    args = parser.parse_args()
    pace = f"{args.rate:g} messages/s" if args.rate else "as fast as possible"
    print(
        f"{pace}; {args.subscribers} WebSocket subscribers, {args.messages} messages of"
        f" {args.payload} B in bursts of {args.burst}; python {sys.version.split()[0]},"
        f" {os.cpu_count()} CPUs"
    )
    print(
        f"{'deployment':<13} {'delivered':>17} {'per second':>11} {'per CPU-sec':>12}"
        f" {'redis CPU-s':>11} {'p50 ms':>8} {'p99 ms':>8} {'loader CPU/s':>12}"
    )
    for name in args.deployment or DEPLOYMENTS:
        deployment = Deployment(name, args.workers, tuple(args.bayeux_option))
        deployment.start()
        try:
            r = asyncio.run(load(deployment, args))
        finally:
            deployment.stop()
        rate = r["delivered"] / r["seconds"]
        print(
            f"{name:<13} {r['delivered']:>8}/{r['expected']:<8} {rate:>10.0f}"
            f" {r['delivered'] / r['cpu']:>12.0f} {r['redis_cpu']:>11.2f} {r['p50']:>8.1f}"
            f" {r['p99']:>8.1f} {r['loader_cpu'] / r['seconds']:>12.2f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
