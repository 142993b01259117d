"""The rates the admin page shows, counted only while someone looks at it.

The core counts deliveries and messages received (core/stats.py) whatever happens; handshakes,
connects and each channel's broadcasts it does not count apart. While the page is watched (a
request of its API reached this process in the last `WATCH_SECONDS`), a server extension counts
them: its incoming side sees each handshake and connect, its outgoing side each broadcast once
(with no session: core/extension.py), where it is published. Nobody watching, the extension is
removed again, and the server runs as if there were no admin page: an extension installed costs
every batch a charge and every message a call (core/hooks.py).

`Sampler.tick` runs every `TICK_SECONDS` while watched: the rates are the counts of the last
tick over its duration.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..core.extension import Extension
from ..core.message import Message
from ..core.server import BayeuxServer
from ..core.session import ServerSession

WATCH_SECONDS = 15.0
TICK_SECONDS = 1.0
# Channels counted apart in one tick; the broadcasts of any more are counted in the totals only
# (a flood of one-off channels must not grow this table).
MAX_COUNTED_CHANNELS = 10_000


class Counting(Extension):
    """Counts handshakes and connects as they come in, and broadcasts by channel as they go
    out (once each, before their encoding for the subscribers)."""

    def __init__(self) -> None:
        self.handshakes = 0
        self.connects = 0
        self.broadcasts = 0
        self.by_channel: dict[str, int] = {}

    def incoming(self, session: ServerSession | None, message: Message) -> bool:
        channel = message.get("channel")
        if channel == "/meta/connect":
            self.connects += 1
        elif channel == "/meta/handshake":
            self.handshakes += 1
        return True

    def outgoing(self, session: ServerSession | None, message: Message) -> bool:
        if session is None:
            channel = message.get("channel")
            if isinstance(channel, str):
                self.broadcasts += 1
                counts = self.by_channel
                if channel in counts:
                    counts[channel] += 1
                elif len(counts) < MAX_COUNTED_CHANNELS:
                    counts[channel] = 1
        return True


@dataclass
class Rates:
    """Per second, over the last tick."""

    handshakes: float = 0.0
    connects: float = 0.0
    publishes: float = 0.0
    deliveries: float = 0.0
    by_channel: dict[str, float] = field(default_factory=dict)

    def figures(self) -> dict[str, float]:
        return {
            "handshakes": round(self.handshakes, 3),
            "connects": round(self.connects, 3),
            "publishes": round(self.publishes, 3),
            "deliveries": round(self.deliveries, 3),
        }


class Sampler:
    """Installs the counting while the page is watched, and turns counts into rates."""

    def __init__(self, server: BayeuxServer, clock: Callable[[], float] = time.monotonic) -> None:
        self.server = server
        self.clock = clock
        self.counting: Counting | None = None
        # None until a tick has measured a whole interval.
        self.rates: Rates | None = None
        self._watched_until = 0.0
        self._last = 0.0
        self._deliveries = 0
        self._timer: asyncio.TimerHandle | None = None

    @property
    def watched(self) -> bool:
        return self.counting is not None

    def watch(self) -> None:
        """Someone looks: counts (from now, if nobody did) for `WATCH_SECONDS` more."""
        self._watched_until = self.clock() + WATCH_SECONDS
        if self.counting is not None:
            return
        self.counting = Counting()
        self.server.add_extension(self.counting)
        self._last = self.clock()
        self._deliveries = self.server.stats.deliveries
        self.rates = None
        self._timer = asyncio.get_running_loop().call_later(TICK_SECONDS, self._tick)

    def stop(self) -> None:
        """Nobody looks any more: the extension goes, and with it what it cost."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        counting, self.counting = self.counting, None
        self.rates = None
        if counting is None:
            return
        self.server.remove_extension(counting)

    def _tick(self) -> None:
        self._timer = None
        counting = self.counting
        if counting is None:
            return
        now = self.clock()
        if now >= self._watched_until:
            self.stop()
            return
        self.sample(now)
        self._timer = asyncio.get_running_loop().call_later(TICK_SECONDS, self._tick)

    def sample(self, now: float) -> None:
        """Rates over the time since the last sample, from what was counted meanwhile."""
        counting = self.counting
        assert counting is not None
        elapsed = now - self._last
        if elapsed <= 0:
            return
        deliveries = self.server.stats.deliveries
        self.rates = Rates(
            handshakes=counting.handshakes / elapsed,
            connects=counting.connects / elapsed,
            publishes=counting.broadcasts / elapsed,
            deliveries=(deliveries - self._deliveries) / elapsed,
            by_channel={name: n / elapsed for name, n in counting.by_channel.items()},
        )
        counting.handshakes = counting.connects = counting.broadcasts = 0
        counting.by_channel = {}
        self._last = now
        self._deliveries = deliveries
