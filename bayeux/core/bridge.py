"""The engine's side of the server (core/engine.py): what the log hands back applied in log
order, and sessions taken over from another process or let go to one.
"""

from __future__ import annotations

import logging

from . import channel as ch
from .ack import AckState
from .context import RequestContext
from .engine import (
    Claimed,
    LogEntry,
    LoggedDelivery,
    LoggedMessage,
    LoggedSubscription,
    SessionRecord,
    SessionStopped,
)
from .fanout import copy_message
from .limits import UNBOUNDED
from .message import Message, ext_of
from .meta import MetaChannels
from .replies import CLIENT_ID
from .session import Ended, ServerSession
from .settings import EVENTSOURCE
from .tree import subscription_cost

log = logging.getLogger("bayeux.server")


class EngineBridge(MetaChannels):
    """Called by the engine (apply_log, take_over, let_go) and for sessions served elsewhere."""

    def apply_log(self, entries: list[LogEntry]) -> None:
        """Applies what the engine's log hands back, in log order: broadcasts for the local
        subscribers, and subscription changes and messages for sessions served here.

        Examples:
            >>> session = server.create_session()
            >>> server.subscribe(session, "/news")
            >>> server.apply_log([
            ...     LoggedMessage(7, Delivery({"channel": "/news", "data": "hi"}), sender=None),
            ...     LoggedSubscription(8, session.id, ["/chat/*"], subscribed=True),
            ... ])
            >>> [delivery.message["data"] for delivery in session.queue]
            ['hi']
            >>> sorted(session.subscriptions)
            ['/chat/*', '/news']
        """
        replay = self.replay
        for entry in entries:
            try:
                if isinstance(entry, LoggedMessage):
                    message = entry.message if entry.message is not None else entry.delivery.message
                    if replay is not None:
                        self._keep_replay(replay, message, entry.position)
                    if not entry.delivered:
                        self._fan_out(message, entry.delivery, entry.sender, entry.position)
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
                and (entry.sender != session.id or self.echoes(session, entry.delivery.channel))
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
            if session.extensions:
                # Its own outgoing extensions, as for a broadcast (fanout._fan_out).
                own = copy_message(entry.delivery.message)
                self._deliver_own(session, own, entry.position, None, None)
            else:
                self._enqueue(session, entry.delivery)
        session.position = entry.position

    async def _shared_session(
        self, message: Message, request: RequestContext | None
    ) -> ServerSession | None:
        """The session of a message for a clientId this process does not serve: taken over
        for a connect that delivers (long-polling, callback-polling, WebSocket), else a view
        for this request only. None when the deployment has no such session."""
        engine = self.engine
        client_id = message.get("clientId")
        if not isinstance(client_id, str) or not CLIENT_ID.match(client_id):
            return None  # not an id this server makes: unknown without asking the engine
        channel = message["channel"]
        if channel == ch.META_CONNECT and message.get("connectionType") != EVENTSOURCE:
            return await self.take_over(client_id, message, request)
        record = await engine.view(client_id)
        served = self.sessions.get(client_id)  # taken over here meanwhile?
        if served is not None or record is None:
            return served
        session = self.new_session(client_id)
        session.remote = True
        _restore(session, record)
        session.subscriptions.update(record.subscriptions)
        if record.ack:
            session.ack = AckState(record.batch, record.position)
        return session

    async def take_over(
        self,
        client_id: str,
        message: Message | None = None,
        request: RequestContext | None = None,
    ) -> ServerSession | None:
        """Makes this process serve a session of the deployment (from the process serving it,
        which lets go of it); None when there is no such session. A session bound to another
        browser than `request`'s stays where it is (ForeignBrowser).

        Examples:
            >>> import asyncio
            >>> from bayeux.core.engine import LocalEngine
            >>> class Deployment(LocalEngine):  # another process served the session
            ...     async def claim(self, client_id, acknowledged, browser=None):
            ...         return Claimed(SessionRecord(client_id, ["/news"], position=0), [])
            >>> server.engine = Deployment()
            >>> session = asyncio.run(server.take_over("ab" * 20))
            >>> server.sessions[session.id] is session, session.subscriptions
            (True, {'/news'})
        """
        if not CLIENT_ID.match(client_id):
            return None
        acknowledged = ext_of(message).get("ack") if message is not None else None
        if not isinstance(acknowledged, int) or isinstance(acknowledged, bool):
            acknowledged = None
        try:
            claimed = await self.engine.claim(
                client_id, acknowledged, self.browser_allowed(request)
            )
        except SessionStopped as stopped:
            # Disconnected by the server on another process: this connect is told to stop.
            self.stopped(client_id, stopped.seconds)
            return None
        served = self.sessions.get(client_id)  # two requests of one session at once
        if served is not None or claimed is None:
            return served
        return self._adopt(claimed, acknowledged)

    def _adopt(self, claimed: Claimed, acknowledged: int | None) -> ServerSession:
        record = claimed.record
        session = self.new_session(record.client_id)
        _restore(session, record)
        session.deadline = self.expiry(0, session)
        start = record.position
        if record.ack:
            if acknowledged is not None:
                start = max(start, record.batches.get(acknowledged, start))
            session.ack = AckState(record.batch, start)
        session.position = session.written = start
        if record.connected:
            session.connected_once()  # its first connect was answered by another process
        if record.address:
            # Counted against its client's address here too (taken in whatever that costs:
            # the client is already served).
            session.budget = self.budgets.of(record.address)
            self.budgets.opened(session.budget)
        self.sessions[session.id] = session
        if session.user is not None:
            self.users.add(session.user, session)  # its user's already: no presence change
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
                if self.channel_table.watched and self.tree.count(pattern) == 1:
                    self.channel_table.first_subscriber(pattern)
        for delivery in record.pending:
            self._enqueue(session, delivery)
        for entry in claimed.backlog:
            self._apply_to(session, entry)
        session.position = max(session.position, claimed.through)
        log.debug("session taken over", extra={"event": "session-moved-in", "session": session.tag})
        return session

    def expired_elsewhere(self, record: SessionRecord) -> None:
        """A session of a process that died, never taken over, expired: its removal listeners
        are told here (once for the deployment), with a view of it as its record had it.

        Examples:
            >>> @server.on_session_removed
            ... def removed(session, ended):
            ...     print(session.user, ended.value)
            >>> server.expired_elsewhere(SessionRecord("ab" * 20, [], position=0, user="alice"))
            alice expired
        """
        session = self.new_session(record.client_id)
        session.remote = True
        _restore(session, record)
        session.end(Ended.EXPIRED)
        self.hooks.removed(session, Ended.EXPIRED)

    def let_go(self, client_id: str) -> ServerSession | None:
        """Stops serving a session another process takes over: its held connect is answered
        (the client's next one goes there), nothing is queued or delivered here any more.

        Examples:
            >>> session = server.create_session()
            >>> server.subscribe(session, "/news")
            >>> server.let_go(session.id) is session, session.ended
            (True, <Ended.MOVED: 'moved'>)
            >>> server.publish("/news", "hi"), session.id in server.sessions
            (0, False)
        """
        session = self.sessions.pop(client_id, None)
        if session is None:
            return None
        if session.user is not None:
            self.users.discard(session.user, session)  # still the user's, elsewhere
        for pattern in session.subscriptions:
            self.tree.unsubscribe(pattern, session)
            if not self.tree.has(pattern) and self.channel_table.by_name:
                self.channel_table.last_subscriber_left(pattern)
        # Nothing of it is held here any more (the engine reads its state to hand it over).
        self.budgets.closed(session.budget, session.held_bytes())
        session.budget = UNBOUNDED
        log.debug("session moved out", extra={"event": "session-moved-out", "session": session.tag})
        session.end(Ended.MOVED)
        self.engine.removed(session, Ended.MOVED)  # the engine forgets what it kept of it
        return session


def _restore(session: ServerSession, record: SessionRecord) -> None:
    """What a session's record keeps of it beyond its delivery state: its own timing, the
    browser it is bound to, and its attributes."""
    session.timeout, session.interval, session.max_interval = record.timing
    session.restore_echo(record.echo)
    session.browser = record.browser or None
    session.user = record.user or None
    session.attributes.apply(record.attributes)
