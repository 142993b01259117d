"""What one Redis stream costs Redis as the processes reading it grow: the shape of bayeux's
message log (one XADD per published message, one blocking XREAD per process), without bayeux.

    .venv/bin/python benchmarks/redis_stream.py [--readers 1,10,50,200] [--rate 100]

W reader connections each loop on `XREAD BLOCK 5000 COUNT 1000` from their last id, as every
bayeux process does; one writer appends --payload-byte entries at --rate a second for
--seconds. Redis's CPU (INFO used_cpu_user + used_cpu_sys) is read before and after: its CPU
per appended message, and per message and reader, are the figures docs/capacity.md uses to
say where one stream stops being enough. The readers run in a few asyncio processes of their
own so that they keep up; a row where they did not (entries read < W x entries written) says
so. Bounded by --seconds per row.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import redis
import redis.asyncio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bayeux.testing import free_port, stop_process, wait_for_port  # noqa: E402

STREAM = "bench:log"


async def read(port: int, count: int, seconds: float) -> int:
    """`count` readers following the stream for `seconds`; entries read in all."""
    clients = [redis.asyncio.Redis(port=port) for _ in range(count)]
    read_total = 0
    end = time.monotonic() + seconds

    async def follow(client: Any) -> None:
        nonlocal read_total
        last = "$"
        while time.monotonic() < end:
            answer = await client.xread({STREAM: last}, count=1000, block=500)
            for _, items in answer:
                read_total += len(items)
                last = items[-1][0]

    await asyncio.gather(*(follow(c) for c in clients))
    for c in clients:
        await c.aclose()
    return read_total


def reader_process(port: int, count: int, seconds: float) -> None:
    print(asyncio.run(read(port, count, seconds)), flush=True)


def row(port: int, readers: int, rate: float, seconds: float, payload: int) -> dict[str, Any]:
    client = redis.Redis(port=port)
    client.delete(STREAM)
    groups = max(1, min(8, readers // 25 or 1))
    shares = [readers // groups + (1 if i < readers % groups else 0) for i in range(groups)]
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, "--reader", str(port), str(share), str(seconds + 2)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for share in shares
        if share
    ]
    time.sleep(1.5)  # every reader blocked on its XREAD
    before = client.info("cpu")
    started = time.monotonic()
    written = 0
    entry = {"m": "x" * payload}
    while time.monotonic() - started < seconds:
        due = started + written / rate
        time.sleep(max(0.0, due - time.monotonic()))
        client.xadd(STREAM, entry, maxlen=100_000, approximate=True)
        written += 1
    elapsed = time.monotonic() - started
    after = client.info("cpu")
    got = sum(int(p.communicate(timeout=seconds + 30)[0].strip() or 0) for p in procs)
    cpu = (after["used_cpu_user"] + after["used_cpu_sys"]) - (
        before["used_cpu_user"] + before["used_cpu_sys"]
    )
    client.close()
    return {
        "readers": readers,
        "rate": rate,
        "written": written,
        "read": got,
        "kept_up": got >= 0.98 * written * readers and written >= 0.98 * rate * seconds,
        "redis_cpu_per_s": round(cpu / elapsed, 3),
        "redis_us_per_message": round(cpu / written * 1e6, 1),
        "redis_us_per_message_reader": round(cpu / written / max(readers, 1) * 1e6, 2),
    }


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--reader":
        reader_process(int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--readers", default="1,10,50,200")
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--payload", type=int, default=300)
    args = parser.parse_args()
    port = free_port()
    server = subprocess.Popen(
        [shutil.which("redis-server") or "redis-server", "--port", str(port), "--bind",
         "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for_port(port, server)
        print(f"redis-server on {os.cpu_count()} cores; {args.payload} B entries at {args.rate}/s")
        rows = []
        for readers in (int(r) for r in args.readers.split(",")):
            rows.append(row(port, readers, args.rate, args.seconds, args.payload))
            print(json.dumps(rows[-1]), flush=True)
    finally:
        stop_process(server)


if __name__ == "__main__":
    main()
