"""The meta channels: handshake (with admission), connect (held or answered), disconnect,
subscribe and unsubscribe (with replay), and the advice and timesync of their replies.
"""

from __future__ import annotations

import logging
from typing import Any, cast

from . import channel as ch
from .ack import AckState
from .context import current_request
from .engine import EngineUnavailable, RecordMissing
from .limits import SESSION_OVERHEAD
from .message import Delivery, Message, error, ext_of, reply_to
from .peer import Peer
from .policy import Operation
from .publishing import Publishing
from .replay import ReplayEvent, invalid_replay_id
from .replies import (
    ENGINE_UNAVAILABLE,
    NO_RECONNECT,
    asks_replay,
    failure,
    replay_asks,
    unknown_client,
)
from .session import ConnectHold, Ended, ServerSession, Wakeup, new_client_id
from .settings import ALL_TRANSPORTS, EVENTSOURCE
from .timesync import TimesyncRequest
from .tree import subscription_cost
from .users import TooManySessions

BAYEUX_VERSION = "1.0"
# Why a held connect may be answered with the session's queue.
_DELIVERING = frozenset((Wakeup.MESSAGES, Wakeup.TIMEOUT, Wakeup.CLOSED, Wakeup.BROWSER_BUSY))
log = logging.getLogger("bayeux.server")
_CONNECTION_TYPES = {name: name for name in ALL_TRANSPORTS}


