"""Running a client scenario in a test: with a deadline, and waiting for a condition."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any


def run(scenario: Callable[[], Coroutine[Any, Any, None]], within: float = 30) -> None:
    """Runs `scenario()` on a new loop, failing it after `within` seconds."""
    asyncio.run(asyncio.wait_for(scenario(), within))


async def until(condition: Callable[[], bool], within: float = 5) -> None:
    """Waits (polling every 20 ms) until `condition()` holds; fails after `within` seconds."""
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "never happened"
        await asyncio.sleep(0.02)
