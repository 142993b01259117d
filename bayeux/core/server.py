"""The Bayeux protocol engine: takes a batch of messages in, gives replies out.

No I/O happens here. Transports decode bytes into messages, call `BayeuxServer.handle`, and write
what it returns; time comes from an injected clock, and expiry happens when the transport calls
`sweep`. A `/meta/connect` that may wait for messages comes back as a `ConnectHold` which the
transport parks and later completes with `finish_connect`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import channel as ch
from .message import Delivery, Message, error, reply_to
from .session import Ended, ServerSession, new_client_id
from .settings import EVENTSOURCE, Settings
from .tree import ChannelTree

BAYEUX_VERSION = "1.0"


@dataclass(slots=True)
class ConnectHold:
    """A successful `/meta/connect` whose reply may wait up to `timeout` seconds for messages."""

    session: ServerSession
    reply: Message
    timeout: float


@dataclass(slots=True)
class Outcome:
    """What handling one batch produced: replies in request order, and the batch's connect."""

    replies: list[Message]
    connect: ConnectHold | None = None


class BayeuxServer:
    """Sessions, subscriptions and the five meta channels of Bayeux 1.0."""

    def __init__(
        self, settings: Settings | None = None, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.settings = settings or Settings()
        self.clock = clock
        self.sessions: dict[str, ServerSession] = {}
        self.tree: ChannelTree[ServerSession] = ChannelTree()
        self.shutting_down = False

    # ----------------------------------------------------------------------------- the batch

    def handle(self, messages: list[Message]) -> Outcome:
        outcome = Outcome(replies=[])
        if any(m["channel"] == ch.META_HANDSHAKE for m in messages) and len(messages) > 1:
            # Bayeux 1.0: a server MUST ignore other messages sent with a handshake.
            messages = [m for m in messages if m["channel"] == ch.META_HANDSHAKE]
        for message in messages:
            channel = message["channel"]
            if channel == ch.META_CONNECT:
                reply, hold = self._connect(message)
                if hold is None:
                    outcome.replies.append(reply)
                elif outcome.connect is not None:
                    # Two connects in one batch: the earlier one is answered at once.
                    outcome.replies.append(self.finish_connect(outcome.connect))
                    outcome.connect = hold
                else:
                    outcome.connect = hold
                continue
            outcome.replies.append(self._dispatch(channel, message))
        return outcome

    def _dispatch(self, channel: str, message: Message) -> Message:
        problem = _field_problem(message)
        if problem is not None:
            return _failure(message, problem)
        if channel == ch.META_HANDSHAKE:
            return self._handshake(message)
        if channel == ch.META_DISCONNECT:
            return self._disconnect(message)
        if channel == ch.META_SUBSCRIBE:
            return self._subscribe(message, subscribe=True)
        if channel == ch.META_UNSUBSCRIBE:
            return self._subscribe(message, subscribe=False)
        if ch.is_meta(channel):
            # Exact names only: "/meta/subscribe/x" is not "/meta/subscribe".
            return _failure(message, error(404, channel, "Unknown meta channel"))
        return self._publish(message)

    # ------------------------------------------------------------------------ meta channels

    def _handshake(self, message: Message) -> Message:
        if self.shutting_down:
            return _failure(
                message,
                error(503, "", "Server shutting down"),
                {"reconnect": "handshake", "interval": self.settings.multi_session_interval},
            )
        if not isinstance(message.get("version"), str):
            return _failure(message, error(400, "version", "Missing or invalid field"), _NONE)
        offered = message.get("supportedConnectionTypes")
        if not isinstance(offered, list) or not all(isinstance(t, str) for t in offered):
            return _failure(
                message, error(400, "supportedConnectionTypes", "Missing or invalid field"), _NONE
            )
        allowed = self.settings.allowed_transports
        if not any(t in allowed for t in offered):
            return _failure(
                message, error(406, list(offered), "Unsupported connection types"), _NONE
            )
        session = self.create_session()
        reply = reply_to(message)
        reply.update(
            version=BAYEUX_VERSION,
            minimumVersion=BAYEUX_VERSION,
            supportedConnectionTypes=list(allowed),
            clientId=session.id,
            successful=True,
            advice=self._advice(),
        )
        return reply

    def _connect(self, message: Message) -> tuple[Message, ConnectHold | None]:
        problem = _field_problem(message)
        if problem is not None:
            return _failure(message, problem), None
        session = self._session_of(message)
        if session is None:
            return _unknown_client(message), None
        connection_type = message.get("connectionType")
        if not isinstance(connection_type, str):
            return _failure(message, error(400, "connectionType", "Missing or invalid field")), None
        if connection_type not in self.settings.allowed_transports:
            failed = _failure(message, error(406, connection_type, "Unsupported connection type"))
            return failed, None
        session.connection_type = connection_type
        reply = reply_to(message)
        reply.update(clientId=session.id, successful=True, advice=self._advice())
        first = not session.connected
        session.connected = True
        if connection_type == EVENTSOURCE:
            # As Faye does: the stream carries deliveries, so connects are answered at once and
            # act as a heartbeat every `timeout` ms.
            reply["advice"] = {**reply["advice"], "interval": self.settings.timeout, "timeout": 0}
            session.deadline = None
            return reply, ConnectHold(session, reply, 0)
        hold_ms = 0 if first else self.settings.timeout
        # A client's advice.timeout applies to this connect only (as in CometD), and can shorten
        # the hold but not stretch it past the server's timeout.
        advice = message.get("advice")
        if isinstance(advice, dict):
            timeout = advice.get("timeout")
            if isinstance(timeout, (int, float)) and not isinstance(timeout, bool) and timeout >= 0:
                hold_ms = min(hold_ms, int(timeout))
        # While a connect is held the session cannot expire; finish_connect restarts the clock.
        session.deadline = None
        return reply, ConnectHold(session, reply, hold_ms / 1000)

    def finish_connect(self, hold: ConnectHold, *, displaced: bool = False) -> Message:
        """The reply of a held connect, now that it is being answered. Restarts the session's
        expiry clock; adjusts the advice when the session ended or another connection took over."""
        session = hold.session
        reply = hold.reply
        ended = session.ended
        if ended is not None:
            reply["advice"] = {
                "reconnect": "none" if ended is Ended.DISCONNECTED else "handshake",
                "interval": 0,
            }
            if ended is not Ended.DISCONNECTED:
                reply["successful"] = False
                reply["error"] = error(402, "", "Unknown client")
            return reply
        interval = reply["advice"].get("interval", self.settings.interval)
        if displaced:
            interval = self.settings.multi_session_interval
            reply["advice"] = {**reply["advice"], "multiple-clients": True, "interval": interval}
        elif self.shutting_down:
            interval = self.settings.multi_session_interval
            reply["advice"] = {**reply["advice"], "interval": interval}
        session.deadline = self.clock() + (interval + self.settings.max_interval) / 1000
        return reply

    def _disconnect(self, message: Message) -> Message:
        session = self._session_of(message)
        if session is None:
            return _unknown_client(message)
        self.remove_session(session, Ended.DISCONNECTED)
        reply = reply_to(message)
        reply.update(clientId=session.id, successful=True)
        return reply

    def _subscribe(self, message: Message, *, subscribe: bool) -> Message:
        session = self._session_of(message)
        if session is None:
            return _unknown_client(message)
        subscription = message.get("subscription")
        patterns = subscription if isinstance(subscription, list) else [subscription]
        if not patterns or not all(isinstance(p, str) for p in patterns):
            reply = _failure(message, error(400, "subscription", "Missing or invalid field"))
            reply["clientId"] = session.id
            return reply
        bad = [p for p in patterns if not ch.is_valid_subscription(p)]
        failure = None
        if bad:
            failure = error(405, bad, "Invalid channel")
        elif subscribe and any(ch.is_meta(p) for p in patterns):
            failure = error(403, [p for p in patterns if ch.is_meta(p)], "Subscription denied")
        reply = reply_to(message)
        reply.update(clientId=session.id, subscription=subscription)
        if failure is not None:
            reply.update(successful=False, error=failure)
            return reply
        for pattern in patterns:
            if ch.is_service(pattern):
                continue  # Bayeux 1.0: servers SHOULD NOT record service subscriptions.
            if subscribe:
                self.subscribe(session, pattern)
            else:
                self.unsubscribe(session, pattern)
        reply["successful"] = True
        return reply

    # ---------------------------------------------------------------------------- publishing

    def _publish(self, message: Message) -> Message:
        channel = message["channel"]
        if not ch.is_valid_name(channel):
            return _failure(message, error(405, channel, "Invalid channel"))
        session = self._session_of(message)
        if session is None:
            return _unknown_client(message)
        if "data" not in message:
            return _failure(message, error(400, "data", "Missing field"))
        if ch.is_broadcast(channel):
            outgoing: Message = {"channel": channel, "data": message["data"]}
            if isinstance(message.get("ext"), dict):
                outgoing["ext"] = message["ext"]
            exclude = None if self.settings.broadcast_to_publisher else session
            self._fan_out(Delivery(outgoing), exclude)
        # /service/** messages are for the server alone: never broadcast.
        reply = reply_to(message)
        reply["successful"] = True
        return reply

    def publish(self, channel: str, data: Any, *, ext: dict | None = None) -> int:
        """Publishes from the server side to every subscriber of `channel`; returns how many
        sessions the message was queued for."""
        if not ch.is_valid_name(channel) or ch.is_meta(channel):
            raise ValueError(f"cannot publish to {channel!r}")
        message: Message = {"channel": channel, "data": data}
        if ext is not None:
            message["ext"] = ext
        return self._fan_out(Delivery(message), None)

    def deliver(self, session: ServerSession, channel: str, data: Any) -> None:
        """Queues a message for one session only, whatever its subscriptions."""
        if not ch.is_valid_name(channel) or ch.is_meta(channel):
            raise ValueError(f"cannot deliver on {channel!r}")
        session.enqueue(Delivery({"channel": channel, "data": data}))

    def _fan_out(self, delivery: Delivery, exclude: ServerSession | None) -> int:
        count = 0
        for session in self.tree.match(delivery.message["channel"]):
            if session is not exclude:
                session.enqueue(delivery)
                count += 1
        return count

    # ------------------------------------------------------------------------------ sessions

    def create_session(self) -> ServerSession:
        deadline = self.clock() + self.settings.max_interval / 1000
        session = ServerSession(new_client_id(), deadline)
        self.sessions[session.id] = session
        return session

    def remove_session(self, session: ServerSession, reason: Ended = Ended.REMOVED) -> None:
        if self.sessions.pop(session.id, None) is None:
            return
        for pattern in session.subscriptions:
            self.tree.unsubscribe(pattern, session)
        session.subscriptions.clear()
        session.queue.clear()
        # Kept on the session so that its held connect, if any, can be told how it ended.
        session.ended = reason
        waiter = session.waiter
        session.waiter = None
        if waiter is not None:
            waiter.close()

    def subscribe(self, session: ServerSession, pattern: str) -> None:
        if self.tree.subscribe(pattern, session):
            session.subscriptions.add(pattern)

    def unsubscribe(self, session: ServerSession, pattern: str) -> None:
        if self.tree.unsubscribe(pattern, session):
            session.subscriptions.discard(pattern)

    def sweep(self) -> list[ServerSession]:
        """Removes the sessions whose expiry time has passed; returns them."""
        now = self.clock()
        expired = [
            s for s in self.sessions.values() if s.deadline is not None and s.deadline <= now
        ]
        for session in expired:
            self.remove_session(session, Ended.EXPIRED)
        return expired

    def shutdown(self) -> None:
        """Stops accepting handshakes and wakes every held connect, so transports answer them
        with advice to come back after `multi_session_interval`."""
        self.shutting_down = True
        for session in list(self.sessions.values()):
            if session.waiter is not None:
                session.waiter.wake()

    def _session_of(self, message: Message) -> ServerSession | None:
        client_id = message.get("clientId")
        return self.sessions.get(client_id) if isinstance(client_id, str) else None

    def _advice(self) -> dict[str, Any]:
        s = self.settings
        return {
            "reconnect": "retry",
            "interval": s.interval,
            "timeout": s.timeout,
            "maxInterval": s.max_interval,
        }


_NONE = {"reconnect": "none", "interval": 0}
_HANDSHAKE = {"reconnect": "handshake", "interval": 0}


def _failure(message: Message, text: str, advice: dict | None = None) -> Message:
    reply = reply_to(message)
    reply["successful"] = False
    reply["error"] = text
    if advice is not None:
        reply["advice"] = dict(advice)
    return reply


def _unknown_client(message: Message) -> Message:
    return _failure(message, error(402, "", "Unknown client"), _HANDSHAKE)


def _field_problem(message: Message) -> str | None:
    """Type errors in the fields every message may carry."""
    if (
        "id" in message
        and not isinstance(message["id"], (str, int))
        or isinstance(message.get("id"), bool)
    ):
        return error(400, "id", "Invalid field")
    if "clientId" in message and not isinstance(message["clientId"], str):
        return error(400, "clientId", "Invalid field")
    for name in ("ext", "advice"):
        if name in message and not isinstance(message[name], dict):
            return error(400, name, "Invalid field")
    return None