class MetaChannels(Publishing):
    """/meta/handshake, /meta/connect, /meta/disconnect, /meta/subscribe, /meta/unsubscribe."""

    async def _unmade(self, session: ServerSession) -> None:
        """A refused handshake's session: the policy may have given it a user already."""
        if session.user is not None:
            try:
                await self.dissociate(session)
            except EngineUnavailable:
                self.stats.errors["engine"] += 1

    async def _handshake(self, message: Message, peer: Peer) -> Message:
        if self.shutting_down:
            return failure(
                message,
                error(503, "", "Server shutting down"),
                {"reconnect": "handshake", "interval": self.settings.multi_session_interval},
            )
        if not isinstance(message.get("version"), str):
            return failure(message, error(400, "version", "Missing or invalid field"), NO_RECONNECT)
        offered = message.get("supportedConnectionTypes")
        if not isinstance(offered, list) or not all(isinstance(t, str) for t in offered):
            return failure(
                message,
                error(400, "supportedConnectionTypes", "Missing or invalid field"),
                NO_RECONNECT,
            )
        allowed = self.settings.allowed_transports
        if not any(t in allowed for t in offered):
            return failure(
                message, error(406, list(offered), "Unsupported connection types"), NO_RECONNECT
            )
        refusal = self._admission(peer)
        if refusal is not None:
            return failure(message, *refusal)
        budget = self.budgets.of(peer.address)
        if budget.over(SESSION_OVERHEAD):
            self._refused("address-bytes")
            return failure(
                message,
                error(503, "", "Address over its memory budget"),
                {"reconnect": "handshake", "interval": self.settings.handshake_window},
            )
        session = self.new_session(new_client_id())
        request = session.context = current_request()
        if request is not None:
            session.browser = request.browser  # the browser that makes it (None: not one)
        try:
            permitted = await self.hooks.allowed(
                self.hooks.policy.can_handshake, session, message, passing=(TooManySessions,)
            )
        except TooManySessions:
            # The policy associated the session with a user who has max_sessions_per_user:
            # refused, not another session ended; another try would fail alike.
            self._refused("sessions-per-user")
            await self._unmade(session)
            return failure(message, error(403, "", "Too many sessions for this user"), NO_RECONNECT)
        if not permitted:
            self._refused("policy")
            await self._unmade(session)
            return failure(message, error(403, "", "Handshake denied"), NO_RECONNECT)
        if len(self.sessions) >= self.settings.max_sessions:  # again: the policy may have waited
            self._refused("max-sessions")
            await self._unmade(session)
            return failure(message, *self._too_many_sessions())
        session.budget = budget
        self.budgets.opened(budget)
        session.deadline = self.expiry(0, session)  # the policy may have given its own timing
        self._add_session(session)
        if peer.persistent:
            peer.created(session)
        ext = ext_of(message)
        if self.settings.ack_extension and ext.get("ack") is True:
            session.ack = AckState()
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
            advice=self._advice(session),
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
            if session is None and message.get("clientId") in self._stopped:
                # Told to stop while no connect was held: this one carries it.
                stop = failure(message, error(402, "", "Disconnected by the server"), NO_RECONNECT)
                return stop, None
            return unknown_client(message), None
        connection_type = message.get("connectionType")
        if not isinstance(connection_type, str):
            return failure(message, error(400, "connectionType", "Missing or invalid field")), None
        if connection_type not in self.settings.allowed_transports:
            failed = failure(message, error(406, connection_type, "Unsupported connection type"))
            return failed, None
        # The name's own string, not the one decoded from this message: a session keeps it
        # (benchmarks/memory.py).
        connection_type = _CONNECTION_TYPES.get(connection_type, connection_type)
        session.connection_type = connection_type
        ext = ext_of(message)
        if session.ack is not None and isinstance(ext.get("ack"), int):
            session.acknowledge(ext["ack"])
        timesync = None
        if "timesync" in ext and self.settings.timesync_extension:
            timesync = TimesyncRequest.from_message(message, int(self.wall_clock() * 1000))
        reply = reply_to(message, ch.META_CONNECT)  # kept while held: the constant string
        # Key by key: update() with keywords would make a dict of them first
        # (benchmarks/exchange.py).
        reply["clientId"] = session.id
        reply["successful"] = True
        reply["advice"] = self._advice(session)
        first = session.connected_once()
        if connection_type == EVENTSOURCE:
            # As Faye does: the stream carries deliveries, so connects are answered at once and
            # act as a heartbeat every `timeout` ms.
            timeout = reply["advice"]["timeout"]
            reply["advice"] = {**reply["advice"], "interval": timeout, "timeout": 0}
            return reply, self._hold(ConnectHold(session, reply, 0, timesync))
        hold_ms = 0 if first else reply["advice"]["timeout"]
        # A client's advice.timeout applies to this connect only (as in CometD), and can shorten
        # the hold but not stretch it past the server's timeout (field_problem checked it).
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
        session.deadline = self.expiry(hold.timeout, session)
        flow = session.flow
        if flow is not None and flow.held and hold.timeout > 0:
            flow.tell(flow.held, session)
        return hold

    def finish_connect(
        self, hold: ConnectHold, why: Wakeup = Wakeup.MESSAGES
    ) -> tuple[list[Delivery], Message]:
        """Completes a held connect answered because of `why`: the messages to write before
        its reply, and the reply itself.

        The session's queue goes with the reply unless the session ended, or another
        connection gets it (displaced, replaced), or nobody would read it (gone), or an
        EventSource stream carries it (unless messages may leave only in connect replies:
        the ack extension). Restarts the session's expiry clock; numbers the batch for the ack
        extension; adjusts the advice when the session ended, or with multiple-clients when
        another connection of the same session or browser holds the connect budget.

        Examples:
            >>> import asyncio
            >>> session = server.create_session()
            >>> server.subscribe(session, "/news")
            >>> def connect():
            ...     return {"channel": "/meta/connect", "clientId": session.id,
            ...             "connectionType": "long-polling"}
            >>> hold = asyncio.run(server.handle([connect()])).connect
            >>> server.publish("/news", "hi")
            1
            >>> deliveries, reply = server.finish_connect(hold)
            >>> [delivery.message["data"] for delivery in deliveries], reply["successful"]
            (['hi'], True)
            >>> hold = asyncio.run(server.handle([connect()])).connect
            >>> server.publish("/news", "later")
            1
            >>> server.finish_connect(hold, Wakeup.GONE)[0], len(session.queue)  # kept
            ([], 1)
        """
        session = hold.session
        flow = session.flow
        if flow is not None and flow.released and hold.timeout > 0:
            flow.tell(flow.released, session)
        multiple_clients = why is Wakeup.DISPLACED or why is Wakeup.BROWSER_BUSY
        # Identity first: a set's look-up of an Enum calls its __hash__, written in Python.
        deliver = (
            why is Wakeup.MESSAGES
            or why in _DELIVERING
            or (why is Wakeup.STREAMED and session.connect_delivery_only)
        )
        reply = hold.reply
        ended = session.ended
        if ended is not None:
            if ended is Ended.MOVED:
                # Another process serves the session now: its next connect goes there.
                reply["advice"] = {"reconnect": "retry", "interval": 0}
            else:
                stop = ended is Ended.DISCONNECTED or ended is Ended.KICKED
                reply["advice"] = {"reconnect": "none" if stop else "handshake", "interval": 0}
                if not stop:
                    reply["successful"] = False
                    reply["error"] = error(402, "", "Unknown client")
            # Outgoing extensions see it too (a timestamp on every message sent).
            kept = self.hooks.outgoing(session, reply)
            if kept is not True and kept is not False:
                hold.pending = kept
            return [], reply
        interval = reply["advice"].get("interval")
        if interval is None:
            interval = self.timing(session)[1]
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
            session.deadline = self.expiry(interval / 1000, session)
        kept = self.hooks.outgoing(session, reply)
        if kept is not True and kept is not False:
            hold.pending = kept  # the transport awaits it (reply_ready) before writing
        return deliveries, reply

    async def _disconnect(self, message: Message, session: ServerSession) -> Message:
        if session.remote:
            try:
                await self.engine.end(session.id)
            except EngineUnavailable:
                self.stats.errors["engine"] += 1
                return failure(message, *ENGINE_UNAVAILABLE)
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
            reply = failure(message, error(400, "subscription", "Missing or invalid field"))
            reply["clientId"] = session.id
            return reply
        patterns = cast(list[str], given)
        bad = [p for p in patterns if not self.channels.valid_subscription(p)]
        refusal = None
        # What a subscribe would add (service channels are never recorded).
        new = (
            [p for p in patterns if p not in session.subscriptions and not ch.is_service(p)]
            if subscribe
            else []
        )
        if bad:
            refusal = error(405, bad, "Invalid channel")
        elif subscribe and any(ch.is_meta(p) for p in patterns):
            refusal = error(403, [p for p in patterns if ch.is_meta(p)], "Subscription denied")
        elif subscribe and self._too_many_subscriptions(session, set(new)):
            refusal = error(403, new, "Too many subscriptions")
        elif subscribe:
            denied = [
                p
                for p in patterns
                if not await self.hooks.may(Operation.SUBSCRIBE, p, session, message)
            ]
            if denied:
                refusal = error(403, denied, "Subscription denied")
        replays: list[list[ReplayEvent]] = []
        if refusal is None and subscribe and self.replay is not None:
            if asks_replay(message):
                try:
                    await self.engine.caught_up()
                except EngineUnavailable:
                    self.stats.errors["engine"] += 1  # replays what this process has
            replays, refusal = self._replays_asked(message, patterns)
        reply = reply_to(message)
        reply.update(clientId=session.id, subscription=subscription)
        if refusal is not None:
            reply.update(successful=False, error=refusal)
            return reply
        # Bayeux 1.0: servers SHOULD NOT record service subscriptions.
        recorded = [p for p in patterns if not ch.is_service(p)]
        if self.engine.shared and not session.local:
            # Through the log, wherever the session is served: the change (and the replay it
            # asks for) takes effect in log order, between the messages before and after it.
            asked = replay_asks(message, recorded) if replays else {}
            try:
                if recorded or asked:
                    await self.engine.subscriptions_changed(session, recorded, subscribe, asked)
            except EngineUnavailable:
                self.stats.errors["engine"] += 1
                if session.remote:  # nothing was done: the client may retry
                    reply.update(successful=False, error=ENGINE_UNAVAILABLE[0])
                    reply["advice"] = ENGINE_UNAVAILABLE[1]
                    return reply
                # Served here: applied here, and recorded when the engine is back.
                self._change_subscriptions(session, recorded, subscribe, replays)
            except RecordMissing:
                if session.remote:  # it ended elsewhere meanwhile
                    return unknown_client(message)
                # Served here, made while Redis was away or lost by it: applied here; the
                # record is written again (with its subscriptions) by the engine's upkeep.
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
                self._subscribe_here(session, pattern)
            else:
                self._unsubscribe_here(session, pattern)
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
        asked = ext_of(message).get("replay")
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

    def _advice(self, session: ServerSession) -> dict[str, Any]:
        timeout, interval, max_interval = self.timing(session)
        return {
            "reconnect": "retry",
            "interval": interval,
            "timeout": timeout,
            "maxInterval": max_interval,
        }

    def _timesync_reply(self, message: Message, reply: Message) -> None:
        if not self.settings.timesync_extension:
            return
        now_ms = int(self.wall_clock() * 1000)
        request = TimesyncRequest.from_message(message, now_ms)
        if request is not None:
            reply.setdefault("ext", {})["timesync"] = request.reply(now_ms)
