"""Messages to users against broadcasts, per CPU-second, through one bayeux process on Redis.

    .venv/bin/python benchmarks/users.py
    .venv/bin/python benchmarks/users.py --users 1000 --rate 100 --seconds 10

--users WebSocket clients connect, each the only session of its own user (the handshake's
`ext.user`, associated through --app by install_users of tests/helpers/app_hooks.py), and all
subscribe to one channel. Then two phases, each paced for --seconds:

- to-user: --rate messages a second, each `deliver_to_user` to the next user in turn (from this
  process, with bayeux.publisher.Publisher: through the deployment's log, as from any process);
  one delivery each.
- broadcast: --broadcast-rate messages a second published to the channel all subscribe to
  (with the same Publisher); --users deliveries each.

Reported per phase: deliveries, deliveries per CPU-second of the server and of redis-server,
latency percentiles (publisher to subscriber), and the load generator's CPU per second (on a
2-core machine it shares the cores: above ~0.8 it was the limit). Everything is bounded: a
phase stops after --deadline seconds whatever happens.
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

from bayeux.publisher import Publisher  # noqa: E402
from bayeux.testing import free_port, stop_process, wait_for_port  # noqa: E402

CHANNEL = "/bench/all"
INBOX = "/bench/inbox"


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def phase(
    name: str,
    users: list[fanout.Subscriber],
    publisher: Publisher,
    rate: float,
    seconds: float,
    deadline: float,
    pids: dict[str, int],
) -> None:
    count = int(rate * seconds)
    to_user = name == "to-user"
    channel = INBOX if to_user else CHANNEL
    per_user = count // len(users) if to_user else count
    for user in users:
        user.latencies = []
    listeners = [asyncio.ensure_future(u.listen(per_user, channel)) for u in users]
    cpu_before = {k: servers.cpu_seconds(pid) for k, pid in pids.items()}
    own_before = own_cpu()
    started = time.monotonic()
    for n in range(per_user * len(users) if to_user else count):
        data = {"n": n, "sent": time.time()}
        if to_user:
            await publisher.deliver_to_user(f"u{n % len(users)}", INBOX, data)
        else:
            await publisher.publish(CHANNEL, data)
        await asyncio.sleep(max(0.0, started + (n + 1) / rate - time.monotonic()))
    done, pending = await asyncio.wait(listeners, timeout=deadline)
    elapsed = time.monotonic() - started
    for task in pending:
        task.cancel()
    cpu = {k: servers.cpu_seconds(pid) - cpu_before[k] for k, pid in pids.items()}
    latencies = sorted(x for u in users for x in u.latencies)
    delivered = len(latencies)
    expected = per_user * len(users)
    p50 = statistics.median(latencies) * 1000 if latencies else float("nan")
    p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000 if latencies else float("nan")
    print(
        f"{name:<10} {delivered:>8}/{expected:<8} {delivered / elapsed:>9.0f}/s"
        f" {delivered / max(cpu['server'], 1e-9):>12.0f} {cpu['server'] / elapsed:>8.2f}"
        f" {cpu['redis'] / elapsed:>8.2f} {(own_cpu() - own_before) / elapsed:>8.2f}"
        f" {p50:>8.1f} {p99:>8.1f}"
    )


async def run(args: argparse.Namespace, url: str, redis_url: str, pids: dict[str, int]) -> None:
    users = [fanout.Subscriber(url) for _ in range(args.users)]
    for i in range(0, args.users, 50):
        batch = range(i, min(i + 50, args.users))
        await asyncio.gather(*(users[j].join(CHANNEL, {"user": f"u{j}"}) for j in batch))
    async with Publisher(redis_url) as publisher:
        print(
            f"{'phase':<10} {'delivered':>17} {'per second':>11} {'per srv CPU-s':>12}"
            f" {'srv CPU':>8} {'redis':>8} {'loadgen':>8} {'p50 ms':>8} {'p99 ms':>8}"
        )
        await phase("to-user", users, publisher, args.rate, args.seconds, args.deadline, pids)
        await phase(
            "broadcast", users, publisher, args.broadcast_rate, args.seconds, args.deadline, pids
        )
    for user in users:
        if user.ws is not None:
            user.ws.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=100, help="messages to users a second")
    parser.add_argument("--broadcast-rate", type=float, default=10, help="broadcasts a second")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--deadline", type=float, default=60)
    args = parser.parse_args()
    redis_port, port = free_port(), free_port()
    redis = subprocess.Popen(
        [shutil.which("redis-server") or "redis-server", "--port", str(redis_port),
         "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    server = None
    try:
        wait_for_port(redis_port, redis)
        redis_url = f"redis://127.0.0.1:{redis_port}/0"
        server = servers.start(
            "bayeux", port, "--redis", redis_url, "--app", "tests.helpers.app_hooks:install_users"
        )
        print(
            f"{args.users} users over WebSocket, one session each; to-user {args.rate:g}/s,"
            f" broadcast {args.broadcast_rate:g}/s, {args.seconds:g} s each; python"
            f" {sys.version.split()[0]}, {os.cpu_count()} CPUs"
        )
        pids = {"server": server.pid, "redis": redis.pid}
        asyncio.run(run(args, f"http://127.0.0.1:{port}/cometd", redis_url, pids))
    finally:
        if server is not None:
            stop_process(server)
        stop_process(redis)


if __name__ == "__main__":
    main()
