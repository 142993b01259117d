"""Publishing: a client's publish checked and broadcast (through the engine's log when there
is one), the server side's publish and deliver, and service channels answered.
"""

from __future__ import annotations

import asyncio
import logging
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
            exclude = None if self.settings.broadcast_to_publisher else session
            kept = self._outgoing_broadcast(outgoing)
            if kept is not True and kept is not False:
                kept = await kept
            try:
                if kept:
                    self._broadcast(outgoing, exclude, outcome)
            except NotRepresentable:
                return failure(message, error(400, "data", "Not representable as JSON"))
        else:
            # /service/** messages are for the server alone: never broadcast.
            self._call_service(session, channel, message)
        reply = reply_to(message)
        reply["successful"] = True
        return reply

    def _broadcast(self, message: Message, exclude: ServerSession | None, outcome: Outcome) -> None:
        """Queues a client's broadcast for every subscriber: through the engine's log when
        there is one (the batch's replies wait until the log has it: nothing acknowledged is
        lost; the batch's broadcasts go in one round trip), locally when there is none or it
        cannot be reached."""
        message, delivery = self._prepare(message)
        if not self.engine.shared:
            self._deliver_local(message, delivery, exclude.id if exclude else None)
            return
        outcome.appends.append(self._append(message, delivery, exclude.id if exclude else None))

    def _append(
        self, message: Message, delivery: Delivery, exclude: str | None
    ) -> asyncio.Future[bool]:
        appended = self.engine.append(delivery, exclude)

        def settled(future: asyncio.Future[bool]) -> None:
            if future.cancelled() or not future.result():
                self._deliver_local(message, delivery, exclude)

        appended.add_done_callback(settled)
        return appended

    @on_loop
    def publish(self, channel: str, data: Any, *, ext: dict[str, Any] | None = None) -> int:
        """Publishes from the server side to every subscriber of `channel`; returns how many
        sessions of this process it reaches (with an engine, those it will reach when the
        log hands it back). Message listeners are not called.

        Raises:
            ValueError: `channel` is not a valid channel name, or a meta channel.
            NotRepresentable: `data` cannot be encoded (not JSON, or not in every format
                the subscribers use).
        """
        if not self.channels.valid_name(channel) or ch.is_meta(channel):
            raise ValueError(f"cannot publish to {channel!r}")
        message: Message = {"channel": channel, "data": data}
        if ext is not None:
            message["ext"] = ext
        order = self._publish_order
        if not order:
            kept = self._outgoing_broadcast(message)
            if kept is True:
                return self._published(message)
            if kept is False:
                return 0
            order.wait(kept, lambda: self._published_later(message))
        elif not order.run(
            lambda: self._outgoing_broadcast(message), lambda: self._published_later(message)
        ):
            self.stats.dropped["extension-backlog"] += 1
            return 0
        # Decided later, by asynchronous extensions (in order, behind the earlier publishes).
        return sum(1 for _ in self.tree.match(channel))

    def _published(self, message: Message) -> int:
        """Fans out or appends a server-side publish its extensions kept."""
        message, delivery = self._prepare(message)
        if not self.engine.shared:
            return self._deliver_local(message, delivery, None)
        self._append(message, delivery, None)
        return sum(1 for _ in self.tree.match(message["channel"]))

    def _published_later(self, message: Message) -> None:
        try:
            self._published(message)
        except NotRepresentable:
            log.error("an extension made a publish to %s unrepresentable", message["channel"])
            self.stats.dropped["not-encodable"] += 1

    @on_loop
    def deliver(self, session: ServerSession, channel: str, data: Any) -> None:
        """Queues a message for one session only, whatever its subscriptions; the session's
        own outgoing extensions and the server's see it.

        Raises:
            ValueError: `channel` is not a valid channel name, or a meta channel.
        """
        if not self.channels.valid_name(channel) or ch.is_meta(channel):
            raise ValueError(f"cannot deliver on {channel!r}")
        message = {"channel": channel, "data": data}
        self._after_outgoing(
            session,
            lambda: self.hooks.outgoing(session, message),
            lambda: self._enqueue_for(session, self._encoded(message)),
        )

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
