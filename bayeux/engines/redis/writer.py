"""Writing to the log: broadcasts in order, one write in flight carrying everything queued
meanwhile; what is published while Redis is away kept in a bounded outbox.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ...core.engine import (
    EngineUnavailable,
)
from ...core.message import Delivery
from . import log as entries
from .base import _FAILURES, EngineBase, log


class LogWriter(EngineBase):
    """Writes broadcasts to the log, and replay events to their streams."""

    def _queue(
        self,
        fields: dict[str, Any],
        delivery: Delivery | None,
        done: asyncio.Future[bool] | None,
    ) -> None:
        """Writes entries to the log in order, in one round trip for everything queued while
        the previous write was in flight (or during this loop turn), whatever their number."""
        self._pending.append((fields, delivery, done))
        if not self._flush_scheduled and self._writer is None:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._spawn_flush)

    def _spawn_flush(self) -> None:
        self._flush_scheduled = False
        if self._writer is not None or not self._pending:
            return
        batch, self._pending = self._pending, []
        self._writer = self._background.spawn(self._write(batch), self._wrote)

    def _wrote(self, writer: asyncio.Future[None]) -> None:
        self._writer = None
        if not writer.cancelled() and writer.exception() is not None:
            log.error("writing to the redis log failed", exc_info=writer.exception())
        self._spawn_flush()

    async def _written(self) -> None:
        """Returns once everything queued for the log so far was written (or refused)."""
        while self._writer is not None or self._pending:
            if self._writer is None:
                self._spawn_flush()
            assert self._writer is not None
            await asyncio.wait([self._writer])

    async def _write(
        self,
        batch: list[tuple[dict[str, Any], Delivery | None, asyncio.Future[bool] | None]],
    ) -> None:
        args: list[Any] = [self.log_length]
        for fields, _, _ in batch:
            args.append(len(fields))
            for pair in fields.items():
                args.extend(pair)
        try:
            await asyncio.wait_for(
                self._scripts["APPEND"](keys=[self.keys.log], args=args), self.command_timeout
            )
            appended = True
        except (*_FAILURES, asyncio.CancelledError) as exc:
            self._unavailable(exc)
            appended = False
        for _, _, done in batch:
            if done is not None and not done.done():
                done.set_result(appended)
        if not appended:
            return
        self.appended += len(batch)
        if self._replay is not None:
            kept = [d for _, d, _ in batch if d is not None and self._replay.wanted(d)]
            if kept:
                await self._keep_replays(kept)

    async def _keep_replays(self, deliveries: list[Delivery]) -> None:
        pipe = self._client.pipeline(transaction=False)
        assert self._replay is not None
        self._replay.add(pipe, deliveries)
        try:
            results = await self._command(pipe.execute(raise_on_error=False))
        except EngineUnavailable:
            return  # delivered everywhere all the same; Redis keeps fewer replay events
        failed = [r for r in results if isinstance(r, Exception)]
        if failed:
            # A replay append refused (an id below the stream's newest, from a process whose
            # clock is behind): the event is delivered everywhere, only not kept in Redis.
            log.warning("redis kept %d replay events fewer: %s", len(failed), failed[0])

    def _keep_for_later(self, delivery: Delivery, sender: str | None) -> None:
        """A broadcast delivered here while the log is away: written to it when it is back,
        marked so that this process does not deliver it twice."""
        fields = entries.broadcast_fields(delivery, sender, self.me, True)
        self._outbox.append((fields, delivery))
        self._outbox_size += len(delivery.json)
        while self._outbox_size > self.outbox_bytes and self._outbox:
            self._outbox_size -= len(self._outbox.popleft()[1].json)
            self.dropped += 1

    async def _send_outbox(self) -> None:
        while self._outbox:
            batch = [self._outbox.popleft() for _ in range(min(500, len(self._outbox)))]
            pipe = self._client.pipeline(transaction=False)
            for fields, _ in batch:
                pipe.xadd(self.keys.log, fields, maxlen=self.log_length, approximate=True)
            if self._replay is not None:
                self._replay.add(pipe, [delivery for _, delivery in batch])
            try:
                # A replay append may be refused (see _write): the log's are what count.
                await self._command(pipe.execute(raise_on_error=False))
            except EngineUnavailable:
                self._outbox.extendleft(reversed(batch))
                return
            self._outbox_size -= sum(len(delivery.json) for _, delivery in batch)
            self.appended += len(batch)
