"""Reading the log: followed from the moment the engine starts and handed to the core in
order; read again from a session's position when it is taken over.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import redis.exceptions

from ...core.engine import (
    LogEntry,
    LoggedMessage,
    position_of,
    stream_id_of,
)
from . import log as entries
from .base import log
from .writer import LogWriter


class LogReader(LogWriter):
    """Follows the log, and reads a session's backlog."""

    async def _follow(self) -> None:
        """Reads the log and hands it to the core, for as long as the engine runs."""
        await self._reconnecting("log", self._read_log, socket_timeout=10)

    async def _read_log(self, client: Any, connected: Callable[[], None]) -> None:
        try:
            if not self._loaded:
                await self._start_position(client)
                if self._replay is not None:
                    await self._replay.load(client)
                self._loaded = True
            connected()
            self.ready.set()
            while True:
                answer = await client.xread(
                    {self.keys.log: stream_id_of(self.cursor)}, count=1000, block=5000
                )
                for _, items in answer:
                    start = 0
                    while start < len(items):
                        if start:
                            await asyncio.sleep(0)  # one broadcast's fan-out a loop turn
                        start = self._apply(items, start)
        finally:
            self.ready.clear()

    async def _start_position(self, client: Any) -> None:
        try:
            info = await client.xinfo_stream(self.keys.log)
        except redis.exceptions.ResponseError:  # no log yet
            self.cursor = 0
            return
        self.cursor = position_of(info["last-generated-id"])

    def _apply(self, items: list[tuple[bytes, dict[bytes, bytes]]], start: int = 0) -> int:
        """Hands the core the entries of `items` from `start` up to the first broadcast to
        fan out here (included); returns where the next call starts (len(items): all done).
        One broadcast a loop turn: an XREAD brings up to 1,000 entries, and each broadcast
        is queued for every local subscriber in one call of the core.

        Subscription changes and messages for sessions served elsewhere are skipped undecoded
        (`served`): every process reads every one of them (600,000 entries in all for the
        setup of 100,000 clients over 6 processes: benchmarks/scale.py)."""
        assert self._server is not None
        served = self._server.sessions
        decoded: list[LogEntry] = []
        end = len(items)
        index = start
        while index < end:
            stream_id, fields = items[index]
            index += 1
            try:
                entry = entries.decode(stream_id, fields, self.me, served=served)
            except Exception:  # one unreadable entry must not stop the log
                log.exception("an unreadable log entry was skipped")
                entry = None
            self.cursor = position_of(stream_id)
            if entry is not None:
                decoded.append(entry)
                if type(entry) is LoggedMessage and not entry.delivered:
                    break
        self.applied += len(decoded)
        # How long the newest entry waited between Redis and this process (Redis's clock
        # against ours: meaningful when they agree, as on one host or with NTP).
        self.read_lag = max(0.0, time.time() - (self.cursor >> 22) / 1000)
        self._server.apply_log(decoded)
        return index

    async def _trimmed_past(self, position: int) -> bool:
        """Whether the log no longer has every entry after `position`."""
        try:
            info = await self._command(self._client.xinfo_stream(self.keys.log), refusals=True)
        except redis.exceptions.ResponseError:  # no log yet
            return False
        deleted = info.get("max-deleted-entry-id")
        return deleted is not None and position_of(deleted) > position

    async def _backlog(
        self, client_id: str, position: int, previous: str
    ) -> tuple[list[LogEntry], int, list[bytes]]:
        """The log entries after `position` that may concern `client_id`, the position read
        through, and the session's subscriptions as of then (read in the same step as the
        last entries: scripts.SUBSCRIBE changes them with the entry). What `previous` (the
        process that served the session) delivered itself while Redis was away is marked
        delivered."""
        backlog: list[LogEntry] = []
        through = position
        while True:
            pipe = self._client.pipeline(transaction=True)
            pipe.xrange(self.keys.log, "(" + stream_id_of(through), "+", count=1000)
            pipe.smembers(self.keys.subscriptions(client_id))
            items, subscriptions = await self._command(pipe.execute())
            for stream_id, fields in items:
                entry = entries.decode(stream_id, fields, previous, only=client_id)
                if entry is not None:
                    backlog.append(entry)
                through = position_of(stream_id)
            if len(items) < 1000:
                return backlog, through, list(subscriptions)
