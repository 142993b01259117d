"""The servers a benchmark compares, each started alone in its own process on 127.0.0.1, and
how much CPU and memory a process has used (read from /proc).

- bayeux: `python -m bayeux`, the standalone connection layer (as `./serve` runs it)
- bayeux-embedded: the same endpoint mounted in a Tornado Application (embedded_server.py)
- bayeux-extensions: bayeux-embedded with a pass-through server extension and one per session
- bayeux-asgi: Endpoint.asgi() under uvicorn, with httptools, wsproto and asyncio's own loop
  (asgi_server.py)
- bayeux-asgi-uvloop: the same with uvloop (uvicorn's default when uvloop is installed)
- bayeux-fastapi: the endpoint mounted in a FastAPI application with routes() (fastapi_server.py)
  under uvicorn without its `standard` extras: h11, asyncio's own loop, wsproto for WebSockets
- bayeux-fastapi-standard: the same under uvicorn[standard]: httptools, uvloop, websockets
  (websockets must be importable: pip install 'uvicorn[standard]', or PYTHONPATH to it)
- bayeux-fastapi-noproxy: bayeux-fastapi-standard with --no-proxy-headers (uvicorn trusts no
  X-Forwarded-* header, and looks at none: what a server not behind a proxy can run with)
- bayeux-fastapi-front: bayeux-fastapi-noproxy with the endpoint in front of the FastAPI
  application (`in_front_of(app, pass_on=True)`): its requests skip FastAPI's middleware
- bayeux-granian: Endpoint.asgi() under granian, a Rust HTTP server (asgi_server.py)
- bayeux-aiohttp: the endpoint mounted in an aiohttp application (aiohttp_server.py)
- faye: Faye 1.4.3's Node server (interop/peers/faye_server.cjs)
- cometd-nodejs: cometd-nodejs-server 1.2.1 (interop/peers/cometd_nodejs_server.cjs)
- floor-tornado, floor-asyncio: no Bayeux at all, fixed answers (http_floor.py): what the
  HTTP stack alone costs a long-polling request
- floor-uvicorn, floor-fastapi, floor-fastapi-standard, floor-fastapi-noproxy, floor-granian,
  floor-aiohttp: the same fixed answers from an application in each host, run as the bayeux-*
  server of that name is (host_floor.py): what the host alone costs a long-polling request
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bayeux.testing import child_pids, stop_process, wait_for_port  # noqa: E402, F401

TICKS = os.sysconf("SC_CLK_TCK")
SERVERS = (
    "bayeux",
    "bayeux-embedded",
    "bayeux-asgi",
    "bayeux-asgi-uvloop",
    "bayeux-fastapi",
    "bayeux-fastapi-standard",
    "bayeux-fastapi-noproxy",
    "bayeux-fastapi-front",
    "bayeux-granian",
    "bayeux-aiohttp",
    "bayeux-extensions",
    "faye",
    "cometd-nodejs",
)
FLOORS = (
    "floor-tornado",
    "floor-asyncio",
    "floor-uvicorn",
    "floor-fastapi",
    "floor-fastapi-standard",
    "floor-fastapi-noproxy",
    "floor-granian",
    "floor-aiohttp",
)

# The servers an ASGI host runs: the host and its options, and the application.
_UVICORN = ("--http", "httptools", "--ws", "wsproto", "--loop", "asyncio")
_UVICORN_BARE = ("--http", "h11", "--ws", "wsproto", "--loop", "asyncio")
_UVICORN_STANDARD = ("--http", "httptools", "--ws", "websockets", "--loop", "uvloop")
HOSTED: dict[str, tuple[str, tuple[str, ...], str]] = {
    "bayeux-asgi": ("uvicorn", _UVICORN, "benchmarks.asgi_server:app"),
    "bayeux-asgi-uvloop": (
        "uvicorn",
        ("--http", "httptools", "--ws", "wsproto", "--loop", "uvloop"),
        "benchmarks.asgi_server:app",
    ),
    "bayeux-fastapi": ("uvicorn", _UVICORN_BARE, "benchmarks.fastapi_server:app"),
    "bayeux-fastapi-standard": ("uvicorn", _UVICORN_STANDARD, "benchmarks.fastapi_server:app"),
    "bayeux-fastapi-noproxy": (
        "uvicorn",
        (*_UVICORN_STANDARD, "--no-proxy-headers"),
        "benchmarks.fastapi_server:app",
    ),
    "bayeux-fastapi-front": (
        "uvicorn",
        (*_UVICORN_STANDARD, "--no-proxy-headers"),
        "benchmarks.fastapi_server:front",
    ),
    "bayeux-granian": ("granian", (), "benchmarks.asgi_server:app"),
    "floor-uvicorn": ("uvicorn", _UVICORN, "benchmarks.host_floor:app"),
    "floor-fastapi": (
        "uvicorn",
        (*_UVICORN_BARE, "--factory"),
        "benchmarks.host_floor:fastapi_app",
    ),
    "floor-fastapi-standard": (
        "uvicorn",
        (*_UVICORN_STANDARD, "--factory"),
        "benchmarks.host_floor:fastapi_app",
    ),
    "floor-fastapi-noproxy": (
        "uvicorn",
        (*_UVICORN_STANDARD, "--no-proxy-headers", "--factory"),
        "benchmarks.host_floor:fastapi_app",
    ),
    "floor-granian": ("granian", (), "benchmarks.host_floor:app"),
}

# Every simulated client comes from 127.0.0.1 without cookies: lift the per-address handshake
# bound and the per-browser long-poll bound, which would otherwise (rightly) refuse them.
BAYEUX_LOAD_OPTIONS = (
    "--log-level",
    "error",
    "--max-sessions-per-browser",
    "-1",
    "--max-handshakes-per-address",
    "-1",
)


def command(server: str, port: int, *extra: str, timeout_ms: int = 30000) -> list[str]:
    if server == "bayeux":
        return [
            sys.executable,
            "-m",
            "bayeux",
            "--port",
            str(port),
            "--timeout",
            str(timeout_ms),
            *BAYEUX_LOAD_OPTIONS,
            *extra,
        ]
    if server == "floor-aiohttp":
        return [sys.executable, str(ROOT / "benchmarks" / "host_floor.py"), str(port)]
    if server in ("floor-tornado", "floor-asyncio"):
        script = ROOT / "benchmarks" / "http_floor.py"
        return [sys.executable, str(script), server.removeprefix("floor-"), str(port)]
    hosted = HOSTED.get(server)
    if hosted is not None:
        return hosted_command(*hosted, port)
    if server == "bayeux-aiohttp":
        script = ROOT / "benchmarks" / "aiohttp_server.py"
        return [sys.executable, str(script), "--port", str(port), "--timeout", str(timeout_ms)]
    if server in ("bayeux-embedded", "bayeux-extensions"):
        script = ROOT / "benchmarks" / "embedded_server.py"
        own = ["--sync-extensions"] if server == "bayeux-extensions" else []
        return [
            sys.executable,
            str(script),
            "--port",
            str(port),
            "--timeout",
            str(timeout_ms),
            *own,
        ]
    peers = ROOT / "interop" / "peers"
    if server == "faye":
        return ["node", str(peers / "faye_server.cjs"), str(port), str(timeout_ms // 1000)]
    if server == "cometd-nodejs":
        max_interval = str(timeout_ms + 10000)
        return [
            "node",
            str(peers / "cometd_nodejs_server.cjs"),
            str(port),
            str(timeout_ms),
            max_interval,
        ]
    raise SystemExit(f"unknown server {server}; one of {', '.join(SERVERS)}")


def hosted_command(host: str, options: tuple[str, ...], app: str, port: int) -> list[str]:
    if host == "granian":
        return [
            *(sys.executable, "-m", "granian", "--interface", "asgi"),
            *("--host", "127.0.0.1", "--port", str(port), "--log-level", "error", app),
        ]
    if "websockets" in options and importlib.util.find_spec("websockets") is None:
        raise SystemExit(
            "uvicorn's standard extras are needed: pip install 'uvicorn[standard]'"
            " (or PYTHONPATH to a directory with websockets)"
        )
    return [
        *(sys.executable, "-m", "uvicorn", app, "--port", str(port), *options),
        *("--log-level", "error"),
    ]


def start(server: str, port: int, *extra: str, timeout_ms: int = 30000) -> subprocess.Popen:
    process = subprocess.Popen(
        command(server, port, *extra, timeout_ms=timeout_ms),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": python_path(), "BAYEUX_TIMEOUT_MS": str(timeout_ms)},
    )
    wait_for_port(port, process)
    return process


def python_path() -> str:
    """The repository first, then the caller's own PYTHONPATH (where uvicorn's standard extras
    may be installed apart from the project's environment)."""
    inherited = os.environ.get("PYTHONPATH")
    return os.pathsep.join([str(ROOT), inherited] if inherited else [str(ROOT)])


