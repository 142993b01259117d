"""The Bayeux protocol engine: takes a batch of messages in, gives replies out.

No I/O happens here. Transports decode bytes into messages, await `BayeuxServer.handle`, and write
what it returns; time comes from injected clocks, and expiry happens when the transport calls
`sweep`. A `/meta/connect` that may wait for messages comes back as a `ConnectHold` which the
transport parks and later completes with `finish_connect`.

`handle` is a coroutine so that application hooks (security policy, authorizers, message
listeners) and the engine (core/engine.py) may await; with neither it never suspends.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from . import channel as ch
from .ack import AckState
from .engine import (
    Claimed,
    Engine,
    EngineUnavailable,
    LogEntry,
    LoggedDelivery,
    LoggedMessage,
    LoggedSubscription,
)
from .extension import Extension
from .limits import SESSION_OVERHEAD, UNBOUNDED, AddressBudgets, AddressWindow, Peer
from .message import (
    MAX_SAFE_INTEGER,
    Delivery,
    Message,
    error,
    integer_in,
    non_json_value,
    number_in,
    reply_to,
    valid_id,
)
from .policy import Authorizer, Operation, SecurityPolicy, authorize, resolve
from .replay import ReplayEvent, ReplayHistory, invalid_replay_id, replay_id_of
from .service import ServiceError, ServiceHandler, ServiceRequest
from .session import Ended, ServerSession, new_client_id
from .settings import EVENTSOURCE, Settings
from .stats import Stats
from .timesync import TimesyncRequest
from .tree import ChannelTree, subscription_cost

BAYEUX_VERSION = "1.0"
log = logging.getLogger("bayeux.server")

SessionListener = Callable[[ServerSession], Any]
RemovalListener = Callable[[ServerSession, Ended], Any]
SubscriptionListener = Callable[[ServerSession, str], Any]
MessageListener = Callable[[ServerSession | None, str, Message], Any]


@dataclass(slots=True)
class ConnectHold:
    """A successful `/meta/connect` whose reply may wait up to `timeout` seconds for messages."""

    session: ServerSession
    reply: Message
    timeout: float
    timesync: TimesyncRequest | None = None


@dataclass(slots=True)
class Outcome:
    """What handling one batch produced: replies in request order, and the batch's connect."""

    replies: list[Message]
    connect: ConnectHold | None = None
    # The batch's broadcasts on their way to the engine's log: the replies wait for them.
    appends: list[asyncio.Future[bool]] = field(default_factory=list)


