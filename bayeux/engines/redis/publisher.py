"""Publishing into a deployment on Redis from a process that is not a server: a Celery worker,
a cron job, a web view. The message is appended to the deployment's log, so every server
process delivers it to its subscribers in log order, as a broadcast from a client would be; on
replay channels it gets its replay id and shape, and is kept for replay.

Server extensions and message listeners do not run for it (no server handles it): the
publisher is trusted code of the application.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
import threading
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

import orjson

from ...core import channel as ch
from ...core.engine import position_of
from ...core.message import Delivery, Message
from ...core.replay import ReplayHistory
from ...core.settings import Settings
from ...core.threads import LoopOwner, NotOnLoop, on_loop_async
from ...core.users import check_user
from . import scripts
from .client import redis_client
from .keys import Keys
from .log import broadcast_fields, delivery_fields
from .replay import add_event

T = TypeVar("T")

# How long a deployment's replay configuration is trusted before it is read again.
_CONFIG_SECONDS = 5.0
_DEFAULTS = Settings()


class Publisher:
    """Publishes to a bayeux deployment's log on Redis, from asyncio code.

        async with Publisher("redis://127.0.0.1:6379/0") as publisher:
            await publisher.publish("/news", {"text": "hello"})

    `prefix` is the deployment's --redis-prefix. Each call returns the message's position in
    the log once Redis has it (it is then delivered by every server process), or raises
    ValueError for a message the servers would refuse (a meta or service channel, an invalid
    name, data that is not JSON or over `max_message_size`) and ConnectionError when Redis
    cannot be reached within `timeout` seconds.

    Examples:
        >>> import asyncio
        >>> from bayeux.client import SyncClient
        >>> from bayeux.engines.redis import RedisEngine
        >>> from bayeux.publisher import Publisher
        >>> from bayeux.testing import ServerThread
        >>> async def announce():  # a worker of the application, with no server in it
        ...     async with Publisher(redis_url) as publisher:  # "redis://127.0.0.1:6379/0"
        ...         await publisher.publish("/news", {"text": "hello"})
        >>> endpoint = Endpoint(engine=RedisEngine(redis_url))  # a server of the deployment
        >>> with ServerThread(endpoint=endpoint) as running, SyncClient(running.url) as client:
        ...     following = running.await_(endpoint.engine.ready.wait)  # the log, from now on
        ...     news = client.messages("/news", timeout=5)
        ...     asyncio.run(announce())
        ...     next(news)["data"]
        {'text': 'hello'}

    Added in version 0.3.0."""

    def __init__(
        self,
        redis_url: str,
        prefix: str = "bayeux",
        *,
        timeout: float = 5.0,
        max_message_size: int = _DEFAULTS.max_message_size,
    ) -> None:
        self.keys = Keys(prefix)
        self.timeout = timeout
        self.max_message_size = max_message_size
        # Named in the log as its origin, like a server process.
        self.name = "publisher-" + secrets.token_hex(6)
        self._client: Any = redis_client(redis_url, socket_connect_timeout=timeout)
        self._channels = ch.ChannelLimits(
            _DEFAULTS.max_channel_length, _DEFAULTS.max_channel_segments
        )
        # The servers' own script (no I/O to register it).
        self._user_deliver = self._client.register_script(scripts.script("USER_DELIVER"))
        self._replay: ReplayHistory | None = None
        self._log_length = 100_000
        self._config_read = float("-inf")
        # Its connections belong to the loop that first uses it: awaited on another
        # thread's loop, a call runs there (core/threads.py).
        self.loop_owner = LoopOwner()

    async def __aenter__(self) -> Publisher:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    @on_loop_async
    async def aclose(self) -> None:
        """Closes the connection to Redis.

        Examples:
            >>> import asyncio
            >>> from bayeux.publisher import Publisher
            >>> async def once():
            ...     publisher = Publisher(redis_url)
            ...     try:
            ...         return await publisher.publish("/news", "hello") > 0
            ...     finally:
            ...         await publisher.aclose()  # what `async with` does
            >>> asyncio.run(once())
            True
        """
        await self._client.aclose()

    @on_loop_async
    async def publish(self, channel: str, data: Any, *, ext: dict[str, Any] | None = None) -> int:
        """Broadcasts `data` on `channel` to every subscriber of the deployment; returns its
        position in the log.

        Examples:
            >>> import asyncio
            >>> from bayeux.publisher import Publisher
            >>> async def announce():
            ...     async with Publisher(redis_url) as publisher:
            ...         first = await publisher.publish("/news", {"text": "hello"})
            ...         second = await publisher.publish("/news", {"text": "again"})
            ...         return second > first
            >>> asyncio.run(announce())
            True
        """
        message: Message = {"channel": channel, "data": data}
        if ext is not None:
            message["ext"] = ext
        self._check(channel)
        await self._read_config()
        replay_id = None
        if self._replay is not None and self._replay.covers(channel):
            message, replay_id = self._replay.shape(message)
        delivery = self._encoded(message)
        pipe = self._client.pipeline(transaction=False)
        pipe.xadd(
            self.keys.log,
            broadcast_fields(delivery, None, self.name, False),
            maxlen=self._log_length,
            approximate=True,
        )
        if replay_id is not None:
            add_event(pipe, self.keys, channel, replay_id, delivery.json)
        results = await self._run(pipe.execute(raise_on_error=False))
        if isinstance(results[0], Exception):
            raise ConnectionError(f"redis refused the log entry: {results[0]}")
        return _position(results[0])

    @on_loop_async
    async def deliver_to_client(self, client_id: str, channel: str, data: Any) -> int:
        """Sends `data` on `channel` to one session, whichever process serves it (nothing
        happens if the deployment has no such session); returns its position in the log.

        Examples:
            >>> import asyncio
            >>> from bayeux.publisher import Publisher
            >>> async def direct(client_id):
            ...     async with Publisher(redis_url) as publisher:
            ...         return await publisher.deliver_to_client(client_id, "/direct", "hi")
            >>> asyncio.run(direct("a-client-id-from-your-records")) > 0
            True
        """
        self._check(channel)
        delivery = self._encoded({"channel": channel, "data": data})
        entry = await self._run(
            self._client.xadd(
                self.keys.log,
                delivery_fields(client_id, delivery),
                maxlen=self._log_length,
                approximate=True,
            )
        )
        return _position(entry)

    @on_loop_async
    async def deliver_to_user(self, user: str, channel: str, data: Any) -> int:
        """Sends `data` on `channel` to every session of `user` (BayeuxServer.associate),
        whichever processes serve them; returns how many sessions.

        Examples:
            >>> import asyncio
            >>> from bayeux.publisher import Publisher
            >>> async def notify(user):
            ...     async with Publisher(redis_url) as publisher:
            ...         return await publisher.deliver_to_user(user, "/inbox", {"unread": 3})
            >>> asyncio.run(notify("alice"))  # she has no session right now
            0
        """
        check_user(user)
        self._check(channel)
        await self._read_config()
        delivery = self._encoded({"channel": channel, "data": data})
        reached = await self._run(
            self._user_deliver(
                keys=[self.keys.log],
                args=[self.keys.prefix, user, self._log_length, delivery.json],
            )
        )
        return int(reached)

    def _check(self, channel: str) -> None:
        if not self._channels.valid_name(channel) or ch.is_meta(channel):
            raise ValueError(f"cannot publish to {channel!r}")
        if ch.is_service(channel):
            raise ValueError(f"{channel!r} is a service channel: only a server answers those")

    def _encoded(self, message: Message) -> Delivery:
        try:
            delivery = Delivery(message)
        except (TypeError, ValueError, OverflowError) as exc:
            raise ValueError(f"{message['channel']}: not representable as JSON: {exc}") from None
        if len(delivery.json) > self.max_message_size:
            raise ValueError(
                f"{message['channel']}: {len(delivery.json)} bytes, over {self.max_message_size}"
            )
        return delivery

    async def _read_config(self) -> None:
        now = time.monotonic()
        if now - self._config_read < _CONFIG_SECONDS:
            return
        config = await self._run(self._client.hgetall(self.keys.config))
        self._config_read = now
        self._log_length = int(config.get(b"log_length", self._log_length))
        replay = orjson.loads(config.get(b"replay", b"null"))
        if not replay:
            self._replay = None
        elif self._replay is None or tuple(replay["patterns"]) != self._replay.patterns:
            self._replay = ReplayHistory(
                tuple(replay["patterns"]),
                max_events=int(replay["max_events"]),
                retention_seconds=float(replay["retention_seconds"]),
            )

    async def _run(self, command: Any) -> Any:
        # Its connections now belong to this loop: calls from other threads cross into it.
        self.loop_owner.bind_running()
        try:
            return await asyncio.wait_for(command, self.timeout)
        except (OSError, TimeoutError) as exc:
            raise ConnectionError(f"redis not reachable: {exc}") from exc
        except Exception as exc:  # redis-py's own errors
            if type(exc).__module__.startswith("redis"):
                raise ConnectionError(f"redis: {exc}") from exc
            raise


class SyncPublisher:
    """The same for code without an event loop (a script, a WSGI view, a Celery task): each
    call blocks until Redis has the message. Its own event loop runs on a daemon thread; any
    number of threads may share one (their calls are run on that loop one after another).

    Examples:
        >>> from bayeux.client import SyncClient
        >>> from bayeux.engines.redis import RedisEngine
        >>> from bayeux.publisher import SyncPublisher
        >>> from bayeux.testing import ServerThread
        >>> endpoint = Endpoint(engine=RedisEngine(redis_url))  # a server of the deployment
        >>> with ServerThread(endpoint=endpoint) as running, SyncClient(running.url) as client:
        ...     following = running.await_(endpoint.engine.ready.wait)  # the log, from now on
        ...     news = client.messages("/news", timeout=5)
        ...     with SyncPublisher(redis_url) as publisher:  # in a script, a view, a task
        ...         position = publisher.publish("/news", {"text": "hello"})
        ...     next(news)["data"]
        {'text': 'hello'}

    Added in version 0.3.0."""

    _counter = itertools.count()

    def __init__(self, redis_url: str, prefix: str = "bayeux", **options: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever,
            name=f"bayeux-publisher-{next(self._counter)}",
            daemon=True,
        )
        self._thread.start()
        self._publisher: Publisher = self._call(_make(redis_url, prefix, options))

    def __enter__(self) -> SyncPublisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def publish(self, channel: str, data: Any, *, ext: dict[str, Any] | None = None) -> int:
        """`Publisher.publish`, blocking: the message's position in the log.

        Examples:
            >>> from bayeux.publisher import SyncPublisher
            >>> with SyncPublisher(redis_url) as publisher:
            ...     publisher.publish("/news", {"text": "hello"}) > 0
            True
        """
        return self._call(self._publisher.publish(channel, data, ext=ext))

    def deliver_to_client(self, client_id: str, channel: str, data: Any) -> int:
        """`Publisher.deliver_to_client`, blocking.

        Examples:
            >>> from bayeux.publisher import SyncPublisher
            >>> with SyncPublisher(redis_url) as publisher:
            ...     publisher.deliver_to_client("a-client-id", "/direct", "hi") > 0
            True
        """
        return self._call(self._publisher.deliver_to_client(client_id, channel, data))

    def deliver_to_user(self, user: str, channel: str, data: Any) -> int:
        """`Publisher.deliver_to_user`, blocking.

        Examples:
            >>> from bayeux.publisher import SyncPublisher
            >>> with SyncPublisher(redis_url) as publisher:
            ...     publisher.deliver_to_user("alice", "/inbox", {"unread": 3})  # no session
            0
        """
        return self._call(self._publisher.deliver_to_user(user, channel, data))

    def close(self) -> None:
        """Closes the connection to Redis and stops the publisher's thread.

        Examples:
            >>> from bayeux.publisher import SyncPublisher
            >>> publisher = SyncPublisher(redis_url)
            >>> position = publisher.publish("/news", "hello")
            >>> publisher.close()  # what `with` does
            >>> publisher.close()  # once is enough
        """
        if self._loop.is_closed():
            return
        try:
            self._call(self._publisher.aclose())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
            self._loop.close()

    def _call(self, work: Coroutine[Any, Any, T]) -> T:
        # Any thread may call: each call is one coroutine run on the publisher's own loop.
        try:
            running = asyncio.run_coroutine_threadsafe(work, self._loop)
        except RuntimeError:
            work.close()
            raise NotOnLoop("this SyncPublisher is closed: make a new one") from None
        return running.result()


async def _make(redis_url: str, prefix: str, options: dict[str, Any]) -> Publisher:
    return Publisher(redis_url, prefix, **options)


def _position(entry_id: bytes | str) -> int:
    return position_of(entry_id.decode() if isinstance(entry_id, bytes) else entry_id)
