"""Instructions per long-polling request of a server process, counted by valgrind's callgrind:
steady where timings are not (a machine shared with other work moves requests per CPU-second by
a fifth from one run to the next; the count moves by a few per cent). Each server runs under
callgrind twice, driven by benchmarks/http_load.mjs (10 clients) for a short and a long time;
the difference in instructions over the difference in requests leaves out the start and the
stop. User space only: the kernel's share (a host that writes a response in two sends pays
for two system calls) is not counted.

    .venv/bin/python benchmarks/host_instructions.py --server bayeux --server bayeux-asgi
    .venv/bin/python benchmarks/host_instructions.py --server floor-uvicorn

granian is left out: its worker processes run Rust threads that callgrind slows past use.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from servers import FLOORS, ROOT, SERVERS, command, python_path  # type: ignore

from bayeux.testing import free_port


def counted(server: str, seconds: float) -> tuple[int, int]:
    """Requests served and instructions run by `server` under callgrind, loaded `seconds`."""
    port = free_port()
    with tempfile.TemporaryDirectory() as directory:
        out = Path(directory) / "callgrind.out"
        process = subprocess.Popen(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"] + command(server, port),
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": python_path(), "BAYEUX_TIMEOUT_MS": "30000"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 300  # imports run some fifty times slower
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), 1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline or process.poll() is not None:
                        raise SystemExit(f"{server} did not start under callgrind") from None
                    time.sleep(0.5)
            load = subprocess.run(
                [
                    "node",
                    str(ROOT / "benchmarks" / "http_load.mjs"),
                    f"http://127.0.0.1:{port}/cometd",
                    "10",
                    str(seconds),
                    "0",  # no warm-up: every request after the first three of each client counts
                ],
                capture_output=True,
                text=True,
                check=True,
            )
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(300)
        done = [json.loads(line) for line in load.stdout.splitlines() if '"done"' in line][-1]
        instructions = 0
        for each in Path(directory).glob("callgrind.out*"):  # one file per process
            for line in each.read_text().splitlines():
                if line.startswith(("summary:", "totals:")):
                    instructions += int(line.split()[1])
                    break
    return done["requests"], instructions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", action="append", required=True, choices=SERVERS + FLOORS)
    parser.add_argument("--short", type=float, default=2, help="seconds of the short run")
    parser.add_argument("--long", type=float, default=20, help="seconds of the long run")
    args = parser.parse_args()
    print(f"{'server':<24} {'requests':>9} {'instructions per request':>26}")
    for server in args.server:
        few, before = counted(server, args.short)
        many, after = counted(server, args.long)
        per_request = (after - before) / max(many - few, 1)
        print(f"{server:<24} {many - few:>9} {per_request:>26,.0f}", flush=True)


if __name__ == "__main__":
    main()
