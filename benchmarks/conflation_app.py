"""The conflation benchmark's server hooks (`benchmarks/conflation.py`), loaded with
`python -m bayeux --app benchmarks.conflation_app:conflated` (or `:plain`, the same without
conflation): what the benchmark reads from inside the server.

- `conflated`: `/prices/*` conflated by channel (one channel per key), with the backlog in the
  environment variables CONFLATION_BACKLOG and CONFLATION_AFTER (default: the API's own).
- Both: each client says what kind it is by subscribing to `/bench/role/<kind>`; every
  SAMPLE_SECONDS a sampler reads the queue of each such session and keeps, per kind, the longest
  queue (in messages and in bytes) seen. The service `/service/bench/stats` answers with those
  maxima, the queues now, the server's delivery and drop counters, and the sessions that ended
  by kind and reason; asked with the data "reset", it first forgets the maxima.

The sampler reads every session's queue length: a few microseconds per sample for a thousand
sessions, which counts in the server's CPU like the rest.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from typing import Any

from bayeux import BayeuxServer

FEED = "/prices/*"
ROLE = "/bench/role/"
SAMPLE_SECONDS = 0.05


class QueueWatch:
    """Sessions by the kind they said they are, and the longest queues seen for each kind."""

    def __init__(self, server: BayeuxServer) -> None:
        self.server = server
        self.kinds: dict[str, str] = {}  # session id: kind
        self.longest: Counter[str] = Counter()
        self.heaviest: Counter[str] = Counter()
        self.ended: dict[str, Counter[str]] = {}
        self.sampler: asyncio.Task[None] | None = None

    def subscribed(self, session: Any, channel: str) -> None:
        if not channel.startswith(ROLE):
            return
        self.kinds[session.id] = channel.removeprefix(ROLE)
        if self.sampler is None:
            self.sampler = asyncio.get_running_loop().create_task(self.sample())

    def removed(self, session: Any, ended: Any) -> None:
        kind = self.kinds.pop(session.id, None)
        if kind is not None:
            self.ended.setdefault(kind, Counter())[ended.value] += 1

    def now(self) -> tuple[Counter[str], Counter[str]]:
        """The longest queue of each kind now, in messages and in bytes."""
        longest: Counter[str] = Counter()
        heaviest: Counter[str] = Counter()
        sessions = self.server.sessions
        for session_id, kind in self.kinds.items():
            session = sessions.get(session_id)
            if session is None:
                continue
            longest[kind] = max(longest[kind], len(session.queue))
            heaviest[kind] = max(heaviest[kind], session.queue_bytes)
        return longest, heaviest

    async def sample(self) -> None:
        while True:
            longest, heaviest = self.now()
            for kind, length in longest.items():
                self.longest[kind] = max(self.longest[kind], length)
            for kind, size in heaviest.items():
                self.heaviest[kind] = max(self.heaviest[kind], size)
            await asyncio.sleep(SAMPLE_SECONDS)

    def stats(self, request: Any) -> dict[str, Any]:
        if request.data == "reset":
            self.longest.clear()
            self.heaviest.clear()
        longest, heaviest = self.now()
        stats = self.server.stats
        return {
            "sessions": dict(Counter(self.kinds.values())),
            "max_queue": dict(self.longest),
            "max_queue_bytes": dict(self.heaviest),
            "queue_now": dict(longest),
            "queue_bytes_now": dict(heaviest),
            "deliveries": stats.deliveries,
            "dropped": dict(stats.dropped),
            "ended": {kind: dict(reasons) for kind, reasons in self.ended.items()},
        }


def plain(server: BayeuxServer) -> QueueWatch:
    """The benchmark's hooks without conflation."""
    watch = QueueWatch(server)
    server.on_subscribed(watch.subscribed)
    server.on_session_removed(watch.removed)
    server.add_service("/service/bench/stats", watch.stats)
    return watch


def conflated(server: BayeuxServer) -> QueueWatch:
    """The benchmark's hooks with the feed conflated by channel."""
    rule = server.channel(FEED).conflate(key=lambda message: message["channel"])
    assert rule is not None  # the API's defaults, unless the benchmark set them
    backlog = os.environ.get("CONFLATION_BACKLOG")
    after = os.environ.get("CONFLATION_AFTER")
    server.channel(FEED).conflate(
        key=rule.key,
        backlog=rule.backlog if backlog is None else int(backlog),
        after=rule.after if after is None else float(after),
    )
    return plain(server)
