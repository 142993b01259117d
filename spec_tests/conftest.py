"""Runs the conformance suite once per session (rules concurrently) and exposes the results to
the parametrized tests in test_conformance.py."""

from __future__ import annotations

import asyncio

import pytest

from bayeux import Settings
from bayeux.testing import AiohttpThread, AsgiThread, GranianProcess, ServerThread

from .runner import run_suite

# Short enough for timing rules (held connects, expiry) to run in seconds, long enough to tell
# a held connect from an answered one.
# A held connect outlives maxInterval plus the multiple-clients interval, so that an expiry
# wrongly started under it shows.
SUITE_SETTINGS = Settings(
    timeout=3000,
    max_interval=2000,
    multi_session_interval=500,
    sweep_period=200,
    replay_channels=("/event/**",),  # the replay profile's channels
)


# The hosts of Endpoint.asgi() and Endpoint.aiohttp_app(), each a context manager with a url.
ASGI_HOSTS = {"asgi": AsgiThread, "granian": GranianProcess, "aiohttp": AiohttpThread}


@pytest.fixture(scope="session", params=["standalone", "embedded", "asgi", "granian", "aiohttp"])
def conformance_results(request):
    """The suite against our standalone server (its own HTTP/WebSocket connection layer),
    against the endpoint mounted in a Tornado Application, against `Endpoint.asgi()` under
    uvicorn and under granian, and mounted in an aiohttp application; with --bayeux-url,
    against that server only."""
    url = request.config.getoption("--bayeux-url")
    if url:
        results = asyncio.run(run_suite(url))
    elif request.param in ASGI_HOSTS:
        with ASGI_HOSTS[request.param](SUITE_SETTINGS) as other:
            results = asyncio.run(run_suite(other.url))
    else:
        with ServerThread(SUITE_SETTINGS, embedded=request.param == "embedded") as server:
            results = asyncio.run(run_suite(server.url))
    return {(r.rule, r.transport): r for r in results}


# The hosts besides the standalone one (conformance_results's params).
OTHER_HOSTS = ("embedded", "asgi", "granian", "aiohttp")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """With --bayeux-url there is one server: each rule runs once (its "standalone" variant),
    not again under a name that would claim an embedded run."""
    if not config.getoption("--bayeux-url"):
        return
    kept = [
        i
        for i in items
        if not any(f"[{host}-" in i.nodeid or f"-{host}]" in i.nodeid for host in OTHER_HOSTS)
    ]
    config.hook.pytest_deselected(items=[i for i in items if i not in kept])
    items[:] = kept
