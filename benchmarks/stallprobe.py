"""An event-loop stall probe for benchmarks, installed with `--app benchmarks.stallprobe:install`
(every worker runs it; the server itself has no probe): a task sleeps PERIOD at a time and
records by how much each wake was late and how much CPU the process used between two wakes
(lateness alone also counts the time the kernel gave the process's core to others), the longest
of each per WINDOW, in a file $BAYEUX_STALL_DIR/<pid>.json rewritten every second as
[[window start (time.time()), longest lateness in ms, longest CPU between wakes in ms,
longest garbage collection in ms, and in ms of CPU], ...] over the last HISTORY seconds.
benchmarks/scale.py reads them for the longest stall during a broadcast. Costs one timer wake
every PERIOD.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

PERIOD = 0.005
WINDOW = 0.1
HISTORY = 300.0


class _Collections:
    """The longest pause of Python's cyclic garbage collector since it was last read, in wall
    time and in the process's CPU time (a collection of 50 ms of CPU takes far longer on a
    machine whose cores other processes share)."""

    def __init__(self) -> None:
        self.started = 0.0
        self.started_cpu = 0.0
        self.longest = 0.0
        self.longest_cpu = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self.started = time.perf_counter()
            self.started_cpu = time.process_time()
        elif self.started:
            self.longest = max(self.longest, time.perf_counter() - self.started)
            self.longest_cpu = max(self.longest_cpu, time.process_time() - self.started_cpu)

    def take(self) -> tuple[float, float]:
        longest, self.longest = self.longest, 0.0
        longest_cpu, self.longest_cpu = self.longest_cpu, 0.0
        return longest, longest_cpu


async def _probe(directory: Path) -> None:
    collections = _Collections()
    gc.callbacks.append(collections)
    loop = asyncio.get_running_loop()
    path = directory / f"{os.getpid()}.json"
    windows: list[list[float]] = []
    window_start = time.time()
    longest = busiest = 0.0
    written = loop.time()
    while True:
        before = loop.time()
        cpu = time.process_time()
        await asyncio.sleep(PERIOD)
        late = loop.time() - before - PERIOD
        longest = max(longest, late)
        busiest = max(busiest, time.process_time() - cpu)
        now = time.time()
        if now - window_start >= WINDOW:
            collected, collected_cpu = collections.take()
            windows.append(
                [
                    window_start,
                    round(longest * 1000, 2),
                    round(busiest * 1000, 2),
                    round(collected * 1000, 2),
                    round(collected_cpu * 1000, 2),
                ]
            )
            window_start, longest, busiest = now, 0.0, 0.0
            if len(windows) > HISTORY / WINDOW:
                del windows[: len(windows) - int(HISTORY / WINDOW)]
        if loop.time() - written >= 1.0:
            written = loop.time()
            partial = path.with_suffix(".tmp")
            partial.write_text(json.dumps(windows))
            partial.replace(path)


_tasks: list[asyncio.Task[None]] = []


def census(directory: Path) -> None:
    """Writes <pid>.census.json: the objects the garbage collector tracks, by type (the 40
    commonest), their number, how long a full collection of them takes, and gc's counters."""
    started = time.perf_counter()
    gc.collect()
    full = time.perf_counter() - started
    counts: dict[str, int] = {}
    objects = gc.get_objects()
    for item in objects:
        name = type(item).__qualname__
        counts[name] = counts.get(name, 0) + 1
    top = sorted(counts.items(), key=lambda kv: -kv[1])[:40]
    record = {
        "tracked": len(objects),
        "full_collection_ms": round(full * 1000, 1),
        "thresholds": gc.get_threshold(),
        "stats": gc.get_stats(),
        "frozen": gc.get_freeze_count(),
        "types": top,
    }
    del objects
    import tracemalloc

    if tracemalloc.is_tracing():  # PYTHONTRACEMALLOC=1 in the server's environment
        snapshot = tracemalloc.take_snapshot()
        record["allocations"] = [
            [str(stat.traceback[0]), stat.size, stat.count]
            for stat in snapshot.statistics("lineno")[:60]
        ]
    (directory / f"{os.getpid()}.census.json").write_text(json.dumps(record))


def install(server: Any) -> None:
    """The --app hook: starts the probe on the running loop when BAYEUX_STALL_DIR is set, and
    writes a census of tracked objects on SIGUSR2 (`census`)."""
    directory = os.environ.get("BAYEUX_STALL_DIR")
    if directory:
        loop = asyncio.get_running_loop()
        _tasks.append(loop.create_task(_probe(Path(directory))))
        loop.add_signal_handler(signal.SIGUSR2, census, Path(directory))
