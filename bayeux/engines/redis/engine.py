"""The Redis engine: any process of a deployment serves any session, and a process that dies
loses nobody's messages.

- One message log (log.py) for the deployment: every broadcast is written once, whoever its
  subscribers; every process reads the log and queues each entry for the sessions it serves.
  One copy per message, not one per recipient (what faye-redis does), and one order for all.
- A record per session (keys.py): its owner, its subscriptions and its position in the log (up
  to where its client has its messages: written to it, or acknowledged with the ack extension).
  The owner saves positions every `sync_interval`, and exactly when it lets a session go.
  A session without ack whose queue is empty is saved once as following the process's
  floor (its read position, one key saved every time): with every subscriber keeping up,
  a save writes one key, not one record per session whose position moved.
- A request for a session this process does not serve: a connect takes the session over
  (scripts.CLAIM). When a live process serves it, that one is asked to let go (its held connect
  is answered, it saves the exact position) and the claim waits for it, up to
  `handoff_timeout`; a dead owner's sessions are taken at once. The new owner re-reads the log
  from the session's position: nothing queued in the old owner is lost. Other requests
  (publish, subscribe, disconnect) are served on a view of the record, without moving it.
- Processes renew a short-lived `alive` key; the sessions of one that stopped become orphans,
  claimable by any process and forgotten after maxInterval (scripts.REAP).

Redis going away: publishes are delivered locally at once and written to the log when it is
back (marked so that this process does not deliver them twice; bounded by `outbox_bytes`);
requests that need another process's session get a 503 error with retry advice; the sessions
served here go on, and their records are written again when Redis returns (it may have lost
them). After a crash, a client may get again what it received in the last `sync_interval`
before it (at least once); a drain or a handoff between live processes is exact.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections import deque
from collections.abc import Awaitable
from typing import Any, TypeVar

import orjson
import redis.asyncio
import redis.asyncio.sentinel
import redis.exceptions

from ...core.engine import (
    Claimed,
    EngineHost,
    EngineStats,
    EngineUnavailable,
    LogEntry,
    SessionRecord,
    position_of,
    stream_id_of,
)
from ...core.message import Delivery
from ...core.session import Ended, ServerSession
from ...core.tasks import TaskSet
from . import log as entries
from . import scripts
from .client import redis_client
from .keys import Keys
from .records import (
    Saved,
    pending_of,
    record_of,
    saved,
    saved_state,
    state_of,
    state_of_record,
)
from .replay import ReplayStore

log = logging.getLogger("bayeux.redis")
_FAILURES = (redis.exceptions.RedisError, OSError, TimeoutError)
T = TypeVar("T")


class RedisEngine:
    """The engine (core/engine.py) of a deployment on one Redis. Start it with the server
    (Endpoint does), stop it with `stop()`."""

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
        self._alive_ms = max(3000, int(sync_interval * 4000))
        self._releases: dict[str, asyncio.Future[None]] = {}
        self._claiming: dict[str, asyncio.Future[None]] = {}
        self._background = TaskSet("a redis engine task", log, expected=(EngineUnavailable,))
        self._replay: ReplayStore | None = None
        self._reconcile = False

    # ------------------------------------------------------------------------- lifecycle

    def attach(self, host: EngineHost) -> None:
        """Binds the engine to `host` before it serves a request (no I/O): until Redis is
        reached, what needs it answers with retry advice and broadcasts are delivered here."""
        if self._server is host:
            return
        self._server = host
        host.engine = self
        self._floor_ms = host.settings.max_interval + self._alive_ms + 60_000
        if host.replay is not None:
            self._replay = ReplayStore(self.keys, host.replay)
        self._client = redis_client(
            self.url, socket_connect_timeout=2, socket_timeout=self.command_timeout + 1
        )
        self._scripts = {
            name: self._client.register_script(scripts.script(name)) for name in scripts.NAMES
        }

    async def start(self, host: EngineHost) -> None:
        """Starts following the log; returns at once (Redis may be down: retried in the
        background). `ready` is set once the engine serves."""
        self.attach(host)
        if self._tasks:
            return
        self._tasks = [
            asyncio.ensure_future(self._follow()),
            asyncio.ensure_future(self._listen()),
            asyncio.ensure_future(self._keep()),
        ]

    async def stop(self, timeout: float = 2.0) -> None:
        """Writes what waits for the log, saves every session's exact position and leaves
        them for other processes to take at once (a rolling restart loses nothing); then
        stops, within about `timeout` seconds."""
        server = self._server
        try:
            if self.available:
                await asyncio.wait_for(self._leave(), timeout)
        except (*_FAILURES, asyncio.CancelledError) as exc:
            log.warning("redis engine stopped without leaving its sessions: %s", exc)
        finally:
            for task in self._tasks:
                task.cancel()
            if self._tasks:
                await asyncio.wait(self._tasks, timeout=2.0)
            self._tasks = []
            if self._client is not None:
                try:
                    await asyncio.wait_for(self._client.aclose(), 1.0)
                except (*_FAILURES, asyncio.CancelledError):
                    pass
            if server is not None and server.engine is self:
                server.engine = None

    async def _leave(self) -> None:
        """Leaves every session served here, in one round trip per thousand."""
        assert self._server is not None
        await self._written()
        await self._send_outbox()
        leaving = [s for s in self._server.sessions.values() if not (s.local or s.remote)]
        for start in range(0, len(leaving), 1000):
            chunk = leaving[start : start + 1000]
            pipe = self._client.pipeline(transaction=False)
            for session in chunk:
                await self._scripts["RELEASE"](  # queued in the pipeline
                    keys=[self.keys.session(session.id)],
                    args=[
                        self.me,
                        self.keys.prefix,
                        session.id,
                        *state_of(session),
                        pending_of(session),
                    ],
                    client=pipe,
                )
            new_owners = await pipe.execute(raise_on_error=False)
            for session, new_owner in zip(chunk, new_owners, strict=True):
                if isinstance(new_owner, bytes) and new_owner:
                    await self._tell(new_owner.decode(), f"released {session.id}")
        await self._client.delete(self.keys.alive(self.me))

    # ----------------------------------------------------------------- the Engine contract

    def append(self, delivery: Delivery, exclude: str | None) -> asyncio.Future[bool]:
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        if not self.available:
            done.set_result(False)
        else:
            fields = entries.broadcast_fields(delivery, exclude, self.me, False)
            self._queue(fields, delivery, done)

        def settled(future: asyncio.Future[bool]) -> None:
            if not future.result():
                self._keep_for_later(delivery, exclude)

        done.add_done_callback(settled)
        return done

    async def created(self, session: ServerSession) -> None:
        position = self.cursor
        session.position = session.written = position
        if session.ack is not None:
            session.ack.position = position
        pipe = self._client.pipeline(transaction=True)
        pipe.hset(self.keys.session(session.id), mapping=self._record_fields(session))
        pipe.sadd(self.keys.owned(self.me), session.id)
        pipe.sadd(self.keys.processes, self.me)
        self._saved[session.id] = saved(state_of(session))
        await self._command(pipe.execute())

    async def claim(self, client_id: str, acknowledged: int | None) -> Claimed | None:
        # While it runs, a request to let go of the session waits: it would find nothing
        # here yet, and the session would end up served in two places.
        claiming = asyncio.get_running_loop().create_future()
        self._claiming[client_id] = claiming
        try:
            return await self._claim(client_id, acknowledged)
        finally:
            if self._claiming.get(client_id) is claiming:
                del self._claiming[client_id]
            claiming.set_result(None)

    async def _claim(self, client_id: str, acknowledged: int | None) -> Claimed | None:
        force = False
        asked = ""  # the process that served the session and was asked to let go
        for attempt in range(4):
            result = await self._command(
                self._scripts["CLAIM"](
                    keys=[self.keys.session(client_id), self.keys.subscriptions(client_id)],
                    args=[self.me, self.keys.prefix, client_id, "1" if force else "0"],
                )
            )
            if result is None:
                return None
            if result[0] == b"wait":
                # Several processes may claim at once: each asks the owner of the moment, the
                # last one gets it; a process that never answers loses it after that.
                asked = result[1].decode()
                answered = await self._ask_to_let_go(asked, client_id, acknowledged)
                force = not answered or attempt == 2
                continue
            previous = result[2].decode()
            if previous == self.me and asked:
                previous = asked  # it handed the session over to us
            if force and previous not in ("", self.me):
                # Taken from a live process that did not answer: it must stop serving it.
                await self._tell(previous, f"claim {client_id} - {self.me}")
            record = record_of(client_id, result[1])
            if await self._trimmed_past(record.position):
                log.warning(
                    "a session's position is older than the log keeps: ended",
                    extra={"event": "session-lost"},
                )
                await self._command(self._end(client_id, self.me))
                return None
            backlog, through, subscriptions = await self._backlog(
                client_id, record.position, previous
            )
            # What the reader went through meanwhile did not reach the session (not served
            # here yet): read it too. No await between this test and the core taking the
            # session in, so the reader hands it everything after `through`.
            while self.cursor > through:
                more, through, subscriptions = await self._backlog(client_id, through, previous)
                backlog.extend(more)
            record.subscriptions = [s.decode() for s in subscriptions]
            self._saved[client_id] = saved(state_of_record(record))
            self.claims += 1
            return Claimed(record, backlog, through)
        raise EngineUnavailable("the session could not be claimed")

    async def caught_up(self) -> None:
        # The log's newest id now, then wait (bounded) until the reader has applied it.
        try:
            info = await self._command(self._client.xinfo_stream(self.keys.log), refusals=True)
        except redis.exceptions.ResponseError:  # no log yet: nothing to catch up with
            return
        newest = position_of(info["last-generated-id"])
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.command_timeout
        while self.cursor < newest:
            if loop.time() > deadline:
                raise EngineUnavailable("the log reader is behind")
            await asyncio.sleep(0.002)

    async def view(self, client_id: str) -> SessionRecord | None:
        pipe = self._client.pipeline(transaction=False)
        pipe.hgetall(self.keys.session(client_id))
        pipe.smembers(self.keys.subscriptions(client_id))
        fields, subscriptions = await self._command(pipe.execute())
        if b"owner" not in fields:
            return None
        flat = [x for kv in fields.items() for x in kv]
        return record_of(client_id, [*flat, b"|", *subscriptions])

    async def subscriptions_changed(
        self,
        session: ServerSession,
        patterns: list[str],
        subscribed: bool,
        replay: dict[str, int],
    ) -> None:
        written = await self._command(
            self._scripts["SUBSCRIBE"](
                keys=[self.keys.subscriptions(session.id), self.keys.log],
                args=[
                    session.id,
                    "1" if subscribed else "0",
                    self.log_length,
                    orjson.dumps(replay) if replay else "",
                    *patterns,
                ],
            )
        )
        if written:
            self.appended += 1

    async def deliver_to(self, client_id: str, delivery: Delivery) -> None:
        await self._command(
            self._client.xadd(
                self.keys.log,
                entries.delivery_fields(client_id, delivery),
                maxlen=self.log_length,
                approximate=True,
            )
        )
        self.appended += 1

    async def end(self, client_id: str) -> None:
        owner = await self._command(self._end(client_id, ""))
        if owner:
            await self._command(
                self._client.publish(
                    self.keys.control(owner.decode()), b"end " + client_id.encode()
                )
            )

    def removed(self, session: ServerSession, reason: Ended) -> None:
        self._saved.pop(session.id, None)
        if reason is Ended.MOVED or not self.available:
            return
        self._spawn(self._end(session.id, self.me))

    # ---------------------------------------------------------------------------- writing

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

    def _keep_for_later(self, delivery: Delivery, exclude: str | None) -> None:
        """A broadcast delivered here while the log is away: written to it when it is back,
        marked so that this process does not deliver it twice."""
        fields = entries.broadcast_fields(delivery, exclude, self.me, True)
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

    # ---------------------------------------------------------------------------- reading

    async def _follow(self) -> None:
        """Reads the log and hands it to the core, for as long as the engine runs."""
        backoff = 0.1
        loaded = False
        while True:
            client = redis_client(self.url, socket_connect_timeout=2, socket_timeout=10)
            try:
                if not loaded:
                    await self._start_position(client)
                    if self._replay is not None:
                        await self._replay.load(client)
                    loaded = True
                backoff = 0.1
                self.ready.set()
                while True:
                    answer = await client.xread(
                        {self.keys.log: stream_id_of(self.cursor)}, count=1000, block=5000
                    )
                    for _, items in answer:
                        self._apply(items)
            except _FAILURES as exc:
                self.ready.clear()
                log.warning("redis log lost (%s); reading again in %.1fs", exc, backoff)
            except Exception:  # never let the reading side die: log, reconnect
                self.ready.clear()
                log.exception("unexpected error reading the redis log")
            finally:
                try:
                    await asyncio.wait_for(client.aclose(), 1.0)
                except (*_FAILURES, asyncio.CancelledError):
                    pass
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)

    async def _start_position(self, client: Any) -> None:
        try:
            info = await client.xinfo_stream(self.keys.log)
        except redis.exceptions.ResponseError:  # no log yet
            self.cursor = 0
            return
        self.cursor = position_of(info["last-generated-id"])

    def _apply(self, items: list[tuple[bytes, dict[bytes, bytes]]]) -> None:
        assert self._server is not None
        decoded: list[LogEntry] = []
        for stream_id, fields in items:
            try:
                entry = entries.decode(stream_id, fields, self.me)
            except Exception:  # one unreadable entry must not stop the log
                log.exception("an unreadable log entry was skipped")
                entry = None
            if entry is not None:
                decoded.append(entry)
            self.cursor = position_of(stream_id)
        self.applied += len(decoded)
        # How long the newest entry waited between Redis and this process (Redis's clock
        # against ours: meaningful when they agree, as on one host or with NTP).
        self.read_lag = max(0.0, time.time() - (self.cursor >> 22) / 1000)
        self._server.apply_log(decoded)

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

    # ------------------------------------------------------------------ handing sessions over

    async def _listen(self) -> None:
        """Hears this process's control channel: claims, releases, ends."""
        backoff = 0.1
        while True:
            client = redis_client(self.url, socket_connect_timeout=2)
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.keys.control(self.me))
                backoff = 0.1
                async for item in pubsub.listen():
                    if item.get("type") == "message":
                        self._control(item["data"])
            except _FAILURES as exc:
                log.warning("redis control channel lost (%s); again in %.1fs", exc, backoff)
            except Exception:
                log.exception("unexpected error on the redis control channel")
            finally:
                for closing in (pubsub.aclose(), client.aclose()):
                    try:
                        await asyncio.wait_for(closing, 1.0)
                    except (*_FAILURES, asyncio.CancelledError):
                        pass
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)

    def _control(self, data: bytes) -> None:
        """`claim <clientId> <ack or -> <process>`, `released <clientId>`, `end <clientId>`."""
        assert self._server is not None
        verb, client_id, *rest = data.decode(errors="replace").split(" ")
        if verb == "claim" and len(rest) == 2:
            argument, requester = rest
            acknowledged = int(argument) if argument.lstrip("-").isdigit() else None
            self._spawn(self._let_go(client_id, acknowledged, requester))
        elif verb == "released":
            waiting = self._releases.get(client_id)
            if waiting is not None and not waiting.done():
                waiting.set_result(None)
        elif verb == "end":
            session = self._server.sessions.get(client_id)
            if session is not None:
                self._server.remove_session(session, Ended.DISCONNECTED)

    async def _ask_to_let_go(self, owner: str, client_id: str, acknowledged: int | None) -> bool:
        """Asks the process serving a session to let go of it; whether it did in time."""
        loop = asyncio.get_running_loop()
        released = self._releases.setdefault(client_id, loop.create_future())
        try:
            ack = "-" if acknowledged is None else acknowledged
            await self._tell(owner, f"claim {client_id} {ack} {self.me}")
            await asyncio.wait_for(asyncio.shield(released), self.handoff_timeout)
            self.handoffs += 1
            return True
        except TimeoutError:
            log.warning(
                "a process did not let go of a session in time: taken over",
                extra={"event": "handoff-timeout"},
            )
            return False
        finally:
            if self._releases.get(client_id) is released:
                del self._releases[client_id]

    async def _let_go(self, client_id: str, acknowledged: int | None, requester: str) -> None:
        """Another process claims a session: stop serving it, save exactly where its client
        stands, and hand it over (to the last process that claimed it). The requester hears
        back in any case, to claim again if the session went elsewhere."""
        assert self._server is not None
        claiming = self._claiming.get(client_id)
        if claiming is not None:
            # Resolved once the claim returned and the core took the session in (same step).
            await asyncio.wait([claiming], timeout=self.handoff_timeout)
        session = self._server.let_go(client_id)
        self._saved.pop(client_id, None)
        state: tuple[Any, ...] = ("", 0, "{}", 0, b"[]")
        if session is not None:
            if session.ack is not None and acknowledged is not None:
                session.acknowledge(acknowledged)
            state = (*state_of(session), pending_of(session))
        try:
            new_owner = await self._command(
                self._scripts["RELEASE"](
                    keys=[self.keys.session(client_id)],
                    args=[self.me, self.keys.prefix, client_id, *state],
                )
            )
            told = {requester}
            if new_owner:
                told.add(new_owner.decode())
            for process in told:
                await self._tell(process, f"released {client_id}")
        except EngineUnavailable:
            pass  # the claimant takes it over by force after handoff_timeout

    async def _tell(self, process: str, what: str) -> None:
        await self._command(self._client.publish(self.keys.control(process), what))

    def _end(self, client_id: str, me: str) -> Awaitable[Any]:
        ending: Awaitable[Any] = self._scripts["END"](
            keys=[self.keys.session(client_id), self.keys.subscriptions(client_id)],
            args=[self.keys.prefix, client_id, me],
        )
        return ending

    # ------------------------------------------------------------------------ upkeep

    async def _keep(self) -> None:
        """Every sync_interval: says this process is alive, saves changed positions; now and
        then reaps orphans and trims the log by age."""
        assert self._server is not None
        ticks = 0
        alive_ms = self._alive_ms
        while True:
            try:
                if self.available and not self._reconcile:
                    # The usual tick: one script saves and says this process is alive.
                    renewed = False
                    try:
                        await self._send_outbox()  # no command when empty, as it is here
                        renewed = await self._save(everything=False, alive_ms=alive_ms)
                    finally:
                        if not renewed and self.available:
                            # Redis is there but the save failed (a refused script, a bug):
                            # alive all the same, or others would take this process's
                            # sessions for a dead one's while it serves them.
                            await self._command(self._say_alive(alive_ms))
                else:
                    # Redis lost or just back: the plain write tells whether it is there.
                    await self._command(self._say_alive(alive_ms), mark=False)
                    if not self.available:
                        self.available = True
                        self._reconcile = True
                        log.info("redis engine connected to %s", self.url)
                    await self._save(everything=True)
                    self._reconcile = False
                    await self._send_outbox()
                if ticks % max(1, int(2 / self.sync_interval)) == 0:
                    await self._upkeep()
            except EngineUnavailable:
                pass
            except Exception:  # the upkeep must go on whatever happens
                log.exception("redis engine upkeep failed")
            ticks += 1
            await asyncio.sleep(self.sync_interval)

    def _say_alive(self, alive_ms: int) -> Awaitable[Any]:
        """This process's `alive` key, renewed for `alive_ms` (scripts.SAVE renews it too)."""
        renewing: Awaitable[Any] = self._client.set(self.keys.alive(self.me), b"1", px=alive_ms)
        return renewing

    async def _save(self, *, everything: bool, alive_ms: int = 0) -> bool:
        """Saves the floor and the sessions whose saved state changed (`everything`: all, and
        writes again the records Redis lost), and renews this process's `alive` key for
        `alive_ms` (0: not); lets go of sessions another process took by force. Whether the
        save ran (False: nothing to save)."""
        assert self._server is not None
        sessions = self._server.sessions
        floor = self.cursor  # every entry up to here is queued for the sessions it concerns
        # Records following the floor of sessions no longer served here: pinned to the floor
        # saved last (they had it then) before the floor moves on without them.
        left = [client_id for client_id in self._following if client_id not in sessions]
        args: list[Any] = [self.me, self.keys.prefix, floor, self._floor_ms, alive_ms, len(left)]
        args.extend(left)
        changed: dict[str, Saved] = {}
        for session in sessions.values():
            if session.local or session.remote:
                continue
            state = saved_state(session)
            if everything or self._saved.get(session.id) != state:
                changed[session.id] = state
                args.extend((session.id, *state))
        if not changed and not left and floor == self._floor and not alive_ms:
            return False
        lost, missing = await self._command(self._scripts["SAVE"](args=args))
        self._floor = floor
        self._following.difference_update(left)
        for client_id, state in changed.items():
            if state.follows_floor:
                self._following.add(client_id)
            else:
                self._following.discard(client_id)
        self._saved.update(changed)
        gone = {c.decode() for c in lost}
        for client_id in gone:
            self._server.let_go(client_id)
            self._saved.pop(client_id, None)
        if everything:
            # Back after an outage: subscriptions changed here meanwhile are written again.
            await self._recreate([c for c in changed if c not in gone])
        elif missing:
            await self._recreate([m.decode() for m in missing])
        return True

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
        }

    async def _recreate(self, client_ids: list[str]) -> None:
        """Writes again the records of sessions served here (Redis lost them, or could not
        be told of their changes)."""
        assert self._server is not None
        pipe = self._client.pipeline(transaction=False)
        for client_id in client_ids:
            session = self._server.sessions.get(client_id)
            if session is None:
                continue
            pipe.hset(self.keys.session(client_id), mapping=self._record_fields(session))
            pipe.delete(self.keys.subscriptions(client_id))
            if session.subscriptions:
                pipe.sadd(self.keys.subscriptions(client_id), *session.subscriptions)
            pipe.sadd(self.keys.owned(self.me), client_id)
        pipe.sadd(self.keys.processes, self.me)
        await self._command(pipe.execute())
        for client_id in client_ids:  # exact now: the next save writes what it keeps
            self._saved.pop(client_id, None)
            self._following.discard(client_id)
        log.info("wrote again the records of %d sessions", len(client_ids))

    async def _upkeep(self) -> None:
        assert self._server is not None
        max_interval = self._server.settings.max_interval + int(self.sync_interval * 1000)
        await self._command(self._scripts["REAP"](args=[self.keys.prefix, max_interval, 1000]))
        oldest = position_of(f"{int(_now_ms() - self.log_retention * 1000)}-0")
        await self._command(
            self._client.xtrim(self.keys.log, minid=stream_id_of(oldest), approximate=True)
        )

    # ------------------------------------------------------------------------ plumbing

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
        try:
            return await asyncio.wait_for(awaitable, self.command_timeout)
        except redis.exceptions.ResponseError as exc:
            if refusals:
                raise
            log.error("redis refused a command of the engine: %s", exc)
            raise EngineUnavailable(str(exc)) from exc
        except _FAILURES as exc:
            self._unavailable(exc)
            raise EngineUnavailable(str(exc)) from exc

    def _unavailable(self, exc: BaseException) -> None:
        if self.available:
            log.warning("redis engine lost %s: %s", self.url, exc)
        self.available = False

    def _spawn(self, coroutine: Awaitable[Any]) -> None:
        self._background.spawn(coroutine)

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


def _now_ms() -> int:
    return int(time.time() * 1000)
