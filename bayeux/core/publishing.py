"""Publishing: a client's publish checked and broadcast (through the engine's log when there
is one), the server side's publish and deliver, and service channels answered.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import AbstractContextManager
from typing import Any

from . import channel as ch
from .context import current_request
from .fanout import FanOut, NotRepresentable
from .message import Delivery, Message, error, reply_to
from .policy import Operation
from .replies import failure
from .service import ServiceError, ServiceRequest
from .session import ServerSession
from .state import Outcome
from .threads import on_loop

log = logging.getLogger("bayeux.server")


class _Batch:
    """`BayeuxServer.batch()`: opens on entry, closes (and sends) on exit; once."""

    __slots__ = ("_server", "_session", "_state")

    def __init__(self, server: Publishing, session: ServerSession | None) -> None:
        self._server = server
        self._session = session
        self._state = "new"

    def __enter__(self) -> None:
        if self._state != "new":
            raise RuntimeError("a batch is entered once: call batch() again for another")
        self._server._open_batch(self._session)
        self._state = "open"

    def __exit__(self, *exc: object) -> None:
        if self._state == "open":
            self._state = "closed"
            self._server._close_batch(self._session)


class Publishing(FanOut):
    """Publishes from clients and from the server side, and service calls."""

    async def _publish(self, message: Message, session: ServerSession, outcome: Outcome) -> Message:
        channel = message["channel"]
        if not self.channels.valid_name(channel):
            return failure(message, error(405, channel, "Invalid channel"))
        if "data" not in message:
            return failure(message, error(400, "data", "Missing field"))
        if not await self.hooks.may(Operation.PUBLISH, channel, session, message):
            return failure(message, error(403, channel, "Publish denied"))
        if not await self.hooks.notify_message_listeners(session, channel, message):
            return failure(message, error(404, channel, "Message deleted"))
        if ch.is_broadcast(channel):
            outgoing: Message = {"channel": channel, "data": message["data"]}
            if isinstance(message.get("ext"), dict):
                outgoing["ext"] = message["ext"]
            kept = self._outgoing_broadcast(outgoing)
            if kept is not True and kept is not False:
                kept = await kept
            try:
                if kept:
                    self._broadcast(outgoing, session, outcome)
            except NotRepresentable:
                return failure(message, error(400, "data", "Not representable as JSON"))
        else:
            # /service/** messages are for the server alone: never broadcast.
            self._call_service(session, channel, message)
        reply = reply_to(message)
        reply["successful"] = True
        return reply

    def _broadcast(self, message: Message, sender: ServerSession, outcome: Outcome) -> None:
        """Queues a client's broadcast for every subscriber: through the engine's log when
        there is one (the batch's replies wait until the log has it: nothing acknowledged is
        lost; the batch's broadcasts go in one round trip), locally when there is none or it
        cannot be reached."""
        message, delivery = self._prepare(message)
        if not self.engine.shared:
            self._deliver_local(message, delivery, sender.id)
            return
        outcome.appends.append(self._append(message, delivery, sender.id))

    def _append(
        self, message: Message, delivery: Delivery, sender: str | None
    ) -> asyncio.Future[bool]:
        appended = self.engine.append(delivery, sender)

        def settled(future: asyncio.Future[bool]) -> None:
            if future.cancelled() or not future.result():
                self._deliver_local(message, delivery, sender)

        appended.add_done_callback(settled)
        return appended

    @on_loop
    def publish(
        self,
        channel: str,
        data: Any,
        *,
        ext: dict[str, Any] | None = None,
        sender: ServerSession | None = None,
        lazy: bool = False,
    ) -> int:
        """Publishes from the server side to every subscriber of `channel`; returns how many
        sessions of this process it reaches (with an engine, those it will reach when the
        log hands it back). Message listeners are not called.

        With `sender`, it is published on that session's behalf: the session does not get it
        back unless broadcast-to-publisher allows it (server, channel and session settings).
        With `lazy`, it may wait for company before waking a held connect, as on a lazy
        channel (up to the channel's lazy timeout, else `--max-lazy-timeout`).

        Raises:
            ValueError: `channel` is not a valid channel name, or a meta channel.
            NotRepresentable: `data` cannot be encoded: not as JSON, or, while any
                connection reads msgpack (subscriber or not), not as msgpack.

        Examples:
            >>> server.publish("/news", {"headline": "Bayeux in Python"})
            0
            >>> session = server.create_session()
            >>> server.subscribe(session, "/chat/lobby")
            >>> server.publish("/chat/lobby", "hi", sender=session)  # echoed by default
            1
            >>> session.broadcast_to_publisher = False
            >>> server.publish("/chat/lobby", "hi", sender=session)
            0
            >>> server.publish("/chat/lobby", "psst", lazy=True)
            1
        """
        if not self.channels.valid_name(channel) or ch.is_meta(channel):
            raise ValueError(f"cannot publish to {channel!r}")
        message: Message = {"channel": channel, "data": data}
        if ext is not None:
            message["ext"] = ext
        sender_id = None if sender is None else sender.id
        order = self._publish_order
        if not order:
            kept = self._outgoing_broadcast(message)
            if kept is True:
                return self._published(message, sender_id, lazy)
            if kept is False:
                return 0
            order.wait(kept, lambda: self._published_later(message, sender_id, lazy))
        elif not order.run(
            lambda: self._outgoing_broadcast(message),
            lambda: self._published_later(message, sender_id, lazy),
        ):
            self.stats.dropped["extension-backlog"] += 1
            return 0
        # Decided later, by asynchronous extensions (in order, behind the earlier publishes).
        return self._reached(channel, sender)

    def _reached(self, channel: str, sender: ServerSession | None) -> int:
        """How many sessions of this process a publish on `channel` from `sender` reaches."""
        recipients = self.tree.match(channel)
        if sender is not None and sender in recipients and not self.echoes(sender, channel):
            return len(recipients) - 1
        return len(recipients)

    def _published(self, message: Message, sender: str | None = None, lazy: bool = False) -> int:
        """Fans out or appends a server-side publish its extensions kept."""
        message, delivery = self._prepare(message)
        delivery.lazy = lazy
        if not self.engine.shared:
            return self._deliver_local(message, delivery, sender)
        self._append(message, delivery, sender)
        return self._reached(message["channel"], self.sessions.get(sender) if sender else None)

    def _published_later(self, message: Message, sender: str | None, lazy: bool) -> None:
        try:
            self._published(message, sender, lazy)
        except NotRepresentable:
            log.error("an extension made a publish to %s unrepresentable", message["channel"])
            self.stats.dropped["not-encodable"] += 1

    @on_loop
    def deliver(
        self,
        session: ServerSession,
        channel: str,
        data: Any,
        *,
        sender: ServerSession | None = None,
    ) -> None:
        """Queues a message for one session only, whatever its subscriptions; the session's
        own outgoing extensions and the server's see it. From `sender`: when that is the
        session itself, a message on a broadcast channel is dropped unless its
        broadcast-to-publisher allows it (CometD's `ServerSession.deliver`).

        Raises:
            ValueError: `channel` is not a valid channel name, or a meta channel.

        Examples:
            >>> session = server.create_session()
            >>> server.deliver(session, "/alerts", {"level": "info"})
            >>> session.broadcast_to_publisher = False
            >>> server.deliver(session, "/alerts", "own echo", sender=session)
            >>> len(session.queue)
            1
        """
        if not self.channels.valid_name(channel) or ch.is_meta(channel):
            raise ValueError(f"cannot deliver on {channel!r}")
        if sender is session and ch.is_broadcast(channel) and not self.echoes(session, channel):
            return
        message = {"channel": channel, "data": data}
        self._after_outgoing(
            session,
            lambda: self.hooks.outgoing(session, message),
            lambda: self._enqueue_for(session, self._encoded(message)),
        )

    def batch(self, session: ServerSession | None = None) -> AbstractContextManager[None]:
        """A context manager: what is queued while it is open leaves together when it closes,
        one reply or frame per session (CometD's batches), however long it stays open and
        whatever awaits inside it. For every session, or for `session` only. Batches nest;
        one opened on another thread is opened on the server's loop.

        Examples:
            >>> session = server.create_session()
            >>> server.subscribe(session, "/prices/*")
            >>> with server.batch():
            ...     for symbol in ("ACME", "INIT"):
            ...         _ = server.publish(f"/prices/{symbol}", 1.0)
            >>> [d.channel for d in session.queue]
            ['/prices/ACME', '/prices/INIT']

        Added in version 0.3.0."""
        return _Batch(self, session)

    @on_loop
    def _open_batch(self, session: ServerSession | None) -> None:
        if self.batched is None:
            self.batched = set()
        if session is None:
            self.batch_depth += 1
        else:
            self.session_batches[session] = self.session_batches.get(session, 0) + 1

    @on_loop
    def _close_batch(self, session: ServerSession | None) -> None:
        batched = self.batched
        if session is None:
            if not self.batch_depth:
                raise RuntimeError("no server batch is open")
            self.batch_depth -= 1
        else:
            depth = self.session_batches.get(session, 0)
            if not depth:
                raise RuntimeError(f"no batch of session {session.tag} is open")
            if depth > 1:
                self.session_batches[session] = depth - 1
            else:
                del self.session_batches[session]
        assert batched is not None
        if self.batch_depth:
            return  # a server batch still holds every session
        if not self.session_batches:
            self.batched = None
            released = batched
        else:
            # Wake every session no open batch covers any more.
            released = {held for held in batched if held not in self.session_batches}
            batched.difference_update(released)
        for held in released:
            waiter = held.waiter
            if held.ended is None and held.queue and waiter is not None:
                held.lazy_pending = False
                waiter.wake()

    def _enqueue_for(self, session: ServerSession, delivery: Delivery) -> None:
        """Queues a message for one session, wherever the deployment serves it."""
        if session.remote:
            self._tasks.spawn(self.engine.deliver_to(session.id, delivery), self._forwarded)
        else:
            self._enqueue(session, delivery)

    def _forwarded(self, task: asyncio.Future[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.warning("a message for a session served elsewhere was lost: %s", task.exception())
            self.stats.dropped["engine-unavailable"] += 1

    def _call_service(self, session: ServerSession, channel: str, message: Message) -> None:
        handler = self.hooks.service_for(channel)
        if handler is None:
            return
        request = ServiceRequest(session, channel, message, current_request())
        try:
            result = handler(request)
        except Exception as exc:  # noqa: BLE001 - reported to the requester, never a crash
            self._answer_service(request, exc)
            return
        if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
            if session.service_calls >= self.settings.max_service_calls:
                if asyncio.iscoroutine(result):
                    result.close()  # never awaited: close it so Python does not warn
                else:
                    result.cancel()
                self._enqueue_reply(
                    request,
                    successful=False,
                    error=error(429, channel, "Too many service calls"),
                    data=None,
                )
                return
            # Answered when done, through the session's queue, without holding up the batch.
            session.service_calls += 1
            self._tasks.spawn(result, lambda t: self._service_done(request, t))
        else:
            self._answer_service(request, result)

    def _service_done(self, request: ServiceRequest, task: asyncio.Future[Any]) -> None:
        request.session.service_calls -= 1
        if task.cancelled():
            self._answer_service(request, ServiceError("Service cancelled"))
        else:
            exc = task.exception()
            self._answer_service(request, exc if exc is not None else task.result())

    def _answer_service(self, request: ServiceRequest, result: Any) -> None:
        if isinstance(result, ServiceError):
            self._enqueue_reply(
                request,
                successful=False,
                error=error(400, request.channel, result.error),
                data=result.data,
            )
        elif isinstance(result, BaseException):
            log.error("service %s failed", request.channel, exc_info=result)
            self.stats.errors["service"] += 1
            self._enqueue_reply(
                request,
                successful=False,
                error=error(500, request.channel, "Service failed"),
                data=None,
            )
        else:
            self._enqueue_reply(request, successful=True, data=result)

    def _enqueue_reply(self, request: ServiceRequest, **fields: Any) -> None:
        """Queues a service's reply for the requesting session."""
        session = request.session
        if session.ended is not None:
            return
        reply = reply_to(request.message, request.channel)
        reply.update(fields)
        self._after_outgoing(
            session,
            lambda: self.hooks.outgoing(session, reply),
            lambda: self._enqueue_reply_kept(request, reply),
        )

    def _enqueue_reply_kept(self, request: ServiceRequest, reply: Message) -> None:
        try:
            delivery = self._encoded(reply)
        except NotRepresentable:
            log.error("service %s returned data that is not representable as JSON", request.channel)
            reply.update(
                successful=False,
                data=None,
                error=error(500, request.channel, "Service reply not representable"),
            )
            delivery = Delivery(reply)
        self._enqueue_for(request.session, delivery)
