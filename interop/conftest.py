"""Fixtures for interop runs: a real `python -m bayeux` process and a way to run Node scripts."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from bayeux import Endpoint, Settings
from bayeux.testing import AiohttpThread, AsgiThread, ServerThread, start_cli, stop_process

INTEROP = Path(__file__).parent
ROOT = INTEROP.parent


HOSTS = ["standalone", "embedded", "asgi", "fastapi-uvicorn", "starlette-hypercorn", "aiohttp"]


@pytest.fixture(scope="session", params=HOSTS)
def bayeux_url(request):
    """The server each client is run against, every way it is deployed: a `python -m bayeux`
    process on a free loopback port, as a user would start it (the standalone connection
    layer), the endpoint mounted in a Tornado Application (embedding), `Endpoint.asgi()` alone
    under uvicorn, and mounted at /cometd in a FastAPI application under uvicorn, a Starlette
    one under hypercorn and an aiohttp one (interop/asgi_apps.py)."""
    if request.param == "embedded":
        with ServerThread(Settings(), embedded=True) as server:
            yield server.url
        return
    if request.param != "standalone":
        with asgi_host(request.param, Settings()) as asgi:
            yield asgi.url
        return
    process, url = start_cli()
    try:
        yield url
    finally:
        assert stop_process(process) == 0, "python -m bayeux did not exit cleanly on SIGTERM"


def asgi_host(name: str, settings: Settings) -> AsgiThread:
    """`name` of HOSTS beyond the first two, ready to start."""
    if name == "asgi":
        return AsgiThread(settings)
    from .asgi_apps import FRAMEWORKS

    build, host = FRAMEWORKS[name]
    endpoint = Endpoint(settings)
    if host == "aiohttp":
        return AiohttpThread(endpoint=endpoint, app=build(endpoint))
    return AsgiThread(endpoint=endpoint, app=build(endpoint), host=host)


def node_executable() -> str:
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("node is not installed; the test command installs the interop set-up")
    if not (INTEROP / "node_modules" / "cometd").exists():
        raise RuntimeError("interop/node_modules missing: run `npm ci` in interop/")
    return node


def run_node(script: str, *args: str, timeout: float = 240) -> list[dict]:
    """Runs interop/node/<script> and returns its JSON result lines (one per scenario)."""
    completed = subprocess.run(
        [node_executable(), str(INTEROP / "node" / script), *args],
        cwd=INTEROP,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "NODE_NO_WARNINGS": "1"},
    )
    lines = [json.loads(line) for line in completed.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise AssertionError(
            f"{script} printed no results (exit {completed.returncode}):\n"
            f"{completed.stdout[-2000:]}\n{completed.stderr[-2000:]}"
        )
    return lines


def assert_all_ok(results: list[dict], expected: int) -> None:
    failures = [r for r in results if not r.get("ok")]
    assert not failures, "\n".join(
        f"{r['name']} ({r.get('transport')}): {r.get('error')}" for r in failures
    )
    assert len(results) == expected, f"expected {expected} scenarios, got {len(results)}"
