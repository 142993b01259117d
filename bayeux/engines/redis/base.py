"""The Redis engine's state and plumbing: its connection, commands within a timeout, the
reconnect loop, background tasks and counters. The engine is layered in modules, each adding
one concern: base (this) < writer < reader < handoff < upkeep < engine (the Engine contract).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import orjson
import redis.exceptions

from ...core.attributes import Changes
from ...core.engine import (
    EngineHost,
    EngineStats,
    EngineUnavailable,
)
from ...core.message import Delivery
from ...core.session import ServerSession
from ...core.tasks import TaskSet
from .client import redis_client
from .keys import Keys
from .records import (
    ATTRIBUTE,
    Saved,
    attributes_message,
    state_of,
    timing_field,
)
from .replay import ReplayStore

log = logging.getLogger("bayeux.redis")
_FAILURES = (redis.exceptions.RedisError, OSError, TimeoutError)
T = TypeVar("T")


class EngineBase:
    """What every part of the engine reads, and how it talks to Redis."""

    # Sessions and broadcasts are the deployment's (core/engine.py).
    shared = True

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        prefix: str = "bayeux",
        *,
        log_length: int = 100_000,
        log_retention: float = 300.0,
        sync_interval: float = 0.25,
        handoff_timeout: float = 2.0,
        command_timeout: float = 2.0,
        outbox_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        self.url = url
        self.keys = Keys(prefix)
        self.log_length = log_length
        self.log_retention = log_retention
        self.sync_interval = sync_interval
        self.handoff_timeout = handoff_timeout
        self.command_timeout = command_timeout
        self.outbox_bytes = outbox_bytes
        # This process in the deployment: a new name each start.
        self.me = secrets.token_hex(8)
        # Set while the engine can serve: Redis reached, the log followed, history loaded.
        self.ready = asyncio.Event()
        self.available = False
        # Counters (metrics, tests).
        self.appended = 0  # log entries written
        self.applied = 0  # log entries handed to the core
        self.handoffs = 0  # sessions taken over from a live process
        self.claims = 0  # sessions this process took over (handoffs included)
        self.dropped = 0  # published while Redis was away and lost to the outbox bound
        self.cursor = 0  # the last log position read here
        self.read_lag = 0.0  # seconds the last entry read had waited in the log
        self._server: EngineHost | None = None
        self._client: Any = None
        self._scripts: dict[str, Any] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._pending: list[
            tuple[dict[str, Any], Delivery | None, asyncio.Future[bool] | None]
        ] = []
        self._flush_scheduled = False
        # The one write to the log in flight, if any. Writes go one at a time: two in flight
        # on two pooled connections may reach Redis in either order, and a subscriber served
        # elsewhere would then get one publisher's messages swapped.
        self._writer: asyncio.Future[None] | None = None
        # Broadcasts delivered here while the log was away, to write to it later.
        self._outbox: deque[tuple[dict[str, Any], Delivery]] = deque()
        self._outbox_size = 0
        # What each session's record last got (records.saved_state): saved when it changes.
        self._saved: dict[str, Saved] = {}
        # The floor last saved (see _save), and how long it outlives this process: as long as
        # its sessions may wait for a claim (maxInterval, once the alive key has expired).
        self._floor = 0
        self._floor_ms = 0
        # Sessions whose record follows the floor, as far as this process knows.
        self._following: set[str] = set()
        # What the periodic save visits (upkeep.py), so that it need not visit every session:
        # sessions whose record does not simply follow the floor yet (new, taken over, not
        # connected, with ack, saved with their own position), sessions it found with
        # something queued, and the log position up to which it last looked at every queue
        # (a queue holds nothing from the log read since unless the log moved on).
        self._unsettled: set[str] = set()
        self._queued: set[str] = set()
        self._scanned = -1
        # Sessions no longer served here, whose record may follow the floor: pinned by the
        # next save.
        self._departed: set[str] = set()
        self.save_visits = 0  # sessions whose state a save looked at (tests, benchmarks)
        self._alive_ms = max(3000, int(sync_interval * 4000))
        self._releases: dict[str, asyncio.Future[None]] = {}
        self._claiming: dict[str, asyncio.Future[None]] = {}
        # Attribute changes to write, in order, one write in flight (as the log's).
        self._attribute_changes: list[tuple[ServerSession, Changes, asyncio.Future[bool]]] = []
        self._attribute_writer: asyncio.Future[None] | None = None
        self._background = TaskSet("a redis engine task", log, expected=(EngineUnavailable,))
        self._replay: ReplayStore | None = None
        self._reconcile = False
        # Sessions served here whose record missed a change while Redis was unreachable (or
        # a write of it failed): written again whole once it is back (`_recreate`).
        self._unsynced: set[str] = set()
        # When Redis last answered a command (the loop's clock).
        self._answered = 0.0
        # The Redis server last reconciled with (INFO run_id): another one may lack records.
        self._redis_run: str | None = None
        self._loaded = False  # the log's start position and replay history read once

    async def _command(
        self, awaitable: Awaitable[T], *, mark: bool = True, refusals: bool = False
    ) -> T:
        """Runs a Redis command within command_timeout; EngineUnavailable if it fails. A
        command Redis refuses (an ACL, Redis Cluster, a script error) is logged and reported
        the same way, unless the caller handles `refusals` itself."""
        if mark and not self.available:
            if asyncio.iscoroutine(awaitable):
                awaitable.close()
            raise EngineUnavailable("redis is not reachable")
        loop = asyncio.get_running_loop()
        try:
            result = await asyncio.wait_for(awaitable, self.command_timeout)
        except redis.exceptions.ResponseError as exc:
            if refusals:
                raise
            log.error("redis refused a command of the engine: %s", exc)
            raise EngineUnavailable(str(exc)) from exc
        except _FAILURES as exc:
            if type(exc) is TimeoutError and loop.time() - self._answered < self.command_timeout:
                # Redis answered another command meanwhile: this one was slow (a busy Redis,
                # or this process's own loop late under load), Redis is not gone. Taken for
                # lost, it refused every request until the next tick and had every record
                # written again: 165 times in one run of 100,000 clients (benchmarks/scale.py).
                raise EngineUnavailable("a redis command timed out") from exc
            self._unavailable(exc)
            raise EngineUnavailable(str(exc)) from exc
        self._answered = loop.time()
        return result

    def _unavailable(self, exc: BaseException) -> None:
        if self.available:
            log.warning("redis engine lost %s: %s", self.url, exc)
        self.available = False

    def _gone(self, client_id: str) -> None:
        """A session is no longer served here: the save stops visiting it, and pins its
        record to the floor saved last if it followed the floor."""
        self._unsettled.discard(client_id)
        self._queued.discard(client_id)
        if client_id in self._following:
            self._departed.add(client_id)

    def _spawn(self, coroutine: Awaitable[Any]) -> None:
        self._background.spawn(coroutine)

    def attributes_changed(
        self, session: ServerSession, changes: Changes
    ) -> asyncio.Future[bool] | None:
        if not self.available:
            self._unsynced.add(session.id)  # its whole record is written when Redis is back
            return None
        written: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._attribute_changes.append((session, changes, written))
        if self._attribute_writer is None:
            self._attribute_writer = self._background.spawn(
                self._write_attributes(), self._attributes_written
            )
        return written

    async def _write_attributes(self) -> None:
        """Writes the attribute changes queued so far, in one round trip and in order (one
        write in flight, like the log's: two on two pooled connections could swap)."""
        while self._attribute_changes:
            batch, self._attribute_changes = self._attribute_changes, []
            pipe = self._client.pipeline(transaction=False)
            for session, changes, _ in batch:
                args: list[Any] = []
                for name, value in changes.items():
                    args += [name, b"" if value is None else value]
                await self._scripts["ATTRIBUTES"](  # queued in the pipeline
                    keys=[self.keys.session(session.id)], args=args, client=pipe
                )
            try:
                owners = await self._command(pipe.execute(raise_on_error=False))
                written = True
            except EngineUnavailable:
                owners, written = [None] * len(batch), False
            for (session, changes, done), owner in zip(batch, owners, strict=True):
                if not written and not session.remote:
                    self._unsynced.add(session.id)
                if not done.done():
                    done.set_result(written)
                if (
                    session.remote
                    and isinstance(owner, bytes)
                    and owner not in (b"", self.me.encode())
                ):
                    # Changed through a view: the process serving it takes the change too.
                    self._spawn(self._tell(owner.decode(), attributes_message(session.id, changes)))

    def _attributes_written(self, writer: asyncio.Future[None]) -> None:
        self._attribute_writer = None
        if not writer.cancelled() and writer.exception() is not None:
            log.error("writing session attributes failed", exc_info=writer.exception())
        for _, _, done in self._attribute_changes if writer.cancelled() else []:
            if not done.done():
                done.set_result(False)

    async def attributes_settled(self) -> None:
        """Returns once every attribute change queued so far is written (or refused)."""
        writer = self._attribute_writer
        if writer is not None:
            await asyncio.wait([writer], timeout=self.command_timeout * 2)

    def _config(self) -> dict[str, str | int]:
        """What a publisher outside the servers needs (Keys.config)."""
        replay = self._replay.history if self._replay is not None else None
        return {
            "log_length": self.log_length,
            "replay": orjson.dumps(
                {
                    "patterns": list(replay.patterns),
                    "max_events": replay.max_events,
                    "retention_seconds": replay.retention_seconds,
                }
                if replay is not None
                else None
            ).decode(),
        }

    async def _tell(self, process: str, what: str) -> None:
        await self._command(self._client.publish(self.keys.control(process), what))

    async def _end(self, client_id: str, me: str, stop_ms: int = 0) -> str | None:
        """Ends a session's record (scripts.END); the process that served it ("" for none),
        or None when there was none (or, with `me`, another process serves it now). When it
        was its user's last session, the presence listeners are told here."""
        ended = await self._command(
            self._scripts["END"](
                keys=[self.keys.session(client_id), self.keys.subscriptions(client_id)],
                args=[self.keys.prefix, client_id, me, str(stop_ms)],
            )
        )
        if not ended:
            return None
        owner, offline = (value.decode() for value in ended)
        if offline and self._server is not None:
            self._server.presence_changed(offline, False)
        served_by: str = owner
        return served_by

    def _record_fields(self, session: ServerSession) -> dict[str, Any]:
        """A session's whole record, owned here, as it stands (made, or written again)."""
        position, batch, batches, connected = state_of(session)
        return {
            "owner": self.me,
            "pos": position,
            "ack": int(session.ack is not None),
            "batch": batch,
            "batches": batches,
            "connected": connected,
            "follows": 0,
            "addr": session.budget.key,
            "timing": timing_field(session),
            "browser": session.browser or "",
            "user": session.user or "",
            **{ATTRIBUTE + name: value for name, value in session.attributes.encoded().items()},
        }

    def outbox_size(self) -> int:
        return self._outbox_size

    def stats(self) -> EngineStats:
        return EngineStats(
            appended=self.appended,
            applied=self.applied,
            handoffs=self.handoffs,
            claims=self.claims,
            dropped=self.dropped,
            outbox_bytes=self._outbox_size,
            read_lag=self.read_lag,
        )

    async def _reconnecting(
        self, what: str, serve: Callable[[Any, Callable[[], None]], Awaitable[None]], **options: Any
    ) -> None:
        """Runs `serve(client, connected)` on a fresh Redis connection for as long as the
        engine runs: when the connection fails it is logged and opened again, waiting from
        0.1 s up to 5 s between attempts (back to 0.1 s once `serve` calls `connected()`)."""
        backoff = 0.1

        def connected() -> None:
            nonlocal backoff
            backoff = 0.1

        while True:
            client = redis_client(self.url, socket_connect_timeout=2, **options)
            try:
                await serve(client, connected)
            except _FAILURES as exc:
                log.warning("redis %s lost (%s); again in %.1fs", what, exc, backoff)
            except Exception:  # never let this side die: log, reconnect
                log.exception("unexpected error on the redis %s", what)
            finally:
                await close_quietly(client.aclose())
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)


def _now_ms() -> int:
    return int(time.time() * 1000)


async def close_quietly(closing: Awaitable[Any]) -> None:
    """Closes a Redis connection, giving up after a second whatever happens."""
    try:
        await asyncio.wait_for(closing, 1.0)
    except (*_FAILURES, asyncio.CancelledError):
        pass
