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

import orjson
import redis.exceptions

from ...core.engine import (
    Claimed,
    EngineHost,
    EngineUnavailable,
    LocalEngine,
    RecordMissing,
    SessionRecord,
    position_of,
)
from ...core.message import Delivery
from ...core.session import Ended, ServerSession
from ...core.users import TooManySessions
from . import log as entries
from . import scripts
from .base import _FAILURES, log
from .client import redis_client
from .records import (
    pending_of,
    record_of,
    saved,
    state_of,
    timing_field,
)
from .replay import ReplayStore
from .upkeep import Upkeep


class RedisEngine(Upkeep):
    """The engine (core/engine.py) of a deployment on one Redis. Start it with the server
    (Endpoint does), stop it with `stop()`."""

    def attach(self, host: EngineHost) -> None:
        """Binds the engine to `host` before it serves a request (no I/O): until Redis is
        reached, what needs it answers with retry advice and broadcasts are delivered here."""
        if self._server is host:
            return
        self._server = host
        host.engine = self
        added = getattr(host, "on_session_added", None)
        if added is not None:  # sessions made without a handshake (create_session) included
            added(self._session_added)
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
                server.engine = LocalEngine()

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
                        *state_of(session, self.cursor),
                        pending_of(session),
                    ],
                    client=pipe,
                )
            new_owners = await pipe.execute(raise_on_error=False)
            for session, new_owner in zip(chunk, new_owners, strict=True):
                if isinstance(new_owner, bytes) and new_owner:
                    await self._tell(new_owner.decode(), f"released {session.id}")
        await self._client.delete(self.keys.alive(self.me))

    def append(self, delivery: Delivery, sender: str | None) -> asyncio.Future[bool]:
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        if not self.available:
            done.set_result(False)
        else:
            fields = entries.broadcast_fields(delivery, sender, self.me, False)
            self._queue(fields, delivery, done)

        def settled(future: asyncio.Future[bool]) -> None:
            if not future.result():
                self._keep_for_later(delivery, sender)

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
        self._unsettled.add(session.id)
        await self._command(pipe.execute())

    async def claim(
        self, client_id: str, acknowledged: int | None, browser: str | None = None
    ) -> Claimed | None:
        # While it runs, a request to let go of the session waits: it would find nothing
        # here yet, and the session would end up served in two places.
        claiming = asyncio.get_running_loop().create_future()
        self._claiming[client_id] = claiming
        try:
            return await self._claim(client_id, acknowledged, browser)
        finally:
            if self._claiming.get(client_id) is claiming:
                del self._claiming[client_id]
            claiming.set_result(None)

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
        try:
            await self._subscribe_script(session, patterns, subscribed, replay)
        except (EngineUnavailable, RecordMissing):
            # Applied here all the same (core/meta.py): its whole record, subscriptions
            # included, is written when Redis is back.
            if not session.remote:
                self._unsynced.add(session.id)
            raise

    async def _subscribe_script(
        self,
        session: ServerSession,
        patterns: list[str],
        subscribed: bool,
        replay: dict[str, int],
    ) -> None:
        written = await self._command(
            self._scripts["SUBSCRIBE"](
                keys=[
                    self.keys.subscriptions(session.id),
                    self.keys.log,
                    self.keys.session(session.id),
                ],
                args=[
                    session.id,
                    "1" if subscribed else "0",
                    self.log_length,
                    orjson.dumps(replay) if replay else "",
                    self.keys.prefix,
                    *patterns,
                ],
            )
        )
        if written == 0:
            raise RecordMissing(session.id)
        if written:
            self.appended += 1

    async def channel_subscribers(self, channel: str, limit: int) -> tuple[int, list[str]]:
        key = self.keys.members(channel)
        pipe = self._client.pipeline(transaction=False)
        pipe.scard(key)
        pipe.srandmember(key, limit)
        count, members = await self._command(pipe.execute())
        return int(count), sorted(m.decode() for m in members)

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

    async def end(self, client_id: str, stop_ms: int = 0) -> None:
        owner = await self._end(client_id, "", stop_ms)
        if owner:
            verb = b"kick " if stop_ms else b"end "
            await self._command(
                self._client.publish(self.keys.control(owner), verb + client_id.encode())
            )

    async def user_joined(self, session: ServerSession, user: str, limit: int) -> bool:
        joined = await self._command(
            self._scripts["USER_JOIN"](args=[self.keys.prefix, session.id, user, limit])
        )
        if int(joined) < 0:
            raise TooManySessions(user, limit)
        return bool(joined)

    async def user_left(self, client_id: str, user: str) -> bool:
        left = await self._command(
            self._scripts["USER_LEAVE"](args=[self.keys.prefix, client_id, user])
        )
        return bool(left)

    async def deliver_to_user(self, user: str, delivery: Delivery) -> int:
        reached = await self._command(
            self._scripts["USER_DELIVER"](
                keys=[self.keys.log],
                args=[self.keys.prefix, user, self.log_length, delivery.json],
            )
        )
        self.appended += int(reached)
        return int(reached)

    async def online_users(self, limit: int) -> list[str]:
        members = await self._command(self._client.srandmember(self.keys.online, limit))
        return sorted(m.decode("utf-8", "replace") for m in members)

    def timing_changed(self, session: ServerSession) -> None:
        if not self.available:
            self._unsynced.add(session.id)  # its whole record is written when Redis is back
            return
        self._spawn(self._write_timing(session))

    async def _write_timing(self, session: ServerSession) -> None:
        try:
            await self._command(
                self._scripts["TIMING"](
                    keys=[self.keys.session(session.id)], args=[timing_field(session)]
                )
            )
        except EngineUnavailable:
            self._unsynced.add(session.id)
            raise

    def _session_added(self, session: ServerSession) -> None:
        self._unsettled.add(session.id)

    def removed(self, session: ServerSession, reason: Ended) -> None:
        self._saved.pop(session.id, None)
        self._unsynced.discard(session.id)
        self._gone(session.id)
        if reason is Ended.MOVED or not self.available:
            return
        assert self._server is not None
        stop_ms = self._server.stop_ms(session) if reason is Ended.KICKED else 0
        self._spawn(self._end(session.id, self.me, stop_ms))
