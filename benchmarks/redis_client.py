"""What one Redis command costs the engine's process in CPU, through redis-py (the client the
engine uses, with hiredis) and through a bare asyncio socket: the fixed cost a burst of
publishes pays once for the script that appends it and once per process that reads it
(benchmarks/cluster.py). Starts its own redis-server on a free loopback port.

    .venv/bin/python benchmarks/redis_client.py
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bayeux.engines.redis import scripts  # noqa: E402
from bayeux.engines.redis.client import redis_client  # noqa: E402
from bayeux.testing import free_port, stop_process, wait_for_port  # noqa: E402

MESSAGE = orjson.dumps({"channel": "/bench/1", "data": {"n": 1, "text": "x" * 100}, "id": "1"})


async def cpu_per_call(call: Callable[[], Awaitable[Any]], rounds: int) -> float:
    await call()
    started = time.process_time()
    for _ in range(rounds):
        await call()
    return (time.process_time() - started) / rounds * 1e6


async def main(port: int, rounds: int) -> None:
    client = redis_client(f"redis://127.0.0.1:{port}/0", socket_timeout=10)
    append = client.register_script(scripts.script("APPEND"))
    burst: list[Any] = [100_000]
    for _ in range(10):
        burst += [2, "m", MESSAGE, "o", "0123456789abcdef"]
    await append(keys=["log"], args=burst)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)

    async def bare_ping() -> None:
        writer.write(b"*1\r\n$4\r\nPING\r\n")
        await reader.readline()

    cases: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
        ("bare asyncio socket: PING", bare_ping),
        ("redis-py: PING", client.ping),
        ("redis-py: XREAD of a burst of 10", lambda: client.xread({"log": "0-0"}, count=1000)),
        ("redis-py: the APPEND script, a burst of 10", lambda: append(keys=["x"], args=burst)),
    ]
    for name, call in cases:
        print(f"{name:<44} {await cpu_per_call(call, rounds):7.1f} us of CPU")
    writer.close()
    await client.aclose()


if __name__ == "__main__":
    port = free_port()
    server = subprocess.Popen(
        [shutil.which("redis-server") or "redis-server", "--port", str(port)]
        + ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, server)
        asyncio.run(main(port, 3000))
    finally:
        stop_process(server)
