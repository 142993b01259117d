"""`Client`: a Bayeux client on asyncio.

    async with Client("http://127.0.0.1:8080/cometd") as client:
        await client.subscribe("/chat/room", print)
        await client.publish("/chat/room", {"text": "hello"})

The client handshakes over the first transport of `transports` the server can be reached on
(a WebSocket that cannot be upgraded falls back to long-polling), then keeps one connect held
at a time, as the server's advice says: `reconnect` retry, handshake or none, `interval`
between connects, `timeout` for how long the server holds one (both capped). Its states and
their transitions are in state.py; `on_state` tells the application of each move.

After a lost session (402 to any message, or advice to handshake) it handshakes again at once
and subscribes again to everything it had; messages the application sends meanwhile are held
(at most `max_pending`, for at most `hold_timeout` seconds) and go out on the new session, and
a publish refused with 402 is sent once more there. Failed connects back off exponentially,
with jitter; so do handshakes that do not lead to a held connect, so a server that forgets
every session is not met with a handshake storm. What the server sends is checked
(replies.py): a malformed or oversized reply fails the exchange, as a lost connection would.
Messages sent in one loop turn go in one batch.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import random
import ssl as ssl_module
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable, Mapping
from typing import Any, TypeVar

import aiohttp

from ..core.channel import is_meta, matches
from ..core.tasks import TaskSet
from . import replies
from .errors import BayeuxError, ClientClosed, NotSent, ProtocolError, QueueFull, TransportError
from .extensions import ClientExtension
from .state import SENDING, SETTLED, State, StateMachine
from .transports import LongPolling, Transport, WebSocket

log = logging.getLogger("bayeux.client")

T = TypeVar("T")
Message = dict[str, Any]
Callback = Callable[[Message], Awaitable[None] | None]
StateCallback = Callable[[State, State], Awaitable[None] | None]

TRANSPORTS = ("websocket", "long-polling")

# What a client assumes until a server advises otherwise (CometD's defaults).
DEFAULT_ADVICE: Message = {"reconnect": "retry", "interval": 0, "timeout": 30000}


class Backoff:
    """Exponential backoff with jitter: attempt n waits a random time between half of and
    all of min(maximum, increment * 2**n) seconds."""

    def __init__(self, increment: float, maximum: float) -> None:
        self.increment = increment
        self.maximum = maximum
        self.attempts = 0

    def next_delay(self) -> float:
        ceiling = min(self.maximum, self.increment * 2**self.attempts)
        self.attempts = min(self.attempts + 1, 32)
        return random.uniform(ceiling / 2, ceiling)

    def first_free(self) -> float:
        """No wait for the first attempt since the last reset, then `next_delay`'s: a lost
        session is handshaken again at once, a server that keeps losing them less and less
        often."""
        if self.attempts == 0:
            self.attempts = 1
            return 0.0
        return self.next_delay()

    def reset(self) -> None:
        self.attempts = 0


def _is_lost_session(reply: Message) -> bool:
    return str(reply.get("error") or "").startswith("402")


class Subscription:
    """One callback on one channel (a name or a wildcard pattern).

    Examples:
        >>> import asyncio
        >>> from bayeux.client import Client
        >>> from bayeux.testing import ServerThread
        >>> async def main(url):
        ...     async with Client(url) as client:
        ...         subscription = await client.subscribe("/chat/*", print)
        ...         print(subscription.channel, subscription.callback is print)
        ...         await client.unsubscribe(subscription)
        >>> with ServerThread() as running:
        ...     asyncio.run(main(running.url))
        /chat/* True

    Added in version 0.3.0."""

    __slots__ = ("channel", "callback")

    def __init__(self, channel: str, callback: Callback) -> None:
        self.channel = channel
        self.callback = callback


class Client:
    """A Bayeux client. Open it with `await client.open()` or `async with`.

    Args:
        url: the server's Bayeux URL (`http://`, `https://`; WebSocket URLs are made from it).
        transports: the connection types to use, in order of preference ("websocket",
            "long-polling").
        extensions: ClientExtension objects, applied in order to what is sent and in
            reverse order to what is received.
        headers: sent with every request and with the WebSocket upgrade.
        cookies: sent likewise (the server's own cookies are kept as they come).
        ssl: an SSLContext for https:// and wss:// URLs, or False to skip verification.
        msgpack: ask for the `bayeux-msgpack` subprotocol on WebSocket.
        max_pending: messages that may wait to be sent, held while there is no session;
            `QueueFull` beyond.
        hold_timeout: seconds a message may wait for a session before it fails with
            `NotSent`.
        max_reply_size: the largest reply read from the server, in bytes (a long-polling
            response body, a WebSocket message); a larger one fails the exchange with
            `ReplyTooLarge` before it is read whole.
        max_reply_messages: the most messages taken from one reply; likewise beyond.
        max_advised_interval: seconds; an advised `interval` above it is taken as this (and
            logged), so a server cannot put the client to sleep for good.
        max_advised_timeout: seconds; likewise for the advised `timeout` of a held connect.
        min_connect_interval: seconds between the starts of two connects at least, so a
            server that answers every connect at once is not met with a busy loop.
        request_timeout: seconds a request may take, beyond the server's advised timeout
            for a held connect.
        backoff: seconds of the first retry after a failure (doubling, with jitter).
        max_backoff: seconds of the longest wait between retries.
        handshake_ext: an `ext` object for the handshake (credentials, say).

    Raises:
        ValueError: for an unknown transport, or none.

    Examples:
        >>> import asyncio
        >>> from bayeux.client import Client
        >>> from bayeux.testing import ServerThread
        >>> async def chat(url):
        ...     async with Client(url) as client:
        ...         received = asyncio.Queue()
        ...         await client.subscribe("/chat/room", received.put_nowait)
        ...         await client.publish("/chat/room", {"text": "hello"})
        ...         return (await received.get())["data"]
        >>> with ServerThread() as running:
        ...     asyncio.run(chat(running.url))
        {'text': 'hello'}

    Added in version 0.3.0.
    """

    def __init__(
        self,
        url: str,
        *,
        transports: Iterable[str] = TRANSPORTS,
        extensions: Iterable[ClientExtension] = (),
        headers: Mapping[str, str] | None = None,
        cookies: Mapping[str, str] | None = None,
        ssl: ssl_module.SSLContext | bool = True,
        msgpack: bool = True,
        max_pending: int = 1000,
        hold_timeout: float = 30.0,
        max_reply_size: int = replies.MAX_REPLY_SIZE,
        max_reply_messages: int = replies.MAX_REPLY_MESSAGES,
        max_advised_interval: float = 60.0,
        max_advised_timeout: float = 120.0,
        min_connect_interval: float = 0.05,
        request_timeout: float = 15.0,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        handshake_ext: Mapping[str, Any] | None = None,
    ) -> None:
        self.url = url
        self.transports = list(transports)
        unknown = [t for t in self.transports if t not in TRANSPORTS]
        if unknown or not self.transports:
            raise ValueError(f"transports must be among {TRANSPORTS}, not {unknown or 'none'}")
        self.extensions = list(extensions)
        self.headers = dict(headers or {})
        self.cookies = dict(cookies or {})
        self.ssl = ssl
        self.msgpack = msgpack
        self.max_pending = max_pending
        self.hold_timeout = hold_timeout
        self.bounds = replies.Bounds(max_reply_size, max_reply_messages)
        self.max_advised_interval = max_advised_interval
        self.max_advised_timeout = max_advised_timeout
        self.min_connect_interval = min_connect_interval
        self.request_timeout = request_timeout
        # Connects that fail; and handshakes again that do not lead to a held connect.
        self.backoff = Backoff(backoff, max_backoff)
        self.handshake_backoff = Backoff(backoff, max_backoff)
        self.handshake_ext = dict(handshake_ext or {})

        self.client_id: str | None = None
        self.advice: Message = dict(DEFAULT_ADVICE)
        self.transport: Transport | None = None
        self._machine = StateMachine()
        self._state_callbacks: list[StateCallback] = []
        self._http: aiohttp.ClientSession | None = None
        self._ids = itertools.count(1)
        self._waiting: dict[str, asyncio.Future[Message]] = {}
        self._calls: dict[str, asyncio.Future[Message]] = {}
        # The session each message with an id was sent in: a 402 to it means the session is
        # lost only if it is still the current one.
        self._sent_in: dict[str, str | None] = {}
        # Messages waiting for a session, with the loop time each was queued at.
        self._outbox: list[tuple[float, Message]] = []
        self._flushing = False
        self._session_ready = asyncio.Event()  # set in SETTLED states
        # Set to stop the connect loop's current wait: the session was lost, or a send failed.
        self._interrupt = asyncio.Event()
        self._subscriptions: list[Subscription] = []
        self._subscribed: set[str] = set()
        self._connector: asyncio.Task[None] | None = None
        self._capped: set[tuple[str, float]] = set()
        # Batches on their way and coroutine callbacks running (held until done; a failure
        # is logged).
        self._flushes = TaskSet("sending a batch", log)
        self._callbacks = TaskSet("a callback", log)
        self.closed_reason: str | None = None

    # --------------------------------------------------------------------------- state

    @property
    def state(self) -> State:
        """Where the client is (`State`: NEW, HANDSHAKING, CONNECTED, DISCONNECTED,
        REHANDSHAKING, CLOSED).

        Examples:
            >>> import asyncio
            >>> from bayeux.client import Client
            >>> from bayeux.testing import ServerThread
            >>> async def states(url):
            ...     client = Client(url)
            ...     print(client.state)
            ...     async with client:
            ...         print(client.state)
            ...     print(client.state)
            >>> with ServerThread() as running:
            ...     asyncio.run(states(running.url))
            new
            connected
            closed
        """
        return self._machine.state

    def _in(self, *states: State) -> bool:
        # A method, not a comparison of the property: mypy would keep the property's value
        # narrowed across the awaits that change it.
        return self.state in states

    def on_state(self, callback: StateCallback) -> None:
        """Calls `callback(old, new)` at each change of `state`: a function or a coroutine
        function, run on the client's loop; what it raises is logged. CONNECTED after
        REHANDSHAKING is a new session (subscriptions restored, messages of the old one
        that were not delivered are lost unless an extension replays them).

        Examples:
            >>> import asyncio
            >>> from bayeux.client import Client
            >>> from bayeux.testing import ServerThread
            >>> async def main(url):
            ...     client = Client(url)
            ...     client.on_state(lambda old, new: print(old.name, "->", new.name))
            ...     async with client:
            ...         pass
            >>> with ServerThread() as running:
            ...     asyncio.run(main(running.url))
            NEW -> HANDSHAKING
            HANDSHAKING -> CONNECTED
            CONNECTED -> CLOSED
        """
        self._state_callbacks.append(callback)

    def _move(self, new: State) -> None:
        old = self._machine.move(new)
        if old is None:
            return
        if new in SETTLED:
            self._session_ready.set()
        else:
            self._session_ready.clear()
        log.debug("client %s: %s -> %s", self.client_id, old.name, new.name)
        for callback in list(self._state_callbacks):
            try:
                result = callback(old, new)
            except Exception:
                log.exception("a state callback failed on %s -> %s", old.name, new.name)
                continue
            if result is not None:
                self._callbacks.spawn(result)

    # ----------------------------------------------------------------------- lifecycle

    async def __aenter__(self) -> Client:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.disconnect()

    async def open(self) -> None:
        """Handshakes and starts connecting.

        Raises:
            BayeuxError: the server refused the handshake (its error, and its reply).
            ProtocolError: the server's handshake reply is not a valid one (the field named).
            TransportError: no transport reached the server (each one's reason).
            ClientClosed: the client was opened before.

        Examples:
            >>> import asyncio
            >>> from bayeux.client import Client
            >>> from bayeux.testing import ServerThread
            >>> async def main(url):
            ...     client = Client(url, transports=["long-polling"])
            ...     await client.open()  # or: async with Client(url) as client
            ...     print(client.transport.name, client.client_id is not None)
            ...     await client.disconnect()
            >>> with ServerThread() as running:
            ...     asyncio.run(main(running.url))
            long-polling True
        """
        if self.state != State.NEW:
            raise ClientClosed("open() is called once per client")
        self._move(State.HANDSHAKING)
        self._http = aiohttp.ClientSession(
            headers=self.headers,
            cookies=self.cookies,
            # Cookies of loopback and IP-addressed servers kept too (the browser cookie).
            cookie_jar=aiohttp.CookieJar(unsafe=True),
            connector=aiohttp.TCPConnector(ssl=self.ssl),
            # A compressed body's size says nothing of what it inflates to: ask for none and
            # inflate none, so max_reply_size bounds what is held.
            auto_decompress=False,
            skip_auto_headers=("Accept-Encoding",),
        )
        try:
            reply = await self._handshake()
        except BaseException as error:
            await self._finish(str(error) or type(error).__name__)
            raise
        if not reply.get("successful"):
            await self._finish(str(reply.get("error") or "handshake refused"))
            raise BayeuxError(str(reply.get("error") or "handshake refused"), reply)
        self._move(State.CONNECTED)
        self._connector = asyncio.ensure_future(self._connect_loop())

    async def disconnect(self) -> None:
        """Tells the server this session ends (best effort, within 3 s) and closes the
        connections. Calling it again does nothing.

        Examples:
            >>> import asyncio
            >>> from bayeux.client import Client
            >>> from bayeux.testing import ServerThread
            >>> async def main(url):
            ...     client = Client(url)
            ...     await client.open()
            ...     await client.disconnect()
            ...     await client.disconnect()  # nothing more
            ...     return client.state
            >>> with ServerThread() as running:
            ...     asyncio.run(main(running.url))
            <State.CLOSED: 'closed'>
        """
        if self.client_id is not None and self.transport is not None and self.state != "closed":
            message = {"channel": "/meta/disconnect", "clientId": self.client_id}
            try:
                await asyncio.wait_for(self._request(message, wait_session=False), 3)
            except (TimeoutError, BayeuxError):
                pass  # the server forgets the session at its timeout instead
        await self._finish("disconnected")

    async def _finish(self, reason: str) -> None:
        if self.closed_reason is None:
            self.closed_reason = reason
        self._move(State.CLOSED)  # wakes whoever waits for a session, to find it closed
        # Called by the connect loop itself (advice none) and then by disconnect(): the second
        # call still waits for the loop, so nothing runs on after the client is closed.
        connector = self._connector
        if connector is not None and connector is not asyncio.current_task():
            self._connector = None
            connector.cancel()
            await asyncio.gather(connector, return_exceptions=True)
        for future in [*self._waiting.values(), *self._calls.values()]:
            if not future.done():
                future.set_exception(ClientClosed(reason))
        self._waiting.clear()
        self._calls.clear()
        for _, message in self._outbox:
            log.debug("not sent (client closed): %s", message.get("channel"))
        self._outbox.clear()
        await self._close_transport()
        if self._http is not None:
            await self._http.close()

    async def _close_transport(self) -> None:
        transport, self.transport = self.transport, None
        if transport is not None:
            await transport.close()

    # ------------------------------------------------------------------------ handshake

    def _transport(self, name: str) -> Transport:
        assert self._http is not None
        if name == "websocket":
            return WebSocket(
                self._http,
                self.url,
                self._received,
                msgpack=self.msgpack,
                bounds=self.bounds,
                on_closed=self._transport_closed,
            )
        return LongPolling(self._http, self.url, self._received, bounds=self.bounds)

    async def _handshake(self) -> Message:
        """Handshakes over the first transport that works; the reply (successful or not).
        Raises TransportError when no transport reaches the server (ProtocolError when one
        answered something that is not a valid handshake reply)."""
        self.client_id = None
        await self._close_transport()
        failures: list[str] = []
        malformed = False
        for name in self.transports:
            transport = self._transport(name)
            try:
                await transport.open()
            except TransportError as error:
                failures.append(f"{name}: {error}")
                continue
            self.transport = transport
            message: Message = {
                "channel": "/meta/handshake",
                "version": "1.0",
                "minimumVersion": "1.0",
                "supportedConnectionTypes": list(self.transports),
            }
            if self.handshake_ext:
                message["ext"] = dict(self.handshake_ext)
            try:
                reply = await self._request(message, wait_session=False)
                if not reply.get("successful"):
                    return reply
                client_id, offered = replies.handshake_session(reply)
            except (TransportError, TimeoutError) as error:
                malformed = malformed or isinstance(error, ProtocolError)
                failures.append(f"{name}: {str(error) or 'no handshake reply'}")
                await self._close_transport()
                continue
            if name not in offered:
                failures.append(f"{name}: not offered by the server")
                await self._close_transport()
                continue
            self.client_id = client_id
            self._advise(reply)
            return reply
        kind = ProtocolError if malformed else TransportError
        raise kind("no transport reached the server: " + "; ".join(failures))

    async def _handshake_again(self) -> bool:
        """After a lost session: handshakes (at once the first time since a held connect
        succeeded, then backing off) and subscribes again; moves to CONNECTED. False when the
        server refuses the handshake and advises not to come back."""
        await self._pause(max(self._advised("interval"), self.handshake_backoff.first_free()))
        while self.state != State.CLOSED:
            try:
                reply = await self._handshake()
            except TransportError as error:
                delay = self.handshake_backoff.next_delay()
                log.info("handshake failed (%s); again in %.1f s", error, delay)
                await self._pause(delay)
                continue
            if not reply.get("successful"):
                self._advise(reply)
                if self.advice.get("reconnect") == "none":
                    await self._finish(str(reply.get("error") or "handshake refused"))
                    return False
                delay = max(self._advised("interval"), self.handshake_backoff.next_delay())
                log.info("handshake refused (%s); again in %.1f s", reply.get("error"), delay)
                await self._pause(delay)
                continue
            restored = await self._resubscribe()
            self._move(State.CONNECTED)
            log.info(
                "session re-established (%s), %d of %d subscriptions restored",
                self.client_id,
                restored,
                len(self._subscribed),
            )
            return True
        return False

    async def _resubscribe(self) -> int:
        """Subscribes the new session to every channel of the old one, before the messages
        held meanwhile go out (a client publishing to itself receives them); how many the
        server took. A channel refused stays wanted: the next session asks again."""
        channels = sorted(self._subscribed)
        results = await asyncio.gather(
            *(self._subscribe_channel(c, wait_session=False) for c in channels),
            return_exceptions=True,
        )
        restored = 0
        for channel, result in zip(channels, results, strict=True):
            if isinstance(result, BaseException):
                log.warning("could not subscribe again to %s: %s", channel, result)
            else:
                restored += 1
        return restored

    # -------------------------------------------------------------------------- connect

    def _advise(self, reply: Message) -> None:
        advice = reply.get("advice")
        if isinstance(advice, dict):
            self.advice.update(advice)

    def _advised(self, name: str) -> float:
        """The advised `interval` or `timeout` in seconds, within its cap (a capped value is
        logged once)."""
        value = self.advice.get(name)
        if not isinstance(value, int | float) or isinstance(value, bool) or not value >= 0:
            value = DEFAULT_ADVICE[name]
        seconds = float(value) / 1000
        cap = self.max_advised_interval if name == "interval" else self.max_advised_timeout
        if seconds > cap or math.isnan(seconds):
            if (name, seconds) not in self._capped:
                self._capped.add((name, seconds))
                log.warning(
                    "the server advised %s %s ms; waiting %s s (max_advised_%s)",
                    name,
                    value,
                    cap,
                    name,
                )
            return cap
        return seconds

    async def _pause(self, seconds: float) -> None:
        """Sleeps `seconds`, or less if the connect loop is interrupted meanwhile."""
        if seconds <= 0:
            return
        try:
            await asyncio.wait_for(self._interrupt.wait(), seconds)
        except TimeoutError:
            pass

    async def _unless_interrupted(self, awaitable: Awaitable[T]) -> T | None:
        """What `awaitable` returns; None (and it is cancelled) when the connect loop is
        interrupted first."""
        task = asyncio.ensure_future(awaitable)
        interrupted = asyncio.ensure_future(self._interrupt.wait())
        try:
            await asyncio.wait({task, interrupted}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            interrupted.cancel()
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        if task.cancelled():
            return None
        return task.result()

    def _interrupt_connect(self, new: State) -> None:
        """The session was lost (REHANDSHAKING) or a send failed (DISCONNECTED): messages are
        held from now on, and the connect loop acts at once rather than at the end of its
        held connect or its wait."""
        if self.state not in (State.CONNECTED, State.DISCONNECTED):
            return  # handshaking again already: its backoff is not to be cut short
        self._move(new)
        self._interrupt.set()

    async def _connect_loop(self) -> None:
        try:
            await self._connecting()
        except asyncio.CancelledError:
            raise
        except Exception as error:  # a bug here must close the client, not leave it hanging
            log.exception("the client's connect loop failed; closing the client")
            await self._finish(f"connect loop failed: {error!r}")

    async def _connecting(self) -> None:
        loop = asyncio.get_running_loop()
        first = True
        while self.state != State.CLOSED:
            self._interrupt.clear()
            if self.state == State.REHANDSHAKING:
                if not await self._handshake_again():
                    return
                first = True
                continue
            if self.transport is None or self.transport.broken:
                if not await self._reopen():
                    await self._pause(self.backoff.next_delay())
                    continue
                first = True
            assert self.transport is not None
            message: Message = {"channel": "/meta/connect", "connectionType": self.transport.name}
            if first:
                message["advice"] = {"timeout": 0}  # answered at once: the connection is up
            held = 0.0 if first else self._advised("timeout")
            started = loop.time()
            try:
                reply = await self._unless_interrupted(
                    self._request(message, timeout=held + self.request_timeout, wait_session=False)
                )
            except (TimeoutError, TransportError) as error:
                if self._in(State.CLOSED):
                    return
                if self.state == State.CONNECTED:
                    self._move(State.DISCONNECTED)
                delay = self.backoff.next_delay()
                log.info("connect failed (%s); again in %.1f s", error, delay)
                await self._pause(delay)
                first = True  # the next one answered at once: the client knows sooner
                continue
            if reply is None or self._in(State.REHANDSHAKING):
                first = True
                continue  # interrupted: the loop looks at the state again
            self._advise(reply)
            reconnect = self.advice.get("reconnect")
            if reply.get("successful"):
                self.backoff.reset()
                if not first:
                    # A held connect came back: the session lives. Handshakes before it
                    # that led nowhere no longer count.
                    self.handshake_backoff.reset()
                first = False
                if reconnect == "none":
                    await self._finish("the server advised reconnect none")
                    return
                self._move(State.CONNECTED)
                spacing = self.min_connect_interval - (loop.time() - started)
                await self._pause(max(self._advised("interval"), spacing))
                continue
            first = False
            refusal = str(reply.get("error") or "")
            if reconnect == "none":
                await self._finish(refusal or "the server advised reconnect none")
                return
            if reconnect == "handshake" or _is_lost_session(reply):
                self._move(State.REHANDSHAKING)
                continue
            await self._pause(max(self._advised("interval"), self.backoff.next_delay()))

    async def _reopen(self) -> bool:
        """After the WebSocket closed: a new connection for the same session, on the first
        transport that opens (the server keeps the session until its maxInterval passes; if
        it has not, the next connect is told 402 and the client handshakes again). The state
        stays DISCONNECTED until a connect on it succeeds."""
        await self._close_transport()
        for name in self.transports:
            transport = self._transport(name)
            try:
                await transport.open()
            except TransportError as error:
                log.info("could not open %s again: %s", name, error)
                continue
            self.transport = transport
            return True
        return False

    def _transport_closed(self, error: TransportError | None) -> None:
        """The WebSocket closed: requests waiting on it will get no reply (they fail with
        why it closed), and new ones are held until a connect succeeds again."""
        if self.state == State.CONNECTED:
            self._interrupt_connect(State.DISCONNECTED)
        failure = error or TransportError("the WebSocket closed")
        # Only what went out on it: the messages still held are sent on the next session.
        for message_id in list(self._sent_in):
            future = self._waiting.get(message_id)
            if future is not None and not future.done():
                future.set_exception(failure)

    # ------------------------------------------------------------------------- requests

    async def _request(
        self, message: Message, *, timeout: float | None = None, wait_session: bool = True
    ) -> Message:
        """Sends `message` and returns its reply (the reply of the same id). Queued, it waits
        for a session first (at most `hold_timeout`: NotSent)."""
        if self.state == State.CLOSED:
            raise ClientClosed(self.closed_reason or "closed")
        message_id = str(next(self._ids))
        message["id"] = message_id
        future: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._waiting[message_id] = future
        try:
            if wait_session:
                self._queue(message)
                # Held, then sent, then answered: the flush fails it with NotSent first.
                wait = self.hold_timeout + 2 * (timeout or self.request_timeout)
            else:
                await self._send_now([message], timeout or self.request_timeout)
                wait = timeout or self.request_timeout * 2
            return await asyncio.wait_for(future, wait)
        finally:
            self._waiting.pop(message_id, None)
            self._sent_in.pop(message_id, None)
            if wait_session:
                self._unqueue(message)

    def _queue(self, message: Message) -> None:
        """Queues `message` for the next batch (sent once there is a session)."""
        if len(self._outbox) >= self.max_pending:
            raise QueueFull(f"{len(self._outbox)} messages are waiting to be sent")
        self._outbox.append((asyncio.get_running_loop().time(), message))
        if not self._flushing:
            self._flushing = True
            asyncio.get_running_loop().call_soon(self._start_flush)

    def _unqueue(self, message: Message) -> None:
        """Takes back a message whose caller stopped waiting (timed out, cancelled): a caller
        told it failed must not see it sent later."""
        self._outbox = [(t, m) for t, m in self._outbox if m is not message]

    def _start_flush(self) -> None:
        self._flushes.spawn(self._flush())

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._outbox and self.state != State.CLOSED:
                if self.state not in SENDING:
                    oldest = self._outbox[0][0]
                    try:
                        await asyncio.wait_for(
                            self._session_ready.wait(), oldest + self.hold_timeout - loop.time()
                        )
                    except TimeoutError:
                        self._expire(loop.time())
                    continue
                batch, self._outbox = [m for _, m in self._outbox], []
                try:
                    await self._send_now(batch, self.request_timeout)
                except TransportError as error:
                    for message in batch:
                        self._fail(message, error)
                    self._interrupt_connect(State.DISCONNECTED)
        finally:
            self._flushing = False

    def _expire(self, now: float) -> None:
        """Fails the messages that waited `hold_timeout` for a session: never sent."""
        kept = []
        for queued, message in self._outbox:
            if now - queued >= self.hold_timeout:
                self._fail(
                    message,
                    NotSent(f"no session for {self.hold_timeout:g} s ({self.state.name})"),
                )
            else:
                kept.append((queued, message))
        self._outbox = kept

    def _fail(self, message: Message, error: Exception) -> None:
        message_id = str(message.get("id"))
        future = self._waiting.get(message_id) or self._calls.get(message_id)
        if future is not None and not future.done():
            future.set_exception(error)

    async def _send_now(self, batch: list[Message], timeout: float) -> None:
        transport = self.transport
        if transport is None:
            raise TransportError("not connected")
        sent = []
        for message in batch:
            if self.client_id is not None and message["channel"] != "/meta/handshake":
                message["clientId"] = self.client_id
            if "id" in message:
                self._sent_in[str(message["id"])] = self.client_id
            outgoing: Message | None = message
            for extension in self.extensions:
                if outgoing is None:
                    break
                outgoing = extension.outgoing(outgoing)
            if outgoing is None:
                self._fail(message, BayeuxError("dropped by an extension"))
                continue
            sent.append(outgoing)
        if sent:
            await transport.send(sent, timeout=timeout)

    # ------------------------------------------------------------------------- received

    def _received(self, messages: list[Message]) -> None:
        for message in messages:
            for extension in reversed(self.extensions):
                kept = extension.incoming(message)
                if kept is None:
                    break
                message = kept
            else:
                self._dispatch(message)

    def _dispatch(self, message: Message) -> None:
        channel = message.get("channel")
        message_id = str(message.get("id"))
        if not isinstance(channel, str):
            return  # an extension made it so; replies.py checked what the server sent
        if is_meta(channel) or "successful" in message:
            if (
                message.get("successful") is False
                and _is_lost_session(message)
                and channel not in ("/meta/connect", "/meta/handshake")
                and self._sent_in.get(message_id, self.client_id) == self.client_id
            ):
                # The server forgot this session while the connect loop did not know yet.
                self._interrupt_connect(State.REHANDSHAKING)
            call = self._calls.get(message_id)
            if call is not None and ("data" in message or message.get("successful") is False):
                if not call.done():
                    call.set_result(message)
                return
            future = self._waiting.get(message_id)
            if future is not None and not future.done():
                future.set_result(message)
            return
        for subscription in list(self._subscriptions):
            if subscription.channel == channel or matches(subscription.channel, channel):
                self._call(subscription.callback, message)

    def _call(self, callback: Callback, message: Message) -> None:
        try:
            result = callback(message)
        except Exception:
            log.exception("a subscription callback failed on %s", message.get("channel"))
            return
        if result is not None:
            self._callbacks.spawn(result)

    async def _request_once_more(self, make: Callable[[], Message]) -> Message:
        """`_request(make())`, and once more on the next session when the reply is 402: the
        server did not take the message (it did not know the session), so sending it again
        is safe, and the new session is the one the caller meant."""
        reply = await self._request(make())
        if reply.get("successful") is False and _is_lost_session(reply):
            log.info("%s: the session was lost; sending again on the new one", reply["channel"])
            reply = await self._request(make())
        return reply

    # ----------------------------------------------------------------------------- API

    async def subscribe(self, channel: str, callback: Callback) -> Subscription:
        """Calls `callback(message)` for each message on `channel`. The server is asked once
        per channel, whatever the number of callbacks.

        Args:
            channel: a channel name, or a pattern such as `/chat/*` or `/chat/**`.
            callback: a function or a coroutine function of the message; what it raises is
                logged and does not stop the others.

        Returns:
            The subscription, to give to `unsubscribe`.

        Raises:
            BayeuxError: the server refused the subscription.
            ClientClosed: the client is closed.
            QueueFull: too many messages wait to be sent.

        Examples:
            >>> import asyncio
            >>> from bayeux.client import Client
            >>> from bayeux.testing import ServerThread
            >>> async def main(url):
            ...     async with Client(url) as client:
            ...         received = asyncio.Queue()
            ...         await client.subscribe("/chat/**", received.put_nowait)
            ...         await client.publish("/chat/rooms/lobby", "hello")
            ...         message = await received.get()
            ...         return message["channel"], message["data"]
            >>> with ServerThread() as running:
            ...     asyncio.run(main(running.url))
            ('/chat/rooms/lobby', 'hello')
        """
        subscription = Subscription(channel, callback)
        # Listening before the server is asked: replayed messages may come in the same
        # frame as the subscribe reply, right behind it.
        self._subscriptions.append(subscription)
        if channel not in self._subscribed:
            try:
                await self._subscribe_channel(channel)
            except BaseException:
                self._subscriptions.remove(subscription)
                raise
        return subscription

    async def _subscribe_channel(self, channel: str, *, wait_session: bool = True) -> None:
        def make() -> Message:
            return {"channel": "/meta/subscribe", "subscription": channel}

        for _ in range(3):
            if wait_session:
                reply = await self._request_once_more(make)
            else:
                reply = await self._request(make(), wait_session=False)
            if reply.get("successful"):
                self._subscribed.add(channel)
                return
            if not any(e.subscribe_again(reply) for e in self.extensions):
                break
        raise BayeuxError(str(reply.get("error") or "subscription refused"), reply)

    async def unsubscribe(self, subscription: Subscription) -> None:
        """Stops `subscription`; the server is told once no callback is left on its channel.

        Raises:
            BayeuxError: the server refused to unsubscribe.

        Examples:
            >>> import asyncio
            >>> from bayeux.client import Client
            >>> from bayeux.testing import ServerThread
            >>> @server.on_unsubscribed
            ... def left(session, channel):
            ...     print("the server saw it leave", channel)
            >>> async def main(url):
            ...     async with Client(url) as client:
            ...         subscription = await client.subscribe("/chat/room", print)
            ...         await client.unsubscribe(subscription)  # its last callback there
            ...         print("unsubscribed")
            >>> with ServerThread(endpoint=Endpoint(server=server)) as running:
            ...     asyncio.run(main(running.url))
            the server saw it leave /chat/room
            unsubscribed
        """
        if subscription in self._subscriptions:
            self._subscriptions.remove(subscription)
        channel = subscription.channel
        if any(s.channel == channel for s in self._subscriptions):
            return
        if channel in self._subscribed:
            self._subscribed.discard(channel)
            reply = await self._request_once_more(
                lambda: {"channel": "/meta/unsubscribe", "subscription": channel}
            )
            if not reply.get("successful"):
                raise BayeuxError(str(reply.get("error") or "unsubscribe refused"), reply)

    async def messages(
        self, channel: str, *, max_queued: int = 1000
    ) -> AsyncGenerator[Message, None]:
        """The messages on `channel`, from the subscription made when the iteration starts
        until it stops (then it unsubscribes).

        Args:
            channel: a channel name or pattern.
            max_queued: messages that may wait unread; beyond, the oldest are dropped (and
                logged with a count).

        Examples:
            >>> import asyncio
            >>> from bayeux.client import Client
            >>> from bayeux.testing import ServerThread
            >>> async def main(url):
            ...     async with Client(url) as client:
            ...         news = client.messages("/news")
            ...         first = asyncio.ensure_future(anext(news))
            ...         await asyncio.sleep(0)  # one turn of the loop: it subscribes
            ...         await client.publish("/news", "hello")
            ...         print((await first)["data"])
            ...         await news.aclose()  # unsubscribes
            >>> with ServerThread() as running:
            ...     asyncio.run(main(running.url))
            hello
        """
        queue: asyncio.Queue[Message] = asyncio.Queue(max_queued)
        dropped = 0

        def put(message: Message) -> None:
            nonlocal dropped
            if queue.full():
                queue.get_nowait()
                dropped += 1
                log.warning("messages(%s): %d dropped, read too slowly", channel, dropped)
            queue.put_nowait(message)

        subscription = await self.subscribe(channel, put)
        try:
            while True:
                yield await queue.get()
        finally:
            if self.state != State.CLOSED:
                await self.unsubscribe(subscription)

    async def publish(
        self, channel: str, data: Any, *, ext: Mapping[str, Any] | None = None
    ) -> Message:
        """Publishes `data` on `channel`.

        Args:
            channel: the channel, a name without wildcards.
            data: any JSON value.
            ext: an `ext` object for the message.

        Returns:
            The server's reply (`successful`, `id`, `channel`, ...).

        Held while there is no session (the server restarting, say) and sent on the next one;
        refused with 402 (the session vanished between send and reply), sent once more on the
        next session. Either it reaches the server or this raises: never silently lost.

        Raises:
            BayeuxError: the server refused the message (`error.code`, `error.reply`).
            TransportError: the message may not have reached the server (`ProtocolError`:
                the server's reply was not a valid one).
            NotSent: no session came within `hold_timeout`: the message was not sent.
            TimeoutError: it was sent and no reply came.
            ClientClosed: the client is closed.
            QueueFull: too many messages wait to be sent.

        Examples:
            >>> import asyncio
            >>> from bayeux.client import Client
            >>> from bayeux.testing import ServerThread
            >>> async def main(url):
            ...     async with Client(url) as client:
            ...         reply = await client.publish("/chat/room", {"text": "hello"})
            ...         return reply["successful"]
            >>> with ServerThread() as running:
            ...     asyncio.run(main(running.url))
            True
        """

        def make() -> Message:
            message: Message = {"channel": channel, "data": data}
            if ext:
                message["ext"] = dict(ext)
            return message

        reply = await self._request_once_more(make)
        if reply.get("successful") is False:
            raise BayeuxError(str(reply.get("error") or "publish refused"), reply)
        return reply

    async def remote_call(self, channel: str, data: Any, *, timeout: float = 10.0) -> Any:
        """Calls the service on `channel` (CometD's `remoteCall`).

        Args:
            channel: a `/service/...` channel.
            data: any JSON value, the request's data.
            timeout: seconds to wait for the answer.

        Returns:
            The data the service answered.

        Raises:
            BayeuxError: the service failed or refused (its error, and the reply with any
                data it sent).
            TimeoutError: no answer within `timeout`.
            ValueError: `channel` is not a service channel.
            ClientClosed: the client is closed.

        Examples:
            >>> import asyncio
            >>> from bayeux.client import Client
            >>> from bayeux.testing import ServerThread
            >>> @server.remote_call("/service/add")
            ... def add(session, data):
            ...     return sum(data)
            >>> async def main(url):
            ...     async with Client(url) as client:
            ...         return await client.remote_call("/service/add", [1, 2, 3])
            >>> with ServerThread(endpoint=Endpoint(server=server)) as running:
            ...     asyncio.run(main(running.url))
            6
        """
        if not channel.startswith("/service/"):
            raise ValueError("remote calls go to /service/ channels")
        if self.state == State.CLOSED:
            raise ClientClosed(self.closed_reason or "closed")
        message_id = str(next(self._ids))
        answer: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._calls[message_id] = answer
        message = {"channel": channel, "data": data, "id": message_id}
        try:
            self._queue(message)
            reply = await asyncio.wait_for(answer, timeout)
        finally:
            self._calls.pop(message_id, None)
            self._sent_in.pop(message_id, None)
            self._unqueue(message)
        if reply.get("successful") is False:
            raise BayeuxError(str(reply.get("error") or "service failed"), reply)
        return reply.get("data")