class BayeuxServer:
    """Sessions, subscriptions, the five meta channels of Bayeux 1.0, and the hooks applications
    use: a security policy, authorizers, listeners, services and extensions."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        policy: SecurityPolicy | None = None,
    ) -> None:
        self.settings = settings = settings or Settings()
        self.channels = ch.ChannelLimits(settings.max_channel_length, settings.max_channel_segments)
        self.clock = clock
        self.wall_clock = wall_clock
        self.policy = policy or SecurityPolicy()
        self.sessions: dict[str, ServerSession] = {}
        self.tree: ChannelTree[ServerSession] = ChannelTree()
        self.shutting_down = False
        self.extensions: list[Extension] = []
        self._authorizers: dict[str, list[Authorizer]] = {}
        self._message_listeners: dict[str, list[MessageListener]] = {}
        self._services: dict[str, ServiceHandler] = {}
        self._lazy: set[str] = set()
        self._session_added: list[SessionListener] = []
        self._session_removed: list[RemovalListener] = []
        self._subscribed: list[SubscriptionListener] = []
        self._unsubscribed: list[SubscriptionListener] = []
        self._tasks: set[asyncio.Future[Any]] = set()
        # What the processes of a deployment share (core/engine.py); None for one process.
        self.engine: Engine | None = None
        self.stats = Stats()
        self._handshakes = AddressWindow(
            settings.max_handshakes_per_address, settings.handshake_window / 1000
        )
        # Formats besides JSON that some connection reads (e.g. "msgpack"), with how many: a
        # broadcast is encoded in each when it is published, so that data one of them cannot
        # carry is refused to the publisher rather than failing on its way to a subscriber.
        self._formats: dict[str, int] = {}
        # Events kept for replay, when some channels have it (core/replay.py).
        self.replay: ReplayHistory | None = (
            ReplayHistory(
                settings.replay_channels,
                max_events=settings.replay_max_events,
                retention_seconds=settings.replay_retention / 1000,
                wall_clock=wall_clock,
            )
            if settings.replay_channels
            else None
        )
        # What the sessions of each client address hold together (core/limits.py).
        self.budgets = AddressBudgets(settings.max_address_bytes)
        # Read for every delivery: kept at hand.
        self._max_queue = settings.max_queue
        self._max_queue_bytes = settings.max_queue_bytes

    # ------------------------------------------------------------------------ registration

    def add_extension(self, extension: Extension) -> None:
        self.extensions.append(extension)

    def add_authorizer(self, pattern: str, authorizer: Authorizer) -> None:
        """Authorizes operations on `pattern` (a channel or a wildcard pattern covering many)."""
        _check_pattern(pattern)
        self._authorizers.setdefault(pattern, []).append(authorizer)

    def add_message_listener(self, pattern: str, listener: MessageListener) -> None:
        """Calls `listener(session, channel, message)` for every message published to a channel
        matching `pattern`, before delivery. It may change the message in place; returning
        False drops it (the publisher is told). It may be a coroutine."""
        _check_pattern(pattern)
        self._message_listeners.setdefault(pattern, []).append(listener)

    def add_service(self, channel: str, handler: ServiceHandler) -> None:
        """Answers messages published to the service channel `channel` (or a pattern of them):
        `handler(request)` returns (or resolves to) the reply's data, or raises ServiceError.
        The reply goes to the requesting session only, with the request's id."""
        _check_pattern(channel)
        if not ch.is_service(channel):
            raise ValueError(f"services live on /service/** channels, not {channel!r}")
        self._services[channel] = handler

    def set_lazy(self, pattern: str) -> None:
        """Messages on channels matching `pattern` may wait up to `max_lazy_timeout` for
        company before waking a held connect (CometD's lazy channels)."""
        _check_pattern(pattern)
        self._lazy.add(pattern)

    def on_session_added(self, listener: SessionListener) -> None:
        self._session_added.append(listener)

    def on_session_removed(self, listener: RemovalListener) -> None:
        """`listener(session, ended)`; `ended is Ended.EXPIRED` when it timed out."""
        self._session_removed.append(listener)

    def on_subscribed(self, listener: SubscriptionListener) -> None:
        self._subscribed.append(listener)

    def on_unsubscribed(self, listener: SubscriptionListener) -> None:
        self._unsubscribed.append(listener)

    def use_format(self, name: str, change: int) -> None:
        """A transport opened (+1) or closed (-1) a connection reading format `name`."""
        count = self._formats.get(name, 0) + change
        if count > 0:
            self._formats[name] = count
        else:
            self._formats.pop(name, None)

    # ----------------------------------------------------------------------------- the batch

    async def handle(self, messages: list[Message], peer: Peer | None = None) -> Outcome:
        """Handles one batch from one connection (`peer`, when the transport knows it)."""
        outcome = Outcome(replies=[])
        if len(messages) > 1:
            handshake = next((m for m in messages if m["channel"] == ch.META_HANDSHAKE), None)
            if handshake is not None:
                # Bayeux 1.0: a server MUST ignore other messages sent with a handshake; and one
                # batch makes at most one session.
                messages = [handshake]
        peer = peer or Peer()
        for message in messages:
            try:
                await self._handle_one(message, peer, outcome)
            except Exception:
                # A bug here must cost this message only, never the batch or the connection.
                log.exception("internal error handling a message on %r", message["channel"][:64])
                self.stats.errors["handle"] += 1
                outcome.replies.append(_failure(message, error(500, "", "Internal error")))
        if outcome.appends:
            # Each settles within the engine's command timeout, in the log or delivered here.
            await asyncio.wait(outcome.appends)
        return outcome

    async def _handle_one(self, message: Message, peer: Peer, outcome: Outcome) -> None:
        channel = message["channel"]
        self.stats.messages_in[
            "meta" if ch.is_meta(channel) else "service" if ch.is_service(channel) else "broadcast"
        ] += 1
        session = self._session_of(message)
        if session is None and self.engine is not None and channel != ch.META_HANDSHAKE:
            try:
                session = await self._shared_session(message)
            except EngineUnavailable:
                self.stats.errors["engine"] += 1
                outcome.replies.append(_failure(message, *_ENGINE_UNAVAILABLE))
                return
        problem = _field_problem(message)
        if problem is None and peer.binary:
            problem = _non_json_problem(message)
        if problem is not None:
            self._emit(outcome.replies, session, _failure(message, problem))
            return
        rejected = self._incoming(session, message)
        if rejected is not None:
            self._emit(outcome.replies, session, rejected)
            return
        channel = message["channel"]
        if channel == ch.META_CONNECT:
            reply, hold = self._connect(message, session)
            if hold is None:
                self._emit(outcome.replies, session, reply)
            else:
                if outcome.connect is not None:
                    # Two connects in one batch: the earlier one is answered at once.
                    earlier, reply_now = self.finish_connect(outcome.connect)
                    outcome.replies.extend(d.message for d in earlier)
                    outcome.replies.append(reply_now)
                outcome.connect = hold
            return
        reply = await self._dispatch(channel, message, session, peer, outcome)
        if channel == ch.META_HANDSHAKE and reply.get("successful"):
            session = self.sessions.get(reply["clientId"])
        self._emit(outcome.replies, session, reply)

    async def _dispatch(
        self,
        channel: str,
        message: Message,
        session: ServerSession | None,
        peer: Peer,
        outcome: Outcome,
    ) -> Message:
        if channel == ch.META_HANDSHAKE:
            return await self._handshake(message, peer)
        if session is None:
            if ch.is_meta(channel) and channel not in ch.META_CHANNELS:
                return _failure(message, error(404, channel, "Unknown meta channel"))
            if not ch.is_meta(channel) and not self.channels.valid_name(channel):
                return _failure(message, error(405, channel, "Invalid channel"))
            return _unknown_client(message)
        if channel == ch.META_DISCONNECT:
            return await self._disconnect(message, session)
        if channel == ch.META_SUBSCRIBE:
            return await self._subscribe(message, session, subscribe=True)
        if channel == ch.META_UNSUBSCRIBE:
            return await self._subscribe(message, session, subscribe=False)
        if ch.is_meta(channel):
            # Exact names only: "/meta/subscribe/x" is not "/meta/subscribe".
            return _failure(message, error(404, channel, "Unknown meta channel"))
        return await self._publish(message, session, outcome)

    def _incoming(self, session: ServerSession | None, message: Message) -> Message | None:
        """Runs incoming extensions; a failure reply when one of them dropped the message (or
        failed: a broken extension costs the message, not the batch)."""
        for extension in self._extensions_of(session, outgoing=False):
            try:
                kept = extension.incoming(session, message) is not False
            except Exception:
                log.exception("extension %r failed on an incoming message", extension)
                self.stats.errors["extension"] += 1
                return _failure(message, error(500, message["channel"], "Extension failed"))
            if not kept:
                return _failure(message, error(404, message["channel"], "Message deleted"))
        return None

    def _emit(self, replies: list[Message], session: ServerSession | None, reply: Message) -> None:
        """Runs outgoing extensions on a reply, keeping it unless one of them drops it."""
        if reply.get("successful") is False:
            self.stats.error_replies[str(reply.get("error", ""))[:3]] += 1
        if self._outgoing(session, reply):
            replies.append(reply)

    def _outgoing(self, session: ServerSession | None, message: Message) -> bool:
        return self._run_outgoing(self._extensions_of(session, outgoing=True), session, message)

    def _run_outgoing(
        self, extensions: list[Extension], session: ServerSession | None, message: Message
    ) -> bool:
        """Whether every extension keeps `message`; one that raises drops it (and is logged)."""
        for extension in extensions:
            try:
                if extension.outgoing(session, message) is False:
                    return False
            except Exception:
                log.exception("extension %r failed on an outgoing message", extension)
                self.stats.errors["extension"] += 1
                return False
        return True

    def _extensions_of(self, session: ServerSession | None, *, outgoing: bool) -> list[Extension]:
        own = session.extensions if session is not None else []
        if not own:
            return self.extensions
        # CometD's order: server extensions first on the way in, session extensions first out.
        return own + self.extensions if outgoing else self.extensions + own

    # ------------------------------------------------------------------------ meta channels

    async def _handshake(self, message: Message, peer: Peer) -> Message:
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
        refusal = self._admission(peer)
        if refusal is not None:
            return _failure(message, *refusal)
        budget = self.budgets.of(peer.address)
        if budget.over(SESSION_OVERHEAD):
            self._refused("address-bytes")
            return _failure(
                message,
                error(503, "", "Address over its memory budget"),
                {"reconnect": "handshake", "interval": self.settings.handshake_window},
            )
        session = ServerSession(new_client_id(), self.clock() + self.settings.max_interval / 1000)
        if not await self._allowed(self.policy.can_handshake, session, message):
            self._refused("policy")
            return _failure(message, error(403, "", "Handshake denied"), _NONE)
        if len(self.sessions) >= self.settings.max_sessions:  # again: the policy may have waited
            self._refused("max-sessions")
            return _failure(message, *self._too_many_sessions())
        session.budget = budget
        self.budgets.opened(budget)
        self._add_session(session)
        if peer.persistent:
            peer.sessions.append(session)
        ext = message.get("ext") or {}
        if self.settings.ack_extension and ext.get("ack") is True:
            session.ack = AckState()
        if self.engine is not None:
            try:
                await self.engine.created(session)
            except EngineUnavailable:
                # Served here all the same; the engine records it when it is back.
                self.stats.errors["engine"] += 1
        reply = reply_to(message)
        reply.update(
            version=BAYEUX_VERSION,
            minimumVersion=BAYEUX_VERSION,
            supportedConnectionTypes=list(allowed),
            clientId=session.id,
            successful=True,
            advice=self._advice(),
        )
        if session.ack is not None:
            reply.setdefault("ext", {})["ack"] = True
        if self.replay is not None and ext.get("replay") is True:
            reply.setdefault("ext", {})["replay"] = True
        self._timesync_reply(message, reply)
        return reply

    def _refused(self, reason: str) -> None:
        """Counts a refused handshake (and logs it at debug: under a flood, counts are what an
        operator needs, not a line per attempt)."""
        self.stats.refused[reason] += 1
        log.debug(
            "handshake refused: %s", reason, extra={"event": "handshake-refused", "reason": reason}
        )

    def _admission(self, peer: Peer) -> tuple[str, dict[str, Any]] | None:
        """Why a new session may not be created for `peer` now (error, advice), or None."""
        s = self.settings
        if len(self.sessions) >= s.max_sessions:
            self._refused("max-sessions")
            return self._too_many_sessions()
        if peer.persistent and peer.live_sessions() >= s.max_sessions_per_connection:
            self._refused("sessions-per-connection")
            return (
                error(503, "", "Too many sessions on this connection"),
                {"reconnect": "handshake", "interval": s.handshake_window},
            )
        wait = self._handshakes.admit(peer.address, self.clock())
        if wait > 0:
            self._refused("handshakes-per-address")
            return (
                error(429, "", "Too many handshakes from this address"),
                {"reconnect": "handshake", "interval": max(1, int(wait * 1000))},
            )
        return None

    def _too_many_sessions(self) -> tuple[str, dict[str, Any]]:
        return (
            error(503, "", "Too many sessions"),
            {"reconnect": "handshake", "interval": self.settings.handshake_window},
        )

    def _connect(
        self, message: Message, session: ServerSession | None
    ) -> tuple[Message, ConnectHold | None]:
        if session is None or session.local:
            return _unknown_client(message), None
        connection_type = message.get("connectionType")
        if not isinstance(connection_type, str):
            return _failure(message, error(400, "connectionType", "Missing or invalid field")), None
        if connection_type not in self.settings.allowed_transports:
            failed = _failure(message, error(406, connection_type, "Unsupported connection type"))
            return failed, None
        session.connection_type = connection_type
        ext = message.get("ext") or {}
        if session.ack is not None and isinstance(ext.get("ack"), int):
            session.acknowledge(ext["ack"])
        timesync = None
        if self.settings.timesync_extension:
            timesync = TimesyncRequest.from_message(message, int(self.wall_clock() * 1000))
        reply = reply_to(message)
        reply.update(clientId=session.id, successful=True, advice=self._advice())
        first = not session.connected
        session.connected = True
        if connection_type == EVENTSOURCE:
            # As Faye does: the stream carries deliveries, so connects are answered at once and
            # act as a heartbeat every `timeout` ms.
            reply["advice"] = {**reply["advice"], "interval": self.settings.timeout, "timeout": 0}
            return reply, self._hold(ConnectHold(session, reply, 0, timesync))
        hold_ms = 0 if first else self.settings.timeout
        # A client's advice.timeout applies to this connect only (as in CometD), and can shorten
        # the hold but not stretch it past the server's timeout (_field_problem checked it).
        advice = message.get("advice")
        if isinstance(advice, dict) and "timeout" in advice:
            hold_ms = min(hold_ms, int(advice["timeout"]))
        return reply, self._hold(ConnectHold(session, reply, hold_ms / 1000, timesync))

    def _hold(self, hold: ConnectHold) -> ConnectHold:
        """Makes `hold` the session's current connect. While it is held the session cannot
        expire, but only for as long as a hold may last: should a transport never finish it,
        the session still expires maxInterval after the hold's timeout."""
        session = hold.session
        session.held = hold
        session.deadline = self.clock() + hold.timeout + self.settings.max_interval / 1000
        return hold

    def finish_connect(
        self, hold: ConnectHold, *, multiple_clients: bool = False, deliver: bool = True
    ) -> tuple[list[Delivery], Message]:
        """Completes a held connect: the messages to write before its reply (the session's
        queue, unless `deliver` is False or the session ended), and the reply itself.

        Restarts the session's expiry clock; numbers the batch for the ack extension; adjusts
        the advice when the session ended, or with `multiple_clients` when another connection
        of the same session or browser holds the connect budget."""
        session = hold.session
        reply = hold.reply
        ended = session.ended
        if ended is Ended.MOVED:
            # Another process serves the session now: the client's next connect goes there.
            reply["advice"] = {"reconnect": "retry", "interval": 0}
            return [], reply
        if ended is not None:
            reply["advice"] = {
                "reconnect": "none" if ended is Ended.DISCONNECTED else "handshake",
                "interval": 0,
            }
            if ended is not Ended.DISCONNECTED:
                reply["successful"] = False
                reply["error"] = error(402, "", "Unknown client")
            return [], reply
        interval = reply["advice"].get("interval", self.settings.interval)
        if multiple_clients:
            interval = self.settings.multi_session_interval
            reply["advice"] = {**reply["advice"], "multiple-clients": True, "interval": interval}
        elif self.shutting_down:
            interval = self.settings.multi_session_interval
            reply["advice"] = {**reply["advice"], "interval": interval}
        deliveries = session.drain() if deliver else []
        if session.ack is not None:
            reply.setdefault("ext", {})["ack"] = session.record_batch(deliveries)
        if hold.timesync is not None:
            reply.setdefault("ext", {})["timesync"] = hold.timesync.reply(
                int(self.wall_clock() * 1000)
            )
        if session.held is hold or session.held is None:
            # Only the current connect restarts the clock: a displaced one finishing while a
            # newer one is held must not start an expiry that the held one would outlive.
            session.held = None
            session.deadline = self.clock() + (interval + self.settings.max_interval) / 1000
        self._outgoing(session, reply)
        return deliveries, reply

    async def _disconnect(self, message: Message, session: ServerSession) -> Message:
        if session.remote:
            assert self.engine is not None
            try:
                await self.engine.end(session.id)
            except EngineUnavailable:
                self.stats.errors["engine"] += 1
                return _failure(message, *_ENGINE_UNAVAILABLE)
        else:
            self.remove_session(session, Ended.DISCONNECTED)
        reply = reply_to(message)
        reply.update(clientId=session.id, successful=True)
        return reply

    async def _subscribe(
        self, message: Message, session: ServerSession, *, subscribe: bool
    ) -> Message:
        subscription = message.get("subscription")
        given = subscription if isinstance(subscription, list) else [subscription]
        if not given or not all(isinstance(p, str) for p in given):
            reply = _failure(message, error(400, "subscription", "Missing or invalid field"))
            reply["clientId"] = session.id
            return reply
        patterns = cast(list[str], given)
        bad = [p for p in patterns if not self.channels.valid_subscription(p)]
        failure = None
        # What a subscribe would add (service channels are never recorded).
        new = (
            [p for p in patterns if p not in session.subscriptions and not ch.is_service(p)]
            if subscribe
            else []
        )
        if bad:
            failure = error(405, bad, "Invalid channel")
        elif subscribe and any(ch.is_meta(p) for p in patterns):
            failure = error(403, [p for p in patterns if ch.is_meta(p)], "Subscription denied")
        elif subscribe and self._too_many_subscriptions(session, set(new)):
            failure = error(403, new, "Too many subscriptions")
        elif subscribe:
            denied = [
                p for p in patterns if not await self._may(Operation.SUBSCRIBE, p, session, message)
            ]
            if denied:
                failure = error(403, denied, "Subscription denied")
        replays: list[list[ReplayEvent]] = []
        if failure is None and subscribe and self.replay is not None:
            if self.engine is not None and _asks_replay(message):
                try:
                    await self.engine.caught_up()
                except EngineUnavailable:
                    self.stats.errors["engine"] += 1  # replays what this process has
            replays, failure = self._replays_asked(message, patterns)
        reply = reply_to(message)
        reply.update(clientId=session.id, subscription=subscription)
        if failure is not None:
            reply.update(successful=False, error=failure)
            return reply
        # Bayeux 1.0: servers SHOULD NOT record service subscriptions.
        recorded = [p for p in patterns if not ch.is_service(p)]
        if self.engine is not None and not session.local:
            # Through the log, wherever the session is served: the change (and the replay it
            # asks for) takes effect in log order, between the messages before and after it.
            asked = _replay_asks(message, recorded) if replays else {}
            try:
                if recorded or asked:
                    await self.engine.subscriptions_changed(session, recorded, subscribe, asked)
            except EngineUnavailable:
                self.stats.errors["engine"] += 1
                if session.remote:  # nothing was done: the client may retry
                    reply.update(successful=False, error=_ENGINE_UNAVAILABLE[0])
                    reply["advice"] = _ENGINE_UNAVAILABLE[1]
                    return reply
                # Served here: applied here, and recorded when the engine is back.
                self._change_subscriptions(session, recorded, subscribe, replays)
        else:
            self._change_subscriptions(session, recorded, subscribe, replays)
        reply["successful"] = True
        return reply

    def _too_many_subscriptions(self, session: ServerSession, new: set[str]) -> bool:
        """Whether subscribing `session` to `new` patterns passes one of its bounds: their
        number, their memory, its address's memory."""
        if len(session.subscriptions) + len(new) > self.settings.max_subscriptions:
            return True
        cost = sum(subscription_cost(p) for p in new)
        return (
            session.subscription_bytes + cost > self.settings.max_subscription_bytes
            or session.budget.over(cost)
        )

    def _change_subscriptions(
        self,
        session: ServerSession,
        patterns: list[str],
        subscribe: bool,
        replays: list[list[ReplayEvent]],
    ) -> None:
        for pattern in patterns:
            if subscribe:
                self.subscribe(session, pattern)
            else:
                self.unsubscribe(session, pattern)
        # Queued now, in the same step as the subscription: no live event can come between
        # the last replayed one and the first live one, nor be both.
        for events in replays:
            for event in events:
                self._enqueue(session, self._encoded(event.message))

    def _replays_asked(
        self, message: Message, patterns: list[str]
    ) -> tuple[list[list[ReplayEvent]], str | None]:
        """The events each subscribed replay channel asks for in `ext.replay`, or the error
        for an id that cannot be resumed from. A subscribe's ext.replay is honoured whatever
        the handshake asked (aiosfstream never asks there)."""
        assert self.replay is not None
        ext = message.get("ext")
        asked = ext.get("replay") if isinstance(ext, dict) else None
        if not isinstance(asked, dict):
            return [], None
        replays = []
        for pattern in patterns:
            replay_id = asked.get(pattern)
            if replay_id is None or not self.replay.covers(pattern):
                continue
            if not isinstance(replay_id, int) or isinstance(replay_id, bool):
                return [], invalid_replay_id(replay_id)
            events = self.replay.after(pattern, replay_id)
            if events is None:
                return [], invalid_replay_id(replay_id)
            replays.append(events)
        return replays, None

    async def _may(
        self, operation: Operation, channel: str, session: ServerSession, message: Message
    ) -> bool:
        """Whether the policy and the authorizers in scope allow `operation` on `channel`. A
        policy or authorizer that raises denies (and is logged)."""
        policy = self.policy
        if type(policy) is SecurityPolicy and not self._authorizers:
            return True  # nothing installed: the common case costs nothing per message
        return await self._allowed(self._checks, operation, channel, session, message)

    async def _allowed(self, check: Callable[..., Any], *args: Any) -> bool:
        """`check(*args)`, awaited if need be; a check that raises denies (and is logged)."""
        try:
            return bool(await resolve(check(*args)))
        except Exception:
            log.exception("security policy or authorizer %r failed: denied", check)
            self.stats.errors["policy"] += 1
            return False

    async def _checks(
        self, operation: Operation, channel: str, session: ServerSession, message: Message
    ) -> bool:
        policy = self.policy
        if not self._in_use(channel):
            if not await resolve(policy.can_create(session, channel, message)):
                return False
            if not await authorize(
                self._authorizers_for(channel), Operation.CREATE, channel, session, message
            ):
                return False
        check = policy.can_subscribe if operation is Operation.SUBSCRIBE else policy.can_publish
        if not await resolve(check(session, channel, message)):
            return False
        return await authorize(self._authorizers_for(channel), operation, channel, session, message)

    def _in_use(self, channel: str) -> bool:
        return (
            self.tree.has(channel)
            or channel in self._message_listeners
            or channel in self._services
        )

    def _authorizers_for(self, channel: str) -> list[Authorizer]:
        if not self._authorizers:
            return []
        return [
            a
            for pattern, found in self._authorizers.items()
            if ch.matches(pattern, channel) or pattern == channel
            for a in found
        ]

    # ---------------------------------------------------------------------------- publishing

    async def _publish(self, message: Message, session: ServerSession, outcome: Outcome) -> Message:
        channel = message["channel"]
        if not self.channels.valid_name(channel):
            return _failure(message, error(405, channel, "Invalid channel"))
        if "data" not in message:
            return _failure(message, error(400, "data", "Missing field"))
        if not await self._may(Operation.PUBLISH, channel, session, message):
            return _failure(message, error(403, channel, "Publish denied"))
        if not await self._notify_message_listeners(session, channel, message):
            return _failure(message, error(404, channel, "Message deleted"))
        if ch.is_broadcast(channel):
            outgoing: Message = {"channel": channel, "data": message["data"]}
            if isinstance(message.get("ext"), dict):
                outgoing["ext"] = message["ext"]
            exclude = None if self.settings.broadcast_to_publisher else session
            try:
                self._broadcast(outgoing, exclude, outcome)
            except NotRepresentable:
                return _failure(message, error(400, "data", "Not representable as JSON"))
        else:
            # /service/** messages are for the server alone: never broadcast.
            self._call_service(session, channel, message)
        reply = reply_to(message)
        reply["successful"] = True
        return reply

    async def _notify_message_listeners(
        self, session: ServerSession | None, channel: str, message: Message
    ) -> bool:
        if not self._message_listeners:
            return True
        for pattern, listeners in list(self._message_listeners.items()):
            if not ch.matches(pattern, channel):
                continue
            for listener in listeners:
                try:
                    if await resolve(listener(session, channel, message)) is False:
                        return False
                except Exception:
                    log.exception("message listener on %s failed; message dropped", pattern)
                    return False
        return True

    def _call_service(self, session: ServerSession, channel: str, message: Message) -> None:
        handler = self._services.get(channel)
        if handler is None:
            handler = next((h for p, h in self._services.items() if ch.matches(p, channel)), None)
        if handler is None:
            return
        request = ServiceRequest(session, channel, message)
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
            task = asyncio.ensure_future(result)
            self._tasks.add(task)
            task.add_done_callback(lambda t: self._service_done(request, t))
        else:
            self._answer_service(request, result)

    def _service_done(self, request: ServiceRequest, task: asyncio.Future[Any]) -> None:
        self._tasks.discard(task)
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
        if not self._outgoing(session, reply):
            return
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
        self._enqueue_for(session, delivery)

    def _enqueue_for(self, session: ServerSession, delivery: Delivery) -> None:
        """Queues a message for one session, wherever the deployment serves it."""
        if session.remote and self.engine is not None:
            task = asyncio.ensure_future(self.engine.deliver_to(session.id, delivery))
            self._tasks.add(task)
            task.add_done_callback(self._forwarded)
        else:
            self._enqueue(session, delivery)

    def _forwarded(self, task: asyncio.Future[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("a message for a session served elsewhere was lost: %s", task.exception())
            self.stats.dropped["engine-unavailable"] += 1

    def publish(self, channel: str, data: Any, *, ext: dict[str, Any] | None = None) -> int:
        """Publishes from the server side to every subscriber of `channel`; returns how many
        sessions of this process it reaches (with an engine, those it will reach when the
        log hands it back). Message listeners are not called."""
        if not self.channels.valid_name(channel) or ch.is_meta(channel):
            raise ValueError(f"cannot publish to {channel!r}")
        message: Message = {"channel": channel, "data": data}
        if ext is not None:
            message["ext"] = ext
        prepared = self._prepare(message)
        if prepared is None:
            return 0
        message, delivery = prepared
        if self.engine is None:
            return self._deliver_local(message, delivery, None)
        self._append(message, delivery, None)
        return sum(1 for _ in self.tree.match(channel))

    def deliver(self, session: ServerSession, channel: str, data: Any) -> None:
        """Queues a message for one session only, whatever its subscriptions."""
        if not self.channels.valid_name(channel) or ch.is_meta(channel):
            raise ValueError(f"cannot deliver on {channel!r}")
        message = {"channel": channel, "data": data}
        if self._outgoing(None, message):
            self._enqueue_for(session, self._encoded(message))

    def _broadcast(self, message: Message, exclude: ServerSession | None, outcome: Outcome) -> None:
        """Queues a client's broadcast for every subscriber: through the engine's log when
        there is one (the batch's replies wait until the log has it: nothing acknowledged is
        lost; the batch's broadcasts go in one round trip), locally when there is none or it
        cannot be reached."""
        prepared = self._prepare(message)
        if prepared is None:
            return
        message, delivery = prepared
        if self.engine is None:
            self._deliver_local(message, delivery, exclude.id if exclude else None)
            return
        outcome.appends.append(self._append(message, delivery, exclude.id if exclude else None))

    def _append(
        self, message: Message, delivery: Delivery, exclude: str | None
    ) -> asyncio.Future[bool]:
        assert self.engine is not None
        appended = self.engine.append(delivery, exclude)

        def settled(future: asyncio.Future[bool]) -> None:
            if future.cancelled() or not future.result():
                self._deliver_local(message, delivery, exclude)

        appended.add_done_callback(settled)
        return appended

    def _prepare(self, message: Message) -> tuple[Message, Delivery] | None:
        """A broadcast as its subscribers get it, encoded once for all of them: after the
        server's outgoing extensions (None if one dropped it), shaped on replay channels.
        Raises NotRepresentable when it cannot be encoded as JSON (bytes from a msgpack
        client, Python objects from the server side), before anything is queued."""
        if self.extensions and not self._run_outgoing(self.extensions, None, message):
            return None
        replay = self.replay
        if replay is not None and replay.covers(message["channel"]):
            message, _ = replay.shape(message)
        return message, self._encoded(message)

    def _deliver_local(self, message: Message, delivery: Delivery, exclude: str | None) -> int:
        """Queues a prepared broadcast for the subscribers of this process."""
        replay = self.replay
        if replay is not None:
            self._keep_replay(replay, message)
        return self._fan_out(message, delivery, exclude, 0)

    def _keep_replay(self, replay: ReplayHistory, message: Message, position: int = 0) -> None:
        if replay.covers(message["channel"]):
            replay_id = replay_id_of(message)
            if replay_id is not None:
                replay.keep(message, replay_id, position=position)

    def _fan_out(
        self, message: Message, delivery: Delivery, exclude: str | None, position: int
    ) -> int:
        """Queues `delivery` for every local subscriber of its channel but `exclude`; with a
        log `position`, only for sessions not already past it (taken over meanwhile)."""
        channel = message["channel"]
        lazy = self._lazy and any(ch.matches(p, channel) for p in self._lazy)
        stats = self.stats
        lazy_seconds = self.settings.max_lazy_timeout / 1000 if lazy else None
        count = 0
        recipients = self.tree.match(channel)
        delivery.shared_by(len(recipients))
        for session in recipients:
            if session.id == exclude:
                continue
            if position:
                if session.position >= position:
                    continue
                session.position = position
            if session.extensions:
                own = _copy_message(message)
                if not self._run_outgoing(session.extensions, session, own):
                    continue
                try:
                    own_delivery = self._encoded(own)
                except NotRepresentable:
                    log.error(
                        "an extension of session %s made %s unencodable; skipped",
                        session.tag,
                        channel,
                    )
                    continue
                own_delivery.position = position
                self._enqueue(session, own_delivery, lazy_seconds)
            else:
                self._enqueue(session, delivery, lazy_seconds)
            count += 1
        stats.deliveries += count
        stats.delivery_bytes += count * len(delivery.json)
        return count

    # ------------------------------------------------------------ the engine's side (engine.py)

    def apply_log(self, entries: list[LogEntry]) -> None:
        """Applies what the engine's log hands back, in log order: broadcasts for the local
        subscribers, and subscription changes and messages for sessions served here."""
        replay = self.replay
        for entry in entries:
            try:
                if isinstance(entry, LoggedMessage):
                    message = entry.message if entry.message is not None else entry.delivery.message
                    if replay is not None:
                        self._keep_replay(replay, message, entry.position)
                    if not entry.delivered:
                        self._fan_out(message, entry.delivery, entry.exclude, entry.position)
                else:
                    served = self.sessions.get(entry.client_id)
                    if served is not None:
                        self._apply_to(served, entry)
            except Exception:  # one bad entry must not stop the others
                log.exception("applying a log entry failed")
                self.stats.errors["engine"] += 1

    def _apply_to(self, session: ServerSession, entry: LogEntry) -> None:
        """Applies one log entry to one session, unless it is already past it."""
        if entry.position <= session.position or session.ended is not None:
            return
        if type(entry) is LoggedMessage:
            if (
                not entry.delivered
                and entry.exclude != session.id
                and any(ch.matches(p, entry.delivery.channel) for p in session.subscriptions)
            ):
                self._enqueue(session, entry.delivery)
        elif type(entry) is LoggedSubscription:
            self._change_subscriptions(session, entry.patterns, entry.subscribed, [])
            if entry.replay and self.replay is not None:
                # The events before the subscription in the log (those after it are live),
                # at the subscription's position: a process taking the session over before
                # they are written derives them again from the same entry, not twice.
                for pattern, replay_id in entry.replay.items():
                    for event in self.replay.after(pattern, replay_id, entry.position) or []:
                        replayed = self._encoded(event.message)
                        replayed.position = entry.position
                        self._enqueue(session, replayed)
        elif type(entry) is LoggedDelivery:
            self._enqueue(session, entry.delivery)
        session.position = entry.position

    async def _shared_session(self, message: Message) -> ServerSession | None:
        """The session of a message for a clientId this process does not serve: taken over
        for a connect that delivers (long-polling, callback-polling, WebSocket), else a view
        for this request only. None when the deployment has no such session."""
        engine = self.engine
        client_id = message.get("clientId")
        if engine is None or not isinstance(client_id, str) or not _CLIENT_ID.match(client_id):
            return None  # not an id this server makes: unknown without asking the engine
        channel = message["channel"]
        if channel == ch.META_CONNECT and message.get("connectionType") != EVENTSOURCE:
            return await self.take_over(client_id, message)
        record = await engine.view(client_id)
        served = self.sessions.get(client_id)  # taken over here meanwhile?
        if served is not None or record is None:
            return served
        session = ServerSession(client_id, self.clock() + self.settings.max_interval / 1000)
        session.remote = True
        session.subscriptions.update(record.subscriptions)
        if record.ack:
            session.ack = AckState(record.batch, record.position)
        return session

    async def take_over(
        self, client_id: str, message: Message | None = None
    ) -> ServerSession | None:
        """Makes this process serve a session of the deployment (from the process serving it,
        which lets go of it); None when there is no such session."""
        assert self.engine is not None
        if not _CLIENT_ID.match(client_id):
            return None
        ext = message.get("ext") if message is not None else None
        acknowledged = ext.get("ack") if isinstance(ext, dict) else None
        if not isinstance(acknowledged, int) or isinstance(acknowledged, bool):
            acknowledged = None
        claimed = await self.engine.claim(client_id, acknowledged)
        served = self.sessions.get(client_id)  # two requests of one session at once
        if served is not None or claimed is None:
            return served
        return self._adopt(claimed, acknowledged)

    def _adopt(self, claimed: Claimed, acknowledged: int | None) -> ServerSession:
        record = claimed.record
        session = ServerSession(record.client_id, self.clock() + self.settings.max_interval / 1000)
        start = record.position
        if record.ack:
            if acknowledged is not None:
                start = max(start, record.batches.get(acknowledged, start))
            session.ack = AckState(record.batch, start)
        session.position = session.written = start
        session.connected = record.connected
        if record.address:
            # Counted against its client's address here too (taken in whatever that costs:
            # the client is already served).
            session.budget = self.budgets.of(record.address)
            self.budgets.opened(session.budget)
        self.sessions[session.id] = session
        # The record has the subscriptions as they are now; as they were at the session's
        # position, before the changes the backlog applies again in order:
        subscriptions = set(record.subscriptions)
        for entry in reversed(claimed.backlog):
            if isinstance(entry, LoggedSubscription) and entry.position > start:
                if entry.subscribed:
                    subscriptions.difference_update(entry.patterns)
                else:
                    subscriptions.update(entry.patterns)
        for pattern in subscriptions:
            if self.tree.subscribe(pattern, session):
                session.subscriptions.add(pattern)
                session.subscribed(subscription_cost(pattern))
        for delivery in record.pending:
            self._enqueue(session, delivery)
        for entry in claimed.backlog:
            self._apply_to(session, entry)
        session.position = max(session.position, claimed.through)
        log.debug("session taken over", extra={"event": "session-moved-in", "session": session.tag})
        return session

    def let_go(self, client_id: str) -> ServerSession | None:
        """Stops serving a session another process takes over: its held connect is answered
        (the client's next one goes there), nothing is queued or delivered here any more."""
        session = self.sessions.pop(client_id, None)
        if session is None:
            return None
        for pattern in session.subscriptions:
            self.tree.unsubscribe(pattern, session)
        session.ended = Ended.MOVED
        # Nothing of it is held here any more (the engine reads its state to hand it over).
        self.budgets.closed(session.budget, session.held_bytes())
        session.budget = UNBOUNDED
        log.debug("session moved out", extra={"event": "session-moved-out", "session": session.tag})
        waiter = session.waiter
        session.waiter = None
        if waiter is not None:
            waiter.close()
        return session

    def _enqueue(
        self, session: ServerSession, delivery: Delivery, lazy_seconds: float | None = None
    ) -> None:
        """Queues `delivery` for `session`, or applies the queue-full policy when it would pass
        the session's bounds or its address's. On every delivery's path: the checks are plain
        reads written inline, the policy's work only when full."""
        max_bytes = self._max_queue_bytes
        max_count = self._max_queue
        while True:
            held = session.queue_bytes if session.ack is None else session.queued_bytes()
            if not (
                (max_bytes > 0 and held + delivery.size > max_bytes)
                or delivery.share > session.budget.room  # AddressBudget.over
                or (max_count > 0 and len(session.queue) >= max_count)
            ):
                session.enqueue(delivery, lazy_seconds)
                return
            policy = self.settings.queue_full_policy
            if policy == "drop-oldest" and session.queue:
                session.drop_oldest()
                self.stats.dropped["drop-oldest"] += 1
                continue
            if policy == "disconnect":
                log.warning(
                    "session %s queue full: disconnected (a slow consumer)",
                    session.tag,
                    extra={"event": "slow-consumer", "session": session.tag},
                )
                self.stats.dropped["queue-full-disconnect"] += 1
                self.remove_session(session, Ended.QUEUE_FULL)
                return
            self.stats.dropped["drop-newest"] += 1  # drop-newest, or it cannot fit at all
            return

    def _encoded(self, message: Message) -> Delivery:
        """The message encoded now, once for every subscriber, in JSON and in every other format
        some connection reads, so that a failure reaches the publisher."""
        try:
            delivery = Delivery(message)
            if "msgpack" in self._formats:
                delivery.pack_msgpack(message)
        except (TypeError, ValueError, OverflowError) as exc:
            raise NotRepresentable(f"{message.get('channel')}: {exc}") from None
        return delivery

    # ------------------------------------------------------------------------------ sessions

    def create_session(self) -> ServerSession:
        """A session created by the server itself (tests, local sessions): no policy check."""
        session = ServerSession(new_client_id(), self.clock() + self.settings.max_interval / 1000)
        self._add_session(session)
        return session

    def _add_session(self, session: ServerSession) -> None:
        self.sessions[session.id] = session
        log.debug("session added", extra={"event": "session-added", "session": session.tag})
        for listener in self._session_added:
            _call_listener(listener, session)

    def remove_session(self, session: ServerSession, reason: Ended = Ended.REMOVED) -> None:
        if self.sessions.pop(session.id, None) is None:
            return
        for pattern in list(session.subscriptions):
            self.unsubscribe(session, pattern)
        session.clear()
        self.budgets.closed(session.budget, session.held_bytes())
        session.budget = UNBOUNDED
        # Kept on the session so that its held connect, if any, can be told how it ended.
        session.ended = reason
        log.debug(
            "session removed: %s",
            reason.value,
            extra={"event": "session-removed", "session": session.tag, "reason": reason.value},
        )
        waiter = session.waiter
        session.waiter = None
        if waiter is not None:
            waiter.close()
        if self.engine is not None and not session.local:
            self.engine.removed(session, reason)
        for listener in self._session_removed:
            _call_listener(listener, session, reason)

    def subscribe(self, session: ServerSession, pattern: str) -> None:
        if self.tree.subscribe(pattern, session):
            session.subscriptions.add(pattern)
            session.subscribed(subscription_cost(pattern))
            for listener in self._subscribed:
                _call_listener(listener, session, pattern)

    def unsubscribe(self, session: ServerSession, pattern: str) -> None:
        if self.tree.unsubscribe(pattern, session):
            session.subscriptions.discard(pattern)
            session.subscribed(-subscription_cost(pattern))
            for listener in self._unsubscribed:
                _call_listener(listener, session, pattern)

    def sweep(self) -> list[ServerSession]:
        """Removes the sessions whose expiry time has passed; returns them."""
        started = time.perf_counter()
        try:
            return self._sweep()
        finally:
            self.stats.sweeps += 1
            self.stats.sweep_seconds += time.perf_counter() - started

    def _sweep(self) -> list[ServerSession]:
        now = self.clock()
        expired = [
            s for s in self.sessions.values() if s.deadline is not None and s.deadline <= now
        ]
        for session in expired:
            try:
                self.remove_session(session, Ended.EXPIRED)
            except Exception:  # one failure must not keep the others alive
                log.exception("removing expired session %s failed", session.tag)
                self.stats.errors["sweep"] += 1
        self._handshakes.expire(now)
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

    def _timesync_reply(self, message: Message, reply: Message) -> None:
        if not self.settings.timesync_extension:
            return
        now_ms = int(self.wall_clock() * 1000)
        request = TimesyncRequest.from_message(message, now_ms)
        if request is not None:
            reply.setdefault("ext", {})["timesync"] = request.reply(now_ms)


class NotRepresentable(ValueError):
    """A message that cannot be encoded as JSON (or in a format some connection reads)."""


_NONE = {"reconnect": "none", "interval": 0}
_HANDSHAKE = {"reconnect": "handshake", "interval": 0}


def _check_pattern(pattern: str) -> None:
    if not ch.is_valid_subscription(pattern):
        raise ValueError(f"not a channel name or pattern: {pattern!r}")


def _copy_message(message: Message) -> Message:
    copy = dict(message)
    if isinstance(copy.get("ext"), dict):
        copy["ext"] = dict(copy["ext"])
    return copy


# Tasks of asynchronous listeners: asyncio keeps only weak references to tasks, so they are
# held here until done.
_listener_tasks: set[asyncio.Future[Any]] = set()


def _call_listener(listener: Callable[..., Any], *args: Any) -> None:
    """Listeners must not break the server: failures are logged; coroutines run as tasks."""
    try:
        result = listener(*args)
        if asyncio.iscoroutine(result):
            task = asyncio.ensure_future(result)
            _listener_tasks.add(task)
            task.add_done_callback(_listener_done)
    except Exception:
        log.exception("listener %r failed", listener)


def _listener_done(task: asyncio.Future[Any]) -> None:
    _listener_tasks.discard(task)
    if not task.cancelled() and task.exception() is not None:
        log.error("listener task failed", exc_info=task.exception())


def _failure(message: Message, text: str, advice: dict[str, Any] | None = None) -> Message:
    reply = reply_to(message)
    reply["successful"] = False
    reply["error"] = text
    if advice is not None:
        reply["advice"] = dict(advice)
    return reply


# clientIds as new_client_id makes them: anything else is unknown without asking the engine.
_CLIENT_ID = re.compile(r"[0-9a-f]{40}\Z")
_ENGINE_UNAVAILABLE = (
    error(503, "", "Session store unavailable"),
    {"reconnect": "retry", "interval": 1000},
)


def _replay_asks(message: Message, patterns: list[str]) -> dict[str, int]:
    """The replay ids a subscribe asks for (already checked), by channel."""
    ext = message.get("ext")
    asked = ext.get("replay") if isinstance(ext, dict) else None
    if not isinstance(asked, dict):
        return {}
    return {p: asked[p] for p in patterns if isinstance(asked.get(p), int)}


def _asks_replay(message: Message) -> bool:
    ext = message.get("ext")
    return isinstance(ext, dict) and isinstance(ext.get("replay"), dict)


def _unknown_client(message: Message) -> Message:
    return _failure(message, error(402, "", "Unknown client"), _HANDSHAKE)


_MAX_MS = 2**31 - 1  # the longest duration a client may advise, ~24.8 days


def _field_problem(message: Message) -> str | None:
    """Type and range errors in the fields every message may carry, numbers included: each
    number from the wire is finite, non-negative where it is a duration, and bounded."""
    if "id" in message and not valid_id(message["id"]):
        return error(400, "id", "Invalid field")
    if "clientId" in message and not isinstance(message["clientId"], str):
        return error(400, "clientId", "Invalid field")
    for name in ("ext", "advice"):
        if name in message and not isinstance(message[name], dict):
            return error(400, name, "Invalid field")
    advice = message.get("advice") or {}
    for name in ("timeout", "interval"):
        if name in advice and not number_in(advice[name], 0, _MAX_MS):
            return error(400, f"advice.{name}", "Invalid field")
    ext = message.get("ext") or {}
    if "ack" in ext and not (
        isinstance(ext["ack"], bool) or integer_in(ext["ack"], -1, MAX_SAFE_INTEGER)
    ):
        return error(400, "ext.ack", "Invalid field")
    if "timesync" in ext:
        sync = ext["timesync"]
        if not isinstance(sync, dict) or not all(
            number_in(sync[k], -MAX_SAFE_INTEGER, MAX_SAFE_INTEGER)
            for k in ("tc", "l", "o")
            if k in sync
        ):
            return error(400, "ext.timesync", "Invalid field")
    return None


def _non_json_problem(message: Message) -> str | None:
    """For binary formats: the first field holding a value JSON cannot (see non_json_value)."""
    for name, value in message.items():
        if non_json_value(value):
            return error(400, name, "Not representable as JSON")
    return None
