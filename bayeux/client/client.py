"""`Client`: a Bayeux client on asyncio.

    async with Client("http://127.0.0.1:8080/cometd") as client:
        await client.subscribe("/chat/room", print)
        await client.publish("/chat/room", {"text": "hello"})

The client handshakes over the first transport of `transports` the server can be reached on
(a WebSocket that cannot be upgraded falls back to long-polling), then keeps one connect held
at a time, as the server's advice says: `reconnect` retry, handshake or none, `interval`
between connects, `timeout` for how long the server holds one. After a lost session (402, or
advice to handshake) it handshakes again and subscribes again to everything it had. Failed
connects back off exponentially, with jitter. Messages sent in one loop turn go in one batch;
those waiting for a session are bounded by `max_pending`.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import ssl as ssl_module
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable, Mapping
from typing import Any

import aiohttp

from ..core.channel import is_meta, matches
from ..core.tasks import TaskSet
from .errors import BayeuxError, ClientClosed, QueueFull, TransportError
from .extensions import ClientExtension
from .transports import LongPolling, Transport, WebSocket

log = logging.getLogger("bayeux.client")

Message = dict[str, Any]
Callback = Callable[[Message], Awaitable[None] | None]

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

    def reset(self) -> None:
        self.attempts = 0


class Subscription:
    """One callback on one channel (a name or a wildcard pattern).

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
        max_pending: messages that may wait to be sent; `QueueFull` beyond.
        max_message_size: the largest WebSocket message accepted from the server, in bytes.
        request_timeout: seconds a request may take, beyond the server's advised timeout
            for a held connect.
        backoff: seconds of the first retry after a failure (doubling, with jitter).
        max_backoff: seconds of the longest wait between retries.
        handshake_ext: an `ext` object for the handshake (credentials, say).

    Raises:
        ValueError: for an unknown transport, or none.

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
        max_message_size: int = 4 * 1024 * 1024,
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
        self.max_message_size = max_message_size
        self.request_timeout = request_timeout
        self.backoff = Backoff(backoff, max_backoff)
        self.handshake_ext = dict(handshake_ext or {})

        self.client_id: str | None = None
        self.advice: Message = dict(DEFAULT_ADVICE)
        self.transport: Transport | None = None
        self.state = "new"  # new, handshaking, connected, reconnecting, closed
        self._http: aiohttp.ClientSession | None = None
        self._ids = itertools.count(1)
        self._waiting: dict[str, asyncio.Future[Message]] = {}
        self._calls: dict[str, asyncio.Future[Message]] = {}
        self._outbox: list[Message] = []
        self._flushing = False
        self._session_ready = asyncio.Event()
        self._subscriptions: list[Subscription] = []
        self._subscribed: set[str] = set()
        self._connector: asyncio.Task[None] | None = None
        # Batches on their way and coroutine callbacks running (held until done; a failure
        # is logged).
        self._flushes = TaskSet("sending a batch", log)
        self._callbacks = TaskSet("a subscription callback", log)
        self.closed_reason: str | None = None

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
            TransportError: no transport reached the server (each one's reason).
            ClientClosed: the client was opened before.
        """
        if self.state != "new":
            raise ClientClosed("open() is called once per client")
        self._http = aiohttp.ClientSession(
            headers=self.headers,
            cookies=self.cookies,
            # Cookies of loopback and IP-addressed servers kept too (the browser cookie).
            cookie_jar=aiohttp.CookieJar(unsafe=True),
            connector=aiohttp.TCPConnector(ssl=self.ssl),
        )
        try:
            reply = await self._handshake()
        except BaseException:
            await self._close_transport()
            await self._http.close()
            self.state = "closed"
            raise
        if not reply.get("successful"):
            await self._finish(str(reply.get("error") or "handshake refused"))
            raise BayeuxError(str(reply.get("error") or "handshake refused"), reply)
        self._connector = asyncio.ensure_future(self._connect_loop())

    async def disconnect(self) -> None:
        """Tells the server this session ends (best effort, within 3 s) and closes the
        connections. Calling it again does nothing."""
        if self.state == "closed":
            return
        if self.client_id is not None and self.transport is not None:
            message = {"channel": "/meta/disconnect", "clientId": self.client_id}
            try:
                await asyncio.wait_for(self._request(message, wait_session=False), 3)
            except (TimeoutError, BayeuxError, TransportError):
                pass  # the server forgets the session at its timeout instead
        await self._finish("disconnected")

    async def _finish(self, reason: str) -> None:
        self.state = "closed"
        self.closed_reason = reason
        self._session_ready.set()  # wakes whoever waits for a session, to find it closed
        connector, self._connector = self._connector, None
        if connector is not None and connector is not asyncio.current_task():
            connector.cancel()
            await asyncio.gather(connector, return_exceptions=True)
        for future in [*self._waiting.values(), *self._calls.values()]:
            if not future.done():
                future.set_exception(ClientClosed(reason))
        self._waiting.clear()
        self._calls.clear()
        for message in self._outbox:
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
                max_message_size=self.max_message_size,
                on_closed=self._transport_closed,
            )
        return LongPolling(self._http, self.url, self._received)

    async def _handshake(self) -> Message:
        """Handshakes over the first transport that works; the reply (successful or not).
        Raises TransportError when no transport reaches the server."""
        self.state = "handshaking"
        self._session_ready.clear()
        self.client_id = None
        await self._close_transport()
        failures = []
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
            except (TransportError, TimeoutError) as error:
                failures.append(f"{name}: {str(error) or 'no handshake reply'}")
                await self._close_transport()
                continue
            if not reply.get("successful"):
                return reply
            offered = reply.get("supportedConnectionTypes") or []
            if name not in offered:
                failures.append(f"{name}: not offered by the server")
                await self._close_transport()
                continue
            self.client_id = str(reply["clientId"])
            self._advise(reply)
            self.state = "connected"
            self._session_ready.set()
            return reply
        raise TransportError("no transport reached the server: " + "; ".join(failures))

    async def _handshake_again(self) -> bool:
        """After a lost session: handshakes (backing off) and subscribes again. False when the
        server refuses the handshake or advises not to come back."""
        while self.state != "closed":
            try:
                reply = await self._handshake()
            except TransportError as error:
                delay = self.backoff.next_delay()
                log.info("handshake failed (%s); again in %.1f s", error, delay)
                await asyncio.sleep(delay)
                continue
            if not reply.get("successful"):
                self._advise(reply)
                if self.advice.get("reconnect") == "none":
                    await self._finish(str(reply.get("error") or "handshake refused"))
                    return False
                await asyncio.sleep(self.backoff.next_delay())
                continue
            self.backoff.reset()
            channels = sorted(self._subscribed)
            if channels:
                await self._resubscribe(channels)
            return True
        return False

    async def _resubscribe(self, channels: list[str]) -> None:
        self._subscribed.clear()
        for channel in channels:
            try:
                await self._subscribe_channel(channel)
            except (BayeuxError, TransportError) as error:
                log.warning("could not subscribe again to %s: %s", channel, error)

    # -------------------------------------------------------------------------- connect

    def _advise(self, reply: Message) -> None:
        advice = reply.get("advice")
        if isinstance(advice, dict):
            self.advice.update(advice)

    def _number_advice(self, name: str) -> float:
        value = self.advice.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
            return float(value) / 1000
        return float(DEFAULT_ADVICE[name]) / 1000

    async def _connect_loop(self) -> None:
        try:
            await self._connecting()
        except asyncio.CancelledError:
            raise
        except Exception as error:  # a bug here must close the client, not leave it hanging
            log.exception("the client's connect loop failed; closing the client")
            await self._finish(f"connect loop failed: {error!r}")

    async def _connecting(self) -> None:
        first = True
        while self.state != "closed":
            if self.transport is None or self.transport.broken:
                if not await self._reopen():
                    await asyncio.sleep(self.backoff.next_delay())
                    continue
                first = True
            assert self.transport is not None
            message: Message = {"channel": "/meta/connect", "connectionType": self.transport.name}
            if first:
                message["advice"] = {"timeout": 0}  # answered at once: the connection is up
            held = 0.0 if first else self._number_advice("timeout")
            try:
                reply = await self._request(
                    message, timeout=held + self.request_timeout, wait_session=False
                )
            except (TimeoutError, TransportError) as error:
                if self.state == "closed":
                    return
                delay = self.backoff.next_delay()
                log.info("connect failed (%s); again in %.1f s", error, delay)
                await asyncio.sleep(delay)
                continue
            first = False
            self._advise(reply)
            reconnect = self.advice.get("reconnect")
            if reply.get("successful"):
                self.backoff.reset()
                if reconnect == "none":
                    await self._finish("the server advised reconnect none")
                    return
                interval = self._number_advice("interval")
                if interval:
                    await asyncio.sleep(interval)
                continue
            refusal = str(reply.get("error") or "")
            if reconnect == "none":
                await self._finish(refusal or "the server advised reconnect none")
                return
            if reconnect == "handshake" or refusal.startswith("402"):
                if not await self._handshake_again():
                    return
                first = True
                continue
            await asyncio.sleep(max(self._number_advice("interval"), self.backoff.next_delay()))

    async def _reopen(self) -> bool:
        """After the WebSocket closed: a new connection for the same session, on the first
        transport that opens (the server keeps the session until its maxInterval passes; if
        it has not, the next connect is told 402 and the client handshakes again)."""
        await self._close_transport()
        for name in self.transports:
            transport = self._transport(name)
            try:
                await transport.open()
            except TransportError as error:
                log.info("could not open %s again: %s", name, error)
                continue
            self.transport = transport
            self.state = "connected"
            self._session_ready.set()
            return True
        return False

    def _transport_closed(self) -> None:
        """The WebSocket closed: requests waiting on it will get no reply, and new ones wait
        for the connection to be opened again."""
        if self.state == "connected":
            self.state = "reconnecting"
            self._session_ready.clear()
        for future in list(self._waiting.values()):
            if not future.done():
                future.set_exception(TransportError("the WebSocket closed"))

    # ------------------------------------------------------------------------- requests

    async def _request(
        self, message: Message, *, timeout: float | None = None, wait_session: bool = True
    ) -> Message:
        """Sends `message` and returns its reply (the reply of the same id)."""
        if self.state == "closed":
            raise ClientClosed(self.closed_reason or "closed")
        message_id = str(next(self._ids))
        message["id"] = message_id
        future: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._waiting[message_id] = future
        try:
            if wait_session:
                await self._queue(message)
            else:
                await self._send_now([message], timeout or self.request_timeout)
            return await asyncio.wait_for(future, timeout or self.request_timeout * 2)
        finally:
            self._waiting.pop(message_id, None)

    async def _queue(self, message: Message) -> None:
        """Queues `message` for the next batch (sent once a session is there)."""
        if len(self._outbox) >= self.max_pending:
            raise QueueFull(f"{len(self._outbox)} messages are waiting to be sent")
        self._outbox.append(message)
        if not self._flushing:
            self._flushing = True
            asyncio.get_running_loop().call_soon(self._start_flush)

    def _start_flush(self) -> None:
        self._flushes.spawn(self._flush())

    async def _flush(self) -> None:
        try:
            while self._outbox and self.state != "closed":
                if self.state != "connected":
                    await self._session_ready.wait()
                    continue
                batch, self._outbox = self._outbox, []
                try:
                    await self._send_now(batch, self.request_timeout)
                except TransportError as error:
                    for message in batch:
                        self._fail(message, error)
        finally:
            self._flushing = False

    def _fail(self, message: Message, error: Exception) -> None:
        future = self._waiting.get(str(message.get("id")))
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
            return
        if is_meta(channel) or "successful" in message:
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

    async def _subscribe_channel(self, channel: str) -> None:
        for _ in range(3):
            reply = await self._request({"channel": "/meta/subscribe", "subscription": channel})
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
        """
        if subscription in self._subscriptions:
            self._subscriptions.remove(subscription)
        channel = subscription.channel
        if any(s.channel == channel for s in self._subscriptions):
            return
        if channel in self._subscribed:
            self._subscribed.discard(channel)
            reply = await self._request({"channel": "/meta/unsubscribe", "subscription": channel})
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
            if self.state != "closed":
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

        Raises:
            BayeuxError: the server refused the message (`error.code`, `error.reply`).
            TransportError: the message may not have reached the server.
            ClientClosed: the client is closed.
            QueueFull: too many messages wait to be sent.
        """
        message: Message = {"channel": channel, "data": data}
        if ext:
            message["ext"] = dict(ext)
        reply = await self._request(message)
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
        """
        if not channel.startswith("/service/"):
            raise ValueError("remote calls go to /service/ channels")
        if self.state == "closed":
            raise ClientClosed(self.closed_reason or "closed")
        message_id = str(next(self._ids))
        answer: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._calls[message_id] = answer
        try:
            await self._queue({"channel": channel, "data": data, "id": message_id})
            reply = await asyncio.wait_for(answer, timeout)
        finally:
            self._calls.pop(message_id, None)
        if reply.get("successful") is False:
            raise BayeuxError(str(reply.get("error") or "service failed"), reply)
        return reply.get("data")
