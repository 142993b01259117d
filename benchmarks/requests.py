"""Long-polling request rate, side by side: bayeux (standalone and embedded), Faye and
cometd-nodejs-server, each alone in its own process on 127.0.0.1, driven by the same Node
load generator (benchmarks/http_load.mjs).

    .venv/bin/python benchmarks/requests.py                 # every server, 100 clients, 10 s
    .venv/bin/python benchmarks/requests.py --server bayeux --clients 50 --seconds 5
    .venv/bin/python benchmarks/requests.py --server bayeux --server cometd-nodejs \
        --server floor-tornado --server floor-asyncio     # with the floors (http_floor.py)

Each client loops one-message POSTs on a keep-alive connection: a publish to its own channel,
then a connect that the delivered message answers at once. Reported: requests per second of
wall time, p50/p99 latency, and requests per CPU-second of the server process (the fair figure
on a 2-core machine the load generator shares) with the load generator's CPU next to it, to show
which side was the limit.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from servers import FLOORS, SERVERS, rss_kib, run_node_load, start, stop_process  # type: ignore

from bayeux.testing import free_port


@dataclass
class Figures:
    server: str
    requests: int
    errors: int
    seconds: float
    server_cpu: float
    loadgen_cpu: float
    p50_ms: float
    p99_ms: float
    rss_mib: float

    def line(self) -> str:
        limit = "server" if self.server_cpu >= 0.9 * self.seconds else "load generator"
        return (
            f"{self.server:<24} {self.requests / self.seconds:>9.0f} {self.p50_ms:>7.2f}"
            f" {self.p99_ms:>7.2f} {self.requests / self.server_cpu:>12.0f}"
            f" {self.server_cpu / self.seconds:>8.0%} {self.loadgen_cpu / self.seconds:>8.0%}"
            f" {self.rss_mib:>8.1f} {self.errors:>6}  {limit}"
        )


HEADER = (
    f"{'server':<24} {'req/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'req/CPU-s':>12}"
    f" {'srv CPU':>8} {'gen CPU':>8} {'RSS MiB':>8} {'errors':>6}  limited by"
)


def run(server: str, clients: int, seconds: float) -> Figures:
    port = free_port()
    process = start(server, port)
    try:
        result, server_cpu = run_node_load(
            "http_load.mjs",
            process.pid,
            f"http://127.0.0.1:{port}/cometd",
            str(clients),
            str(seconds),
        )
        return Figures(
            server=server,
            requests=result["requests"],
            errors=result["errors"],
            seconds=result["seconds"],
            server_cpu=server_cpu,
            loadgen_cpu=result["loadgen_cpu_seconds"],
            p50_ms=result["p50_ms"],
            p99_ms=result["p99_ms"],
            rss_mib=rss_kib(process.pid) / 1024,
        )
    finally:
        stop_process(process)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--server",
        action="append",
        choices=SERVERS + FLOORS,
        help="default: every Bayeux server (the floors only when named)",
    )
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=10)
    args = parser.parse_args()
    print(f"{args.clients} clients, {args.seconds:g} s measured after 2 s of warm-up, 127.0.0.1")
    print(HEADER)
    for server in args.server or SERVERS:
        print(run(server, args.clients, args.seconds).line(), flush=True)


if __name__ == "__main__":
    main()
