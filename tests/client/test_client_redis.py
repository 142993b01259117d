"""bayeux.client with the ack extension against `python -m bayeux --workers 2 --redis`: each
worker killed with SIGKILL in turn while messages stream, and nothing is lost."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

import pytest

from bayeux.client import AckExtension, Client
from bayeux.publisher import Publisher
from bayeux.testing import child_pids, free_port, stop_process, wait_for_port

from ..helpers.redis_nodes import OPTIONS, wait_healthy

pytestmark = [pytest.mark.redis, pytest.mark.slow]

MESSAGES = 60


@pytest.mark.parametrize("transport", ["long-polling", "websocket"])
def test_ack_loses_nothing_while_each_worker_is_killed(redis_server, transport: str) -> None:
    port = free_port()
    parent = subprocess.Popen(
        [sys.executable, "-m", "bayeux", "--port", str(port), "--log-level", "error"]
        + ["--redis", redis_server.url, "--workers", "2", *OPTIONS]
    )
    url = f"http://127.0.0.1:{port}/cometd"
    try:
        wait_for_port(port, parent)
        wait_healthy(url)

        async def scenario() -> list[int]:
            received: list[int] = []
            ack = AckExtension()
            client = Client(url, transports=[transport], extensions=[ack], backoff=0.1)
            async with client, Publisher(redis_server.url) as publisher:
                await client.subscribe("/stream", lambda m: received.append(m["data"]))
                assert ack.enabled
                killed: list[int] = []
                for n in range(MESSAGES):
                    await publisher.publish("/stream", n)
                    await asyncio.sleep(0.05)
                    if n in (15, 35):
                        # One worker, then the other (restarted meanwhile by the parent):
                        # whichever serves the session is killed at some point.
                        alive = [p for p in child_pids(parent.pid) if p not in killed]
                        victim = sorted(alive)[0]
                        os.kill(victim, signal.SIGKILL)
                        killed.append(victim)
                deadline = time.monotonic() + 30
                while set(received) != set(range(MESSAGES)) and time.monotonic() < deadline:
                    await asyncio.sleep(0.1)
            return received

        received = asyncio.run(asyncio.wait_for(scenario(), 90))
        missing = sorted(set(range(MESSAGES)) - set(received))
        assert not missing, f"lost {missing}"
        # In order, each message first arriving after the ones before it.
        firsts = list(dict.fromkeys(received))
        assert firsts == list(range(MESSAGES))
    finally:
        stop_process(parent)
