"""The state every part of the server reads and the session table's operations: settings,
clocks, sessions, the subscription tree, hooks, counters, replay history, address budgets.

The server is layered in modules, each adding one concern to the one below it:
state (this) < fanout < publishing < meta < bridge < server (the facade and `handle`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import cast

from . import channel as ch
from .attributes import Changes
from .channels import ChannelHost, ChannelTable
from .context import RequestContext
from .decorators import Decorated, ServicesHost
from .engine import Engine, LocalEngine
from .ext import ExtensionHost, install_configured
from .hooks import Hooks
from .limits import UNBOUNDED, AddressBudgets, AddressWindow
from .message import Message
from .policy import SecurityPolicy
from .replay import ReplayHistory
from .session import ConnectHold, Ended, ServerSession, SessionHost, new_client_id
from .settings import Settings
from .stats import Stats
from .tasks import InOrder, TaskSet
from .threads import LoopOwner, on_loop, on_loop_async
from .tree import ChannelTree, subscription_cost
from .users import Users, check_user

log = logging.getLogger("bayeux.server")


@dataclass(slots=True)
class Outcome:
    """What handling one batch produced: replies in request order, and the batch's connect.

    Examples:
        >>> session = server.create_session()
        >>> subscribe = {"channel": "/meta/subscribe", "clientId": session.id,
        ...              "subscription": "/news"}
        >>> connect = {"channel": "/meta/connect", "clientId": session.id,
        ...            "connectionType": "long-polling"}
        >>> outcome = asyncio.run(server.handle([subscribe, connect]))
        >>> [reply["channel"] for reply in outcome.replies], outcome.connect.reply["channel"]
        (['/meta/subscribe'], '/meta/connect')

    Added in version 0.1.0."""

    replies: list[Message]
    connect: ConnectHold | None = None
    # The batch's broadcasts on their way to the engine's log: the replies wait for them.
    appends: list[asyncio.Future[bool]] = field(default_factory=list)
    # Replies that asynchronous outgoing extensions are still deciding on (kept in `replies`,
    # in order, until one drops them).
    deciding: list[tuple[Message, Awaitable[bool]]] = field(default_factory=list)


class ServerState:
    """What the server knows, and the operations on its session table."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        policy: SecurityPolicy | None = None,
    ) -> None:
        self.settings = settings = settings or Settings()
        # The loop the server belongs to: calls from other threads cross into it
        # (core/threads.py).
        self.loop_owner = LoopOwner()
        self.channels = ch.ChannelLimits(settings.max_channel_length, settings.max_channel_segments)
        self.clock = clock
        self.wall_clock = wall_clock
        self.sessions: dict[str, ServerSession] = {}
        self.tree: ChannelTree[ServerSession] = ChannelTree()
        self.shutting_down = False
        self.stats = Stats()
        # The channel objects (core/channels.py). The server facade is the host they publish
        # through: this class alone does not publish, the facade composed on it does.
        self.channel_table = ChannelTable(cast(ChannelHost, self), lambda: self.hooks.installed())
        self.hooks = Hooks(policy or SecurityPolicy(), self.stats, self.channel_table)
        # What the decorators registered (core/decorators.py); the facade is its host.
        self.decorated = Decorated(cast(ServicesHost, self))
        # While a batch is open (BayeuxServer.batch): the sessions whose wakeups wait for it
        # to close; None while none is open (the one thing the fan-out reads of batches).
        self.batched: set[ServerSession] | None = None
        # Open server-wide batches, and open batches per session.
        self.batch_depth = 0
        self.session_batches: dict[ServerSession, int] = {}
        # The users of this process's sessions (core/users.py).
        self.users = Users()
        # Service calls still running, and messages on their way to sessions served elsewhere.
        self._tasks = TaskSet("a service call or forwarded message", log)
        # Sessions the server told to stop (BayeuxServer.disconnect), by clientId, until when
        # their client's next connect is told so too; as many as sessions may exist.
        self._stopped: dict[str, float] = {}
        # What the processes of a deployment share (core/engine.py); a process alone has the
        # LocalEngine, which shares nothing.
        self.engine: Engine = LocalEngine()
        self._handshakes = AddressWindow(
            settings.max_handshakes_per_address, settings.handshake_window_seconds
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
                retention_seconds=settings.replay_retention_seconds,
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
        # The latest write of session attributes to the engine (they are written in order).
        self.attribute_write: asyncio.Future[bool] | None = None
        # The server side's publishes waiting for asynchronous outgoing extensions, in order.
        self._publish_order = InOrder(self._tasks, settings.max_extension_backlog)
        # The extensions the settings turn on (core/ext/), ahead of the application's.
        install_configured(cast(ExtensionHost, self))

    def browser_allowed(self, request: RequestContext | None) -> str | None:
        """Whose sessions `request` may use: None for any (no HTTP request, or no browser
        cookie while cookieless clients are trusted), else those bound to no browser or to
        the one it returns ("": to none).

        Examples:
            >>> server.browser_allowed(None) is None  # no HTTP request: any session
            True
            >>> request.browser_sent, server.browser_allowed(request) is None  # trusted
            (False, True)
            >>> strict = BayeuxServer(Settings(trust_cookieless_clients=False))
            >>> strict.browser_allowed(request)  # only sessions bound to no browser
            ''
        """
        if request is None:
            return None
        if not request.browser_sent:
            return None if self.settings.trust_cookieless_clients else ""
        return request.browser

    def use_format(self, name: str, change: int) -> None:
        """A transport opened (+1) or closed (-1) a connection reading format `name`.

        Examples:
            >>> import datetime
            >>> server.publish("/news", {"on": datetime.date(2025, 1, 1)})  # JSON has it
            0
            >>> server.use_format("msgpack", +1)  # a WebSocket reading MessagePack opened
            >>> server.publish("/news", {"on": datetime.date(2025, 1, 1)})
            Traceback (most recent call last):
            ...
            bayeux.core.fanout.NotRepresentable: /news: can not serialize 'datetime.date' object
        """
        count = self._formats.get(name, 0) + change
        if count > 0:
            self._formats[name] = count
        else:
            self._formats.pop(name, None)

    def expiry(self, after: float = 0.0, session: ServerSession | None = None) -> float:
        """When a session expires unless something renews it: maxInterval (the session's
        own, if it has one) after the next `after` seconds (a held connect's timeout, the
        interval advised to its client).

        Examples:
            >>> from bayeux.testing import ManualClock
            >>> server = BayeuxServer(Settings(max_interval=10000), clock=ManualClock(now=0.0))
            >>> server.expiry(30.0)  # a connect held 30 s, then maxInterval
            40.0
            >>> session = server.create_session()
            >>> server.set_timing(session, max_interval=60000)
            >>> server.expiry(0.0, session)
            60.0
        """
        own = session.max_interval if session is not None else None
        max_interval = self.settings.max_interval_seconds if own is None else own / 1000
        return self.clock() + after + max_interval

    def timing(self, session: ServerSession) -> tuple[int, int, int]:
        """The session's timeout, interval and maxInterval in ms: its own, else the server's.

        Examples:
            >>> session = server.create_session()
            >>> server.timing(session)
            (30000, 0, 10000)
            >>> server.set_timing(session, interval=5000)
            >>> server.timing(session)
            (30000, 5000, 10000)
        """
        s = self.settings
        return (
            s.timeout if session.timeout is None else session.timeout,
            s.interval if session.interval is None else session.interval,
            s.max_interval if session.max_interval is None else session.max_interval,
        )

    def stop_ms(self, session: ServerSession) -> int:
        """How long after a disconnect its client's next connect is still told to stop: as
        long as the session would have waited for it (interval plus maxInterval).

        Examples:
            >>> session = server.create_session()
            >>> server.stop_ms(session)
            10000
            >>> server.set_timing(session, interval=5000)
            >>> server.stop_ms(session)
            15000
        """
        _, interval, max_interval = self.timing(session)
        return interval + max_interval

    def stopped(self, client_id: str, seconds: float) -> None:
        """Tells the next connect of `client_id` within `seconds` to stop.

        Examples:
            >>> client_id = "ab" * 20  # a session that another process served
            >>> server.stopped(client_id, 10.0)
            >>> connect = {"channel": "/meta/connect", "clientId": client_id,
            ...            "connectionType": "long-polling"}
            >>> reply = asyncio.run(server.handle([connect])).replies[0]
            >>> reply["error"], reply["advice"]
            ('402::Disconnected by the server', {'reconnect': 'none', 'interval': 0})
        """
        if len(self._stopped) >= self.settings.max_sessions:
            del self._stopped[next(iter(self._stopped))]  # the oldest
        self._stopped[client_id] = self.clock() + seconds

    def new_session(self, client_id: str) -> ServerSession:
        """A session object (not yet served): its attributes bounded, and written to its
        record as they change.

        Examples:
            >>> session = server.new_session("ab" * 20)
            >>> session.id in server.sessions  # served once the caller adds it
            False
            >>> session.attributes.limit == server.settings.max_session_attribute_bytes
            True
        """
        session = ServerSession(client_id, self.expiry())
        # The facade completes the host protocol (deliver, batch: publishing.py).
        session.host = cast(SessionHost, self)
        attributes = session.attributes
        attributes.limit = self.settings.max_session_attribute_bytes
        attributes.owner = session  # a closure for each session cost more (benchmarks/memory.py)
        attributes.on_change = self._attributes_changed
        return session

    @on_loop
    def own_settings_changed(self, session: ServerSession) -> None:
        """`session`'s own settings changed (ServerSession.broadcast_to_publisher): with an
        engine, its record keeps them.

        Examples:
            >>> class Recording(LocalEngine):  # an engine keeping the sessions' records
            ...     def timing_changed(self, session):
            ...         print("record: broadcast_to_publisher =", session.broadcast_to_publisher)
            >>> server.engine = Recording()
            >>> session = server.create_session()
            >>> session.broadcast_to_publisher = False  # calls own_settings_changed
            record: broadcast_to_publisher = False
        """
        if self.sessions.get(session.id) is session and not session.local:
            self.engine.timing_changed(session)

    @on_loop
    def _attributes_changed(self, session: ServerSession, changes: Changes) -> None:
        if session.local:
            return
        written = self.engine.attributes_changed(session, changes)
        if written is not None:
            # Written in order: a batch's reply waits for the latest (see handle).
            self.attribute_write = written

    @on_loop
    def create_session(self) -> ServerSession:
        """A session made by the server itself, with no handshake and no policy check (tests,
        server-side code); session listeners are told. Like a client's, it expires unless a
        /meta/connect with its clientId comes within maxInterval. (A `LocalSession` is made
        by a handshake instead.)

        Examples:
            >>> from bayeux.testing import ManualClock
            >>> clock = ManualClock()
            >>> server = BayeuxServer(Settings(max_interval=10000), clock=clock)
            >>> session = server.create_session()
            >>> server.sessions[session.id] is session
            True
            >>> clock.now += 11  # no connect came
            >>> server.sweep() == [session]
            True
        """
        session = self.new_session(new_client_id())
        self._add_session(session)
        return session

    def _add_session(self, session: ServerSession) -> None:
        self.sessions[session.id] = session
        log.debug("session added", extra={"event": "session-added", "session": session.tag})
        self.hooks.added(session)

    @on_loop
    def remove_session(self, session: ServerSession, reason: Ended = Ended.REMOVED) -> None:
        """Ends `session` at once: its subscriptions and queue go, session listeners are told
        `reason`, and its client's next request is answered 402 (it may handshake again;
        `disconnect(session)` tells it to stop instead).

        Examples:
            >>> session = server.create_session()
            >>> server.subscribe(session, "/news")
            >>> server.remove_session(session)
            >>> session.ended, session.subscriptions, server.publish("/news", "hi")
            (<Ended.REMOVED: 'removed'>, set(), 0)
            >>> connect = {"channel": "/meta/connect", "clientId": session.id,
            ...            "connectionType": "long-polling"}
            >>> reply = asyncio.run(server.handle([connect])).replies[0]
            >>> reply["error"], reply["advice"]["reconnect"]
            ('402::Unknown client', 'handshake')
        """
        if self.sessions.pop(session.id, None) is None:
            return
        for pattern in list(session.subscriptions):
            self._unsubscribe_here(session, pattern)  # the engine forgets the whole record
        session.clear()
        self.budgets.closed(session.budget, session.held_bytes())
        session.budget = UNBOUNDED
        log.debug(
            "session removed: %s",
            reason.value,
            extra={"event": "session-removed", "session": session.tag, "reason": reason.value},
        )
        session.end(reason)
        if session.user is not None and self.users.discard(session.user, session):
            if not self.engine.shared:
                self.presence_changed(session.user, False)
            # With an engine, it tells presence_changed (removed() below ends the record).
        if not session.local:
            self.engine.removed(session, reason)
        self.hooks.removed(session, reason)

    @on_loop_async
    async def associate(self, user: str, session: ServerSession) -> None:
        """Makes `session` one of `user`'s (an application's own id: a login name, an
        account number), as CometD's Seti does; a policy may call it from can_handshake.
        A session has one user: associating it again moves it.

        A user has at most `max_sessions_per_user` sessions in the deployment: past it the
        session is refused, not another one ended.

        Raises:
            ValueError: `user` is not 1 to 256 printable characters.
            TooManySessions: `user` already has `max_sessions_per_user` sessions (a ValueError);
                nothing changed, the session keeps the user it had. From a policy's
                `can_handshake`, the handshake is refused with
                `403::Too many sessions for this user`.

        Examples:
            >>> session = server.create_session()
            >>> asyncio.run(server.associate("alice", session))
            >>> session.user, asyncio.run(server.online_users())
            ('alice', ['alice'])
        """
        check_user(user)
        if session.user == user:
            return
        limit = self.settings.max_sessions_per_user
        if not self.engine.shared:
            # Checked and recorded with no await between: concurrent calls cannot both pass.
            self.users.check_room(user, limit)
            previous, session.user = session.user, user
            first_here = self.users.add(user, session)
            if previous is not None and self.users.discard(previous, session):
                self.presence_changed(previous, False)
            if first_here:
                self.presence_changed(user, True)
            return
        # The engine counts the deployment's sessions and records this one, or refuses, in one
        # step; only then does the session leave its previous user.
        came_online = await self.engine.user_joined(session, user, limit)
        if session.user is not None:
            await self.dissociate(session)
        session.user = user
        if not session.remote:  # a view (served elsewhere) counts there, not here
            self.users.add(user, session)
        if came_online:
            self.presence_changed(user, True)

    @on_loop_async
    async def dissociate(self, session: ServerSession) -> None:
        """Makes `session` no user's (it goes on).

        Examples:
            >>> session = server.create_session()
            >>> asyncio.run(server.associate("alice", session))
            >>> asyncio.run(server.dissociate(session))
            >>> session.user, asyncio.run(server.online_users()), session.ended
            (None, [], None)
        """
        user, session.user = session.user, None
        if user is None:
            return
        last_here = self.users.discard(user, session)
        if not self.engine.shared:
            if last_here:
                self.presence_changed(user, False)
            return
        if await self.engine.user_left(session.id, user):
            self.presence_changed(user, False)

    def presence_changed(self, user: str, online: bool) -> None:
        """Tells the presence listeners that `user` came online or went offline (once per
        deployment: the engine decides when there is one).

        Examples:
            >>> @server.on_presence
            ... def presence(user, online):
            ...     print(user, "is", "online" if online else "offline")
            >>> server.presence_changed("alice", True)
            alice is online
        """
        self.hooks.presence_changed(user, online)

    @on_loop
    def subscribe(self, session: ServerSession, pattern: str) -> None:
        """Subscribes `session` to `pattern` from the server side, without asking the policy
        (the subscription listeners are told); with an engine, the session's record too.

        Examples:
            >>> session = server.create_session()
            >>> server.subscribe(session, "/chat/*")
            >>> session.subscriptions, server.publish("/chat/lobby", "hi")
            ({'/chat/*'}, 1)
        """
        if self._subscribe_here(session, pattern):
            self._record_subscription(session, pattern, True)

    @on_loop
    def unsubscribe(self, session: ServerSession, pattern: str) -> None:
        """Unsubscribes `session` from `pattern` from the server side (the subscription
        listeners are told); with an engine, the session's record too.

        Examples:
            >>> session = server.create_session()
            >>> server.subscribe(session, "/chat/*")
            >>> server.unsubscribe(session, "/chat/*")
            >>> session.subscriptions, server.publish("/chat/lobby", "hi")
            (set(), 0)
        """
        if self._unsubscribe_here(session, pattern):
            self._record_subscription(session, pattern, False)

    def _subscribe_here(self, session: ServerSession, pattern: str) -> bool:
        """Subscribes `session` in this process; False when it already was."""
        tree = self.tree
        if not tree.subscribe(pattern, session):
            return False
        session.subscriptions.add(pattern)
        session.subscribed(subscription_cost(pattern))
        if self.channel_table.watched and tree.count(pattern) == 1:
            self.channel_table.first_subscriber(pattern)
        self.hooks.subscription_changed(session, pattern, True)
        return True

    def _unsubscribe_here(self, session: ServerSession, pattern: str) -> bool:
        """Unsubscribes `session` in this process; False when it was not."""
        tree = self.tree
        if not tree.unsubscribe(pattern, session):
            return False
        session.subscriptions.discard(pattern)
        session.subscribed(-subscription_cost(pattern))
        if not tree.has(pattern) and self.channel_table.by_name:
            self.channel_table.last_subscriber_left(pattern)
        self.hooks.subscription_changed(session, pattern, False)
        return True

    def _record_subscription(self, session: ServerSession, pattern: str, subscribed: bool) -> None:
        """Writes a server-side subscription change to the session's record (and the log), so
        that the deployment counts it and a process taking the session over has it. Written
        in the background: the change is made here already; a failure is logged and counted
        (the record is written again when the engine is back)."""
        if not self.engine.shared or session.local or session.remote:
            return
        self._tasks.spawn(
            self.engine.subscriptions_changed(session, [pattern], subscribed, {}),
            self._recorded,
        )

    def _recorded(self, task: asyncio.Future[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.warning("a server-side subscription change was not recorded: %s", task.exception())
            self.stats.errors["engine"] += 1

    @on_loop
    def sweep(self) -> list[ServerSession]:
        """Removes the sessions whose expiry time has passed; returns them. A started
        `Endpoint` calls it every `sweep_period` ms.

        Examples:
            >>> from bayeux.testing import ManualClock
            >>> clock = ManualClock()
            >>> server = BayeuxServer(Settings(max_interval=10000), clock=clock)
            >>> session = server.create_session()
            >>> server.sweep()
            []
            >>> clock.now += 11  # no connect within maxInterval
            >>> server.sweep() == [session], session.ended
            (True, <Ended.EXPIRED: 'expired'>)
        """
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
        for client_id, until in list(self._stopped.items()):
            if until <= now:
                del self._stopped[client_id]
        return expired

    @on_loop
    def shutdown(self) -> None:
        """Stops accepting handshakes and wakes every held connect, so transports answer them
        with advice to come back after `multi_session_interval`.

        Examples:
            >>> class Poll:  # what a transport attaches to a session with a held connect
            ...     def wake(self):
            ...         print("woken")
            >>> server.create_session().attach(Poll())
            >>> server.shutdown()
            woken
            >>> handshake = {"channel": "/meta/handshake", "version": "1.0",
            ...              "supportedConnectionTypes": ["long-polling"]}
            >>> reply = asyncio.run(server.handle([handshake])).replies[0]
            >>> reply["error"], reply["advice"]
            ('503::Server shutting down', {'reconnect': 'handshake', 'interval': 2000})
        """
        self.shutting_down = True
        for session in list(self.sessions.values()):
            if session.waiter is not None:
                session.waiter.wake()

    def _session_of(self, message: Message) -> ServerSession | None:
        client_id = message.get("clientId")
        return self.sessions.get(client_id) if isinstance(client_id, str) else None
