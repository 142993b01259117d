"""An event-loop stall probe for benchmarks, installed with `--app benchmarks.stallprobe:install`
(every worker runs it; the server itself has no probe): a task sleeps PERIOD at a time and
records by how much each wake was late and how much CPU the process used between two wakes
(lateness alone also counts the time the kernel gave the process's core to others), the longest
of each per WINDOW, in a file $BAYEUX_STALL_DIR/<pid>.json rewritten every second as
[[window start (time.time()), longest lateness in ms, longest CPU between wakes in ms,
longest garbage collection in ms, and in ms of CPU], ...] over the last HISTORY seconds.
benchmarks/scale.py reads them for the longest stall during a broadcast. Costs one timer wake
every PERIOD.

With $BAYEUX_TURN_MS set (say 50), it also says what ran in the loop's long turns (a turn: one
pass over the callbacks ready, what a timer due meanwhile waits for): every turn and every
callback is timed, and a turn that used more than that many ms of CPU is written to
<pid>.turns.json as {"at", "cpu_ms", "wall_ms", "callbacks" (how many ran), "what" (the
longest of them, [ms of CPU, the task's coroutine and where it resumed, or the callback]),
"stacks" (the commonest Python stacks sampled during it, every SAMPLE s by a thread, with
their counts)}, the TURNS longest of the last HISTORY seconds. Costs two clock reads a
callback; the sampling thread takes the GIL only during long turns.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import signal
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

PERIOD = 0.005
WINDOW = 0.1
HISTORY = 300.0
SAMPLE = 0.002
TURNS = 40


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
            if _turns is not None:
                _turns.write()
            partial = path.with_suffix(".tmp")
            partial.write_text(json.dumps(windows))
            partial.replace(path)


def _what(callback: Any) -> str:
    """A loop callback as a person reads it: a task's coroutine and where it resumes."""
    owner = getattr(callback, "__self__", None)
    coroutine: Any = owner.get_coro() if isinstance(owner, asyncio.Task) else None
    if coroutine is None:
        return getattr(callback, "__qualname__", repr(callback))[:200]
    where = getattr(coroutine, "__qualname__", "?")
    inner = coroutine
    while True:  # the innermost coroutine it waits in
        awaited = getattr(inner, "cr_await", None)
        if awaited is None or not hasattr(awaited, "cr_frame"):
            break
        inner = awaited
    frame = getattr(inner, "cr_frame", None)
    if inner is not coroutine and frame is not None:
        where += f" in {inner.__qualname__}:{frame.f_lineno}"
    return where


def _stack(frame: Any) -> str:
    names = []
    while frame is not None:
        code = frame.f_code
        names.append(f"{Path(code.co_filename).stem}.{code.co_qualname}:{frame.f_lineno}")
        frame = frame.f_back
    return ";".join(reversed(names[:40]))


class _Turns:
    """Times every turn of the loop (one pass over the callbacks ready) and every callback in
    it; samples the stacks of the long turns."""

    def __init__(self, loop: asyncio.AbstractEventLoop, directory: Path, threshold: float):
        self.path = directory / f"{os.getpid()}.turns.json"
        self.threshold = threshold
        self.main = threading.get_ident()
        self.started = 0.0  # perf_counter when the running turn began, 0 between
        self.samples: Counter[str] = Counter()
        self.callbacks: list[tuple[float, str]] = []  # this turn's, above a millisecond
        self.count = 0  # callbacks run this turn
        self.turns: list[dict[str, Any]] = []
        self.dirty = False
        run = asyncio.events.Handle._run
        run_once = loop._run_once  # type: ignore[attr-defined]
        turns = self

        def timed(handle: asyncio.Handle) -> None:
            cpu = time.process_time()
            try:
                run(handle)
            finally:
                used = time.process_time() - cpu
                turns.count += 1
                if used >= 0.001:
                    turns.callbacks.append((used, _what(handle._callback)))  # type: ignore[attr-defined]

        def turn() -> None:
            wall = time.perf_counter()
            cpu = time.process_time()
            turns.started = wall
            turns.count = 0
            try:
                run_once()
            finally:
                turns.started = 0.0
                used = time.process_time() - cpu
                if used >= turns.threshold:
                    turns.record(used, time.perf_counter() - wall)
                else:
                    turns.samples.clear()
                turns.callbacks.clear()

        asyncio.events.Handle._run = timed  # type: ignore[method-assign, assignment]
        loop._run_once = turn  # type: ignore[attr-defined]
        threading.Thread(target=self.sample, name="stallprobe-sampler", daemon=True).start()

    def sample(self) -> None:
        try:
            while True:
                time.sleep(SAMPLE)
                started = self.started
                if started and time.perf_counter() - started > self.threshold / 2:
                    frame = sys._current_frames().get(self.main)
                    if frame is not None:
                        self.samples[_stack(frame)] += 1
        except Exception:  # the interpreter shutting down under it: nothing to say
            return

    def record(self, cpu: float, wall: float) -> None:
        samples, self.samples = self.samples, Counter()
        longest = sorted(self.callbacks, reverse=True)[:6]
        self.turns.append(
            {
                "at": time.time() - wall,
                "cpu_ms": round(cpu * 1000, 1),
                "wall_ms": round(wall * 1000, 1),
                "callbacks": self.count,
                "what": [[round(used * 1000, 1), what] for used, what in longest],
                "stacks": samples.most_common(12),
            }
        )
        cutoff = time.time() - HISTORY
        kept = [t for t in self.turns if t["at"] >= cutoff]
        self.turns = sorted(kept, key=lambda t: -t["cpu_ms"])[:TURNS]
        self.dirty = True

    def write(self) -> None:
        if self.dirty:
            self.dirty = False
            partial = self.path.with_suffix(".tmp")
            partial.write_text(json.dumps(self.turns))
            partial.replace(self.path)


_turns: _Turns | None = None
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
    global _turns
    directory = os.environ.get("BAYEUX_STALL_DIR")
    if directory:
        loop = asyncio.get_running_loop()
        threshold = float(os.environ.get("BAYEUX_TURN_MS") or 0)
        if threshold > 0 and _turns is None:
            _turns = _Turns(loop, Path(directory), threshold / 1000)
        _tasks.append(loop.create_task(_probe(Path(directory))))
        loop.add_signal_handler(signal.SIGUSR2, census, Path(directory))
