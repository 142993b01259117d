"""Python's garbage collector in a process holding tens of thousands of connections.

Every connection is some sixty objects the cyclic collector tracks (its protocol, transport,
parser, task, session, timers), and a full collection walks all of them: at 17,000
WebSockets a process stopped for hundreds of milliseconds each time one ran, during a
broadcast too (benchmarks/scale.py records each process's longest collection). Most of those
objects live as long as their connection and never become cyclic garbage.

So after each full collection, what survived it is frozen (`gc.freeze`): moved out of the
generations the collector walks. The next full collections walk only what was made since.
Frozen objects that later become unreachable in a cycle are not collected while frozen; every
`renew_seconds` the process unfreezes them so that the next full collection walks everything
once (and frees any such cycle), after which freezing goes on. Objects that become garbage
without a cycle are freed by reference counting, frozen or not.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from typing import Any

log = logging.getLogger("bayeux.listener")

# How often frozen objects are handed back to the collector (one long full collection).
RENEW_SECONDS = 3600.0


class Collector:
    """Freezes what survives each full collection (see the module's docstring). `start()` on
    the running loop; `stop()` puts the collector back as it was."""

    def __init__(self, renew_seconds: float = RENEW_SECONDS) -> None:
        self.renew_seconds = renew_seconds
        self.frozen_at = 0.0
        self.renewed_at = 0.0
        self.freezes = 0
        self.renewals = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._scheduled = False

    def start(self) -> None:
        """Freezes what the process holds once started (modules, settings, the application),
        then after every full collection."""
        self._loop = asyncio.get_running_loop()
        self.renewed_at = time.monotonic()
        gc.freeze()
        self.frozen_at = self.renewed_at
        gc.callbacks.append(self._collected)

    def stop(self) -> None:
        if self._collected in gc.callbacks:
            gc.callbacks.remove(self._collected)
        gc.unfreeze()

    def _collected(self, phase: str, info: dict[str, Any]) -> None:
        # Called inside the collector, from whichever thread ran it: the freeze waits for
        # the loop (a gc call from inside a gc callback is not allowed).
        if phase != "stop" or info.get("generation") != 2 or self._scheduled:
            return
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        self._scheduled = True
        try:
            loop.call_soon_threadsafe(self._after_full_collection)
        except RuntimeError:  # the loop closed meanwhile
            self._scheduled = False

    def _after_full_collection(self) -> None:
        self._scheduled = False
        now = time.monotonic()
        if now - self.renewed_at >= self.renew_seconds:
            # The next full collection walks everything once, then freezing goes on.
            gc.unfreeze()
            self.renewed_at = now
            self.renewals += 1
            return
        gc.freeze()
        self.frozen_at = now
        self.freezes += 1
