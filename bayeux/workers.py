"""`--workers N`: N server processes on one port, each a whole `python -m bayeux` sharing the
deployment through Redis.

Each worker binds the port itself with SO_REUSEPORT, and the kernel spreads new connections
among them. The workers are started as fresh interpreters rather than forked (Tornado's
fork_processes), so that none inherits another's event loop, and so that this parent can
forward SIGTERM to each of them: every worker drains (its sessions go to the others through
Redis) and the parent exits once all have. A worker that dies otherwise is started again
(at most `MAX_RESTARTS` times per minute).
"""

from __future__ import annotations

import logging
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable

log = logging.getLogger("bayeux.workers")
MAX_RESTARTS = 10


def _worker_argv(argv: list[str]) -> list[str]:
    """The command line of one worker: the same options, one worker."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg == "--workers":
            skip = True
            continue
        if arg.startswith("--workers="):
            continue
        out.append(arg)
    return [sys.executable, "-m", "bayeux", *out, "--reuse-port"]


def run_workers(
    count: int,
    argv: list[str],
    ready_at: tuple[str, int] | None = None,
    on_ready: Callable[[], None] | None = None,
) -> int:
    """Runs `count` workers with the options `argv` until they have all stopped; calls
    `on_ready()` once, when a worker first accepts connections at `ready_at`."""
    command = _worker_argv(argv)
    workers = [subprocess.Popen(command) for _ in range(count)]
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True
        for worker in workers:
            if worker.poll() is None:
                worker.send_signal(signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    restarts: list[float] = []
    log.info("started %d workers", count)
    while True:
        if on_ready is not None and ready_at is not None and _accepts(ready_at):
            on_ready()
            on_ready = None
        running = [w for w in workers if w.poll() is None]
        if stopping and not running:
            break
        if not stopping:
            for index, worker in enumerate(workers):
                code = worker.poll()
                if code is None:
                    continue
                now = time.monotonic()
                restarts = [t for t in restarts if now - t < 60]
                if len(restarts) >= MAX_RESTARTS:
                    log.error("workers keep dying (last exit %s): stopping", code)
                    stop(signal.SIGTERM, None)
                    break
                log.warning("worker %d exited with %s: started again", worker.pid, code)
                restarts.append(now)
                workers[index] = subprocess.Popen(command)
        time.sleep(0.1)
    return max((w.returncode or 0) for w in workers)


def _accepts(address: tuple[str, int]) -> bool:
    try:
        socket.create_connection(address, timeout=0.05).close()
    except OSError:
        return False
    return True