def family(pid: int) -> list[int]:
    """`pid` and its descendants: granian serves from a worker process of its own."""
    pids = [pid]
    for each in pids:
        pids.extend(child_pids(each))
    return pids


def cpu_seconds(pid: int) -> float:
    """CPU seconds used by the server process and its living descendants."""
    total = 0
    for each in family(pid):
        fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / TICKS


def rss_kib(pid: int) -> int:
    """Resident memory of the server process and its living descendants."""
    total = 0
    for each in family(pid):
        for line in Path(f"/proc/{each}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total


def run_node_load(script: str, server_pid: int, *args: str) -> tuple[dict, float]:
    """Runs the Node load generator benchmarks/<script> with `args`; its figures (the JSON line
    of phase "done") and the server's CPU seconds between its "start" and "done" lines."""
    load = subprocess.Popen(
        ["node", str(ROOT / "benchmarks" / script), *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert load.stdout is not None
    before = 0.0
    for line in load.stdout:
        event = json.loads(line)
        if event["phase"] == "start":
            before = cpu_seconds(server_pid)
        elif event["phase"] == "done":
            cpu = cpu_seconds(server_pid) - before
            load.wait(30)
            return event, max(cpu, 1e-9)
    load.wait(30)
    raise SystemExit(f"{script}: the load generator ended without figures")
