"""A Redis pub/sub bus: runs one bayeux deployment as several processes (see core/bus.py).

Every process keeps its own sessions; each message published in one process is relayed through
one Redis channel to the others, which deliver it to their subscribers. A WebSocket stays on the
process it connected to; long-polling clients need sticky routing (by the BAYEUX_BROWSER cookie,
say) so that their requests reach the process holding their session.

On replay channels (core/replay.py) each event is also appended to a Redis Stream per channel,
and the newest id no longer retained is kept next to it: a process that starts loads them, so a
client that comes back after a restart with its last replay id gets what it missed.

Redis going away never stops or slows local delivery: messages wait in an outbox bounded in bytes
while the relay retries with backoff (past `outbox_bytes` the oldest are dropped and counted), and
the subscriber side reconnects by itself. Neither task dies of an unexpected error: it is logged
and the loop goes on.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections import deque
from typing import TYPE_CHECKING, Any

import orjson
import redis.asyncio
import redis.exceptions

from .core.replay import ReplayEvent, replay_id_of

if TYPE_CHECKING:
    from .core.message import Message
    from .core.server import BayeuxServer

log = logging.getLogger("bayeux.redis")
_FAILURES = (redis.exceptions.RedisError, OSError)


async def _closed(closing: Any) -> None:
    """Closes a Redis client or subscription, giving up after a second (a connection left
    mid-command by a cancellation may never answer)."""
    try:
        await asyncio.wait_for(closing, 1.0)
    except (TimeoutError, *_FAILURES):
        pass


class RedisBus:
    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        channel: str = "bayeux",
        *,
        outbox_bytes: int = 64 * 1024 * 1024,
        batch: int = 500,
    ) -> None:
        self.url = url
        self.channel = channel
        self.outbox_bytes = outbox_bytes
        self.batch = batch
        # Tags this process's messages so that it ignores them when Redis echoes them back.
        self.origin = secrets.token_hex(8).encode()
        self.relayed = 0  # sent to Redis
        self.received = 0  # delivered here from other processes
        self.dropped = 0  # lost to the relay: outbox overflow during a long outage
        self.subscribed = asyncio.Event()
        # (what to publish, the encoded message, the replay channel and id when it has one)
        self._outbox: deque[tuple[bytes, bytes, str | None, int]] = deque()
        self._outbox_size = 0  # bytes in _outbox
        self._pending = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._server: BayeuxServer | None = None

    # The Bus interface, called by the core for each published message.
    def share(self, message: Message, encoded: bytes) -> None:
        payload = self.origin + b" " + encoded
        channel, replay_id = None, 0
        replay = self._server.replay if self._server is not None else None
        # The shape first (a few dict lookups), the channel patterns only for what has it: most
        # messages are not replay events, and this runs once per publish.
        found = replay_id_of(message) if replay is not None else None
        if found is not None and replay is not None and replay.covers(message["channel"]):
            channel, replay_id = message["channel"], found
        self._outbox.append((payload, encoded, channel, replay_id))
        self._outbox_size += len(payload)
        self._trim()
        self._pending.set()

    def _trim(self) -> None:
        """Drops the oldest messages while the outbox is over its size (a long outage)."""
        while self._outbox_size > self.outbox_bytes and self._outbox:
            self._outbox_size -= len(self._outbox.popleft()[0])
            self.dropped += 1

    def outbox_size(self) -> int:
        return self._outbox_size

    async def start(self, server: BayeuxServer) -> None:
        """Starts relaying; returns at once (Redis may be down: it is retried in the
        background). `subscribed` is set whenever the receiving side is connected."""
        self._server = server
        server.bus = self
        self._tasks = [
            asyncio.ensure_future(self._receive()),
            asyncio.ensure_future(self._relay()),
        ]

    async def flush(self, timeout: float) -> bool:
        """Waits up to `timeout` seconds for the outbox to be relayed; whether it was."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self._outbox and loop.time() < deadline:
            await asyncio.sleep(0.02)
        return not self._outbox

    async def stop(self) -> None:
        if self._server is not None and self._server.bus is self:
            self._server.bus = None
        for task in self._tasks:
            task.cancel()
        # Bounded: a task cancelled in the middle of a Redis command can wait on its
        # connection's close; shutting down must not (asyncio.run cancels it again at exit).
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=2.0)
        self._tasks = []

    async def _relay(self) -> None:
        client = redis.asyncio.from_url(self.url, socket_connect_timeout=2, socket_timeout=5)
        backoff = 0.1
        try:
            while True:
                await self._pending.wait()
                self._pending.clear()
                while self._outbox:
                    batch = [
                        self._outbox.popleft() for _ in range(min(self.batch, len(self._outbox)))
                    ]
                    self._outbox_size -= sum(len(p[0]) for p in batch)
                    try:
                        await self._send(client, batch)
                    except Exception as exc:  # Redis errors, and anything unexpected: retry
                        # Put the batch back, in order, and try again later.
                        self._outbox.extendleft(reversed(batch))
                        self._outbox_size += sum(len(p[0]) for p in batch)
                        self._trim()
                        if not isinstance(exc, _FAILURES):
                            log.exception("unexpected error relaying to redis")
                        log.warning("redis relay failed (%s); retrying in %.1fs", exc, backoff)
                        await asyncio.sleep(backoff)
                        backoff = min(backoff * 2, 5.0)
                        continue
                    backoff = 0.1
                    self.relayed += len(batch)
        finally:
            await client.aclose()

    async def _send(self, client: Any, batch: list[tuple[bytes, bytes, str | None, int]]) -> None:
        pipe = client.pipeline(transaction=False)
        kept: set[str] = set()
        for payload, encoded, channel, replay_id in batch:
            pipe.publish(self.channel, payload)
            if channel is not None:
                pipe.xadd(self._stream(channel), {"m": encoded}, id=f"{replay_id}-0")
                kept.add(channel)
        replay = self._server.replay if self._server is not None else None
        for channel in kept:
            if replay is not None:
                floor = replay.floor(channel)
                pipe.set(self._floor_key(channel), floor)
                pipe.xtrim(self._stream(channel), minid=f"{floor + 1}-0", approximate=False)
        results = await pipe.execute(raise_on_error=False)
        failed = [r for r in results if isinstance(r, Exception)]
        if failed:
            # An append refused (an id below the stream's newest, from a process whose clock
            # is behind): the event is still delivered everywhere, only not kept in Redis.
            log.warning("redis kept %d replay events fewer: %s", len(failed), failed[0])

    def _stream(self, channel: str) -> str:
        return f"{self.channel}:replay:{channel}"

    def _floor_key(self, channel: str) -> str:
        return f"{self.channel}:replay-floor:{channel}"

    async def _load_history(self, client: Any) -> None:
        """Loads the replay events Redis keeps into this process's history."""
        replay = self._server.replay if self._server is not None else None
        if replay is None:
            return
        prefix = self._stream("")
        async for key in client.scan_iter(match=prefix + "*"):
            channel = key.decode()[len(prefix) :]
            entries = await client.xrevrange(key, count=replay.max_events)
            floor = await client.get(self._floor_key(channel))
            events = []
            for stream_id, fields in reversed(entries):
                message = orjson.loads(fields[b"m"])
                replay_id = replay_id_of(message)
                if replay_id is not None:
                    created = int(stream_id.split(b"-")[0]) / 1000
                    events.append(ReplayEvent(replay_id, created, message))
            replay.load(channel, events, int(floor) if floor is not None else None)
            log.info("loaded %d replay events of %s from redis", len(events), channel)

    async def _receive(self) -> None:
        backoff = 0.1
        loaded = False
        while True:
            client = redis.asyncio.from_url(self.url, socket_connect_timeout=2)
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                if not loaded:
                    # After subscribing, so that nothing published meanwhile is missed; the
                    # history merges what arrives out of order.
                    await self._load_history(client)
                    loaded = True
                self.subscribed.set()
                backoff = 0.1
                log.info("redis bus subscribed to %s on %s", self.channel, self.url)
                async for item in pubsub.listen():
                    self._deliver(item)
            except _FAILURES as exc:
                log.warning("redis subscription lost (%s); reconnecting in %.1fs", exc, backoff)
            except Exception:  # never let the receiving side die: log, reconnect
                log.exception("unexpected error on the redis subscription; reconnecting")
            finally:
                self.subscribed.clear()
                await _closed(pubsub.aclose())
                await _closed(client.aclose())
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)

    def _deliver(self, item: dict[str, Any]) -> None:
        if item.get("type") != "message" or self._server is None:
            return
        origin, _, body = item["data"].partition(b" ")
        if origin == self.origin:
            return
        try:
            message = orjson.loads(body)
            self._server.deliver_shared(message)
            self.received += 1
        except Exception:  # one bad message must not stop the bus
            log.exception("could not deliver a message from the redis bus")
