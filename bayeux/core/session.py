"""Server-side sessions: identity, subscriptions, the queue of messages waiting for delivery, and
the connection (if any) currently waiting for them."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Awaitable, Callable, Hashable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from enum import Enum
from operator import attrgetter
from typing import Any, Protocol

from .ack import AckState
from .attributes import SessionAttributes
from .context import RequestContext
from .flow import Conflation, Overflow, SessionFlow
from .limits import UNBOUNDED, AddressBudget
from .message import Delivery, Message
from .tasks import Decision, InOrder
from .timesync import TimesyncRequest


class SessionExtension(Protocol):
    """What a session's own extension does (bayeux.Extension is a base class for them):
    sees, and may change, its session's messages; returns False to drop one, or an awaitable
    of that."""

    def incoming(self, session: ServerSession | None, message: Message) -> Decision: ...

    def outgoing(self, session: ServerSession | None, message: Message) -> Decision: ...


class Wakeup(Enum):
    """Why a held connect is answered. What its reply carries follows from it alone
    (`finish_connect`), whichever transport held it."""

    MESSAGES = "messages"  # messages were queued for the session (or it is answered at once)
    TIMEOUT = "timeout"  # the hold's time is up
    CLOSED = "closed"  # the session ended
    DISPLACED = "displaced"  # another connection of the session took over: it gets the queue
    REPLACED = "replaced"  # a newer connect on the same connection: it gets the queue
    GONE = "gone"  # the client closed its connection: the queue waits for the next connect
    STREAMED = "streamed"  # an EventSource stream carries the session's messages
    BROWSER_BUSY = "browser-busy"  # another long-poll of the browser is held: poll instead


QueuedListener = Callable[["ServerSession", Delivery], Any]
QueueFullListener = Callable[["ServerSession", Delivery], Overflow | None]
DequeueListener = Callable[["ServerSession", list[Delivery]], list[Delivery] | None]
SessionEventListener = Callable[["ServerSession"], Any]
RemovedListener = Callable[["ServerSession", "Ended"], Any]


class SessionHost(Protocol):
    """What a session asks of its server (BayeuxServer)."""

    def deliver(
        self,
        session: ServerSession,
        channel: str,
        data: Any,
        *,
        sender: ServerSession | None = None,
    ) -> None: ...

    def batch(self, session: ServerSession | None = None) -> AbstractContextManager[None]: ...

    def own_settings_changed(self, session: ServerSession) -> None: ...


class Waiter(Protocol):
    """A transport-side connection attached to a session: a held long-poll, an open WebSocket.

    The core calls these from its own methods; implementations must only schedule work (resolve a
    future, queue a write), never re-enter the core synchronously.
    """

    # Whether it carries the session's deliveries as they come (an EventSource stream), not
    # in connect replies: a connect then neither displaces it nor waits.
    is_stream: bool

    def wake(self) -> None:
        """Messages were queued for the session."""

    def displace(self) -> None:
        """Another connection of the same session took over."""

    def close(self) -> None:
        """The session ended (disconnect, expiry, server shutdown)."""

    def wake_after(self, seconds: float) -> None:
        """Messages were queued that may wait up to `seconds` (lazy messages)."""


class SessionState(Enum):
    """Where a session is in its life. It only moves forward: HANDSHAKEN, then CONNECTED at
    its first /meta/connect (answered at once), then ENDED (`ServerSession.end`, with the
    reason in `ended`); a session may also end before it ever connects."""

    HANDSHAKEN = "handshaken"
    CONNECTED = "connected"
    ENDED = "ended"


class Ended(Enum):
    """Why a session ended.

    Examples:
        >>> session = server.create_session()
        >>> server.remove_session(session)
        >>> session.ended, Ended("kicked")
        (<Ended.REMOVED: 'removed'>, <Ended.KICKED: 'kicked'>)

    Added in version 0.1.0."""

    DISCONNECTED = "disconnected"  # the client sent /meta/disconnect
    EXPIRED = "expired"  # no /meta/connect within maxInterval
    REMOVED = "removed"  # the server application removed it
    QUEUE_FULL = "queue-full"  # its queue reached max_queue under the 'disconnect' policy
    MOVED = "moved"  # another process of the deployment serves it now (core/engine.py)
    KICKED = "kicked"  # the server told its client to stop (BayeuxServer.disconnect)


_SHARE = attrgetter("share")


def new_client_id() -> str:
    # 160 random bits, hex: unguessable, and alphanumeric as the Bayeux grammar wants clientIds.
    return secrets.token_hex(20)


@dataclass(slots=True)
class ConnectHold:
    """A successful `/meta/connect` whose reply may wait up to `timeout` seconds for messages.
    `BayeuxServer.handle` returns it as `Outcome.connect`; the transport answers it with
    `BayeuxServer.finish_connect` when messages come or the time is up.

    Examples:
        >>> import asyncio
        >>> session = server.create_session()
        >>> def connect():
        ...     return {"channel": "/meta/connect", "clientId": session.id,
        ...             "connectionType": "long-polling"}
        >>> asyncio.run(server.handle([connect()])).connect.timeout  # the first: answered at once
        0.0
        >>> hold = asyncio.run(server.handle([connect()])).connect
        >>> hold.session is session, hold.timeout, hold.reply["successful"]
        (True, 30.0, True)

    Added in version 0.1.0."""

    session: ServerSession
    reply: Message
    timeout: float
    timesync: TimesyncRequest | None = None
    # Outgoing extensions still deciding on `reply` (asynchronous ones): the transport awaits
    # it before writing the reply (see `reply_ready`).
    pending: Awaitable[bool] | None = None


async def reply_ready(hold: ConnectHold) -> None:
    """Waits for asynchronous outgoing extensions still working on a finished connect's reply
    (a connect reply is never dropped: they may only change it)."""
    pending, hold.pending = hold.pending, None
    if pending is not None:
        await pending


class ServerSession:
    """One client's state on the server. Created by a successful handshake.

    Examples:
        >>> session = server.create_session()  # a client's is made by its handshake
        >>> server.subscribe(session, "/chat/*")
        >>> session.attributes["theme"] = "dark"
        >>> session.subscriptions, session.connected, session.ended
        ({'/chat/*'}, False, None)

    Added in version 0.1.0."""

    __slots__ = (
        "id",
        "_subscriptions",
        "queue",
        "waiter",
        "state",
        "_connected",
        "deadline",
        "connection_type",
        "attributes",
        "ended",
        "ack",
        "extensions",
        "lazy_pending",
        "local",
        "queue_bytes",
        "subscription_bytes",
        "queue_share",
        "pending_share",
        "budget",
        "held",
        "context",
        "browser",
        "timeout",
        "interval",
        "max_interval",
        "service_calls",
        "remote",
        "position",
        "written",
        "outgoing_order",
        "user",
        "_echo",
        "host",
        "flow",
    )

    def __init__(self, client_id: str, deadline: float) -> None:
        self.id = client_id
        # Made when first read: an empty set is 216 bytes, and idle clients subscribe to
        # nothing (benchmarks/memory.py).
        self._subscriptions: set[str] | None = None
        # A list, not a deque: an empty deque allocates a 64-slot block per session
        # (benchmarks/memory.py), and the common case drains the whole queue at once.
        self.queue: list[Delivery] = []
        self.waiter: Waiter | None = None
        # Moved only by connected_once() and end().
        self.state = SessionState.HANDSHAKEN
        # Whether it had its first connect: kept when it ends (a session moving to another
        # process hands this over; ENDED alone would not tell).
        self._connected = False
        # Monotonic time after which the session expires; None while a connect is held.
        self.deadline: float | None = deadline
        self.connection_type: str | None = None
        # Free for applications and extensions: JSON values that follow the session
        # (core/attributes.py).
        self.attributes = SessionAttributes()
        self.ended: Ended | None = None
        # The ack extension's batches, when the client negotiated it (see core/ack.py).
        self.ack: AckState | None = None
        # Extensions of this session only (see core/extension.py); a list once it has one.
        self.extensions: Sequence[SessionExtension] = ()
        # True while lazy messages wait in the queue for a timer rather than waking the waiter.
        self.lazy_pending = False
        # True for sessions living inside the server (LocalSession), which never expire.
        self.local = False
        # Bytes of the deliveries in `queue` (see Delivery.size), bounded by max_queue_bytes.
        self.queue_bytes = 0
        # Memory its subscriptions are charged (core/tree.py), bounded by
        # max_subscription_bytes.
        self.subscription_bytes = 0
        # What the sessions of its client's address hold together (core/limits.py): its
        # subscriptions, and its deliveries' shares (Delivery.share) in the queue and in the
        # unacknowledged batches; every change is counted there too.
        self.budget: AddressBudget = UNBOUNDED
        self.queue_share = 0
        self.pending_share = 0
        # The connect being held for this session, if any. Only finishing this one restarts
        # the expiry clock: a displaced older one must not.
        self.held: ConnectHold | None = None
        # The HTTP request that last reached it (core/context.py): the WebSocket upgrade, or
        # the latest long-poll; None for sessions made by the server itself.
        self.context: RequestContext | None = None
        # The browser that made it (its browser cookie), when it was made over HTTP by one: a
        # request carrying another browser's cookie may not use it.
        self.browser: str | None = None
        # This session's own timing, in ms, as CometD's ServerSession has it (a mobile client,
        # a dashboard); None: the server's setting. Set with BayeuxServer.set_timing.
        self.timeout: int | None = None
        self.interval: int | None = None
        self.max_interval: int | None = None
        # Asynchronous service calls of this session still running (bounded).
        self.service_calls = 0
        # With an engine (core/engine.py): True for a view of a session another process
        # serves, made for one request; `position` is the last log entry queued here and
        # `written` the last one handed to a transport.
        self.remote = False
        self.position = 0
        self.written = 0
        # Made once an asynchronous outgoing extension first kept a message of this session
        # waiting: its later messages wait behind it, so they keep their order.
        self.outgoing_order: InOrder | None = None
        # The application's user behind it (BayeuxServer.associate), if any.
        self.user: str | None = None
        # Whether its own publishes reach it (broadcast_to_publisher); None: the server's.
        self._echo: bool | None = None
        # The server it belongs to, for `deliver` and `batch`; None for a detached view.
        self.host: SessionHost | None = None
        # Its own listeners and conflation index (core/flow.py), made when first needed.
        self.flow: SessionFlow[ServerSession, Ended] | None = None

    @property
    def subscriptions(self) -> set[str]:
        """The channels and patterns it subscribes to (made when first read: an idle session
        that subscribes to nothing keeps no set; benchmarks/memory.py).

        Examples:
            >>> session = server.create_session()
            >>> server.subscribe(session, "/news")
            >>> sorted(session.subscriptions)
            ['/news']

        Added in version 0.3.0."""
        subscriptions = self._subscriptions
        if subscriptions is None:
            subscriptions = self._subscriptions = set()
        return subscriptions

    @property
    def connect_delivery_only(self) -> bool:
        """Whether messages may leave only with /meta/connect replies (the ack extension
        numbers those replies, so nothing may bypass them).

        Examples:
            >>> import asyncio
            >>> handshake = {"channel": "/meta/handshake", "version": "1.0",
            ...              "supportedConnectionTypes": ["long-polling"], "ext": {"ack": True}}
            >>> reply = asyncio.run(server.handle([handshake])).replies[0]
            >>> reply["ext"], server.sessions[reply["clientId"]].connect_delivery_only
            ({'ack': True}, True)
            >>> server.create_session().connect_delivery_only
            False
        """
        return self.ack is not None

    def add_extension(self, extension: SessionExtension) -> None:
        """Runs `extension` on this session's messages only (after the server's extensions on
        incoming messages, before them on outgoing ones).

        Examples:
            >>> class Private(Extension):
            ...     def outgoing(self, session, message):
            ...         message.setdefault("ext", {})["for"] = "you"
            ...         return True
            >>> session = server.create_session()
            >>> session.add_extension(Private())
            >>> session.deliver("/alerts", "hi")
            >>> session.queue[0].message
            {'channel': '/alerts', 'data': 'hi', 'ext': {'for': 'you'}}
        """
        self.extensions = [*self.extensions, extension]

    def queued_bytes(self) -> int:
        """Bytes this session holds for its client: its queue and unacknowledged batches.

        Examples:
            >>> session = server.create_session()
            >>> session.queued_bytes()
            0
            >>> session.deliver("/alerts", "hi")
            >>> session.queued_bytes() == session.queue[0].size
            True

        Added in version 0.2.0."""
        return self.queue_bytes + (self.ack.pending_bytes if self.ack is not None else 0)

    def held_bytes(self) -> int:
        """Everything its address's budget counts for it beyond its overhead.

        Examples:
            >>> session = server.create_session()
            >>> server.subscribe(session, "/chat/lobby")
            >>> session.deliver("/alerts", "hi")
            >>> session.held_bytes() == session.subscription_bytes + session.queued_bytes()
            True

        Added in version 0.3.0."""
        return self.queue_share + self.pending_share + self.subscription_bytes

    def subscribed(self, cost: int) -> None:
        """Counts a subscription's cost (negative when one ends).

        Examples:
            >>> session = server.create_session()
            >>> server.subscribe(session, "/chat/lobby")  # the server counts it here
            >>> cost = session.subscription_bytes
            >>> server.unsubscribe(session, "/chat/lobby")
            >>> cost > 0, session.subscription_bytes
            (True, 0)

        Added in version 0.3.0."""
        self.subscription_bytes += cost
        self.budget.room -= cost

    def record_batch(self, deliveries: list[Delivery]) -> int:
        """With the ack extension: numbers the batch going out now and keeps it until the
        client acknowledges it (it stays counted, as it was in the queue).

        Examples:
            >>> session = server.create_session()
            >>> session.ack = AckState()  # what a handshake asking for the ack extension does
            >>> session.deliver("/alerts", "hi")
            >>> session.record_batch(session.drain())  # the number its connect reply carries
            1
            >>> session.queued_bytes() > 0  # kept until the client acknowledges it
            True

        Added in version 0.3.0."""
        assert self.ack is not None
        share = sum(d.share for d in deliveries)
        self.pending_share += share
        self.budget.room -= share
        return self.ack.record(deliveries)

    def acknowledge(self, batch: int) -> int:
        """With the ack extension: the client has every batch up to `batch`; later ones go back
        to the front of the queue. Returns how many messages were queued again.

        Examples:
            >>> session = server.create_session()
            >>> session.ack = AckState()  # what a handshake asking for the ack extension does
            >>> session.deliver("/alerts", "hi")
            >>> session.record_batch(session.drain())
            1
            >>> session.acknowledge(0)  # its client did not get batch 1: it goes again
            1
            >>> [delivery.message["data"] for delivery in session.queue]
            ['hi']
        """
        assert self.ack is not None
        self.budget.room += self.pending_share
        self.pending_share = 0
        resend = self.ack.acknowledge(batch)
        self.requeue(resend)
        return len(resend)

    def deliver(self, channel: str, data: Any, *, sender: ServerSession | None = None) -> None:
        """Queues a message for this session only, whatever its subscriptions, as
        `BayeuxServer.deliver` does; from `sender` (when it is this session, a broadcast
        channel's message is dropped unless its broadcast-to-publisher allows it).

        Raises:
            ValueError: `channel` is not a valid channel name, or a meta channel.
            RuntimeError: the session belongs to no server.

        Examples:
            >>> session = server.create_session()
            >>> session.deliver("/alerts", {"text": "hello"})
            >>> [d.message["data"] for d in session.queue]
            [{'text': 'hello'}]

        Added in version 0.3.0."""
        if self.host is None:
            raise RuntimeError("this session belongs to no server")
        self.host.deliver(self, channel, data, sender=sender)

    def batch(self) -> AbstractContextManager[None]:
        """A context manager: the messages queued for this session while it is open leave
        together when it closes (one reply, one frame), however long it stays open.

        Examples:
            >>> session = server.create_session()
            >>> with session.batch():
            ...     session.deliver("/a", 1)
            ...     session.deliver("/b", 2)
            >>> len(session.queue)
            2

        Added in version 0.3.0."""
        if self.host is None:
            raise RuntimeError("this session belongs to no server")
        return self.host.batch(self)

    @property
    def broadcast_to_publisher(self) -> bool | None:
        """Whether this session's own publishes reach it when it subscribes to their channel;
        None (the default) for the server's `--broadcast-to-publisher`. A message echoes only
        when its channel allows it too (CometD's rule). With an engine it is kept in the
        session's record: the process serving the session decides, wherever it moves; set
        it where the session is served (a session-added listener, a policy's
        `can_handshake`).

        Examples:
            >>> session = server.create_session()
            >>> session.broadcast_to_publisher = False
            >>> server.echoes(session, "/chat/lobby")
            False

        Added in version 0.3.0."""
        return self._echo

    @broadcast_to_publisher.setter
    def broadcast_to_publisher(self, value: bool | None) -> None:
        self._echo = None if value is None else bool(value)
        if self.host is not None:
            self.host.own_settings_changed(self)

    def restore_echo(self, value: bool | None) -> None:
        """Its broadcast-to-publisher as its record kept it (taken over from another
        process): set without writing the record again.

        Examples:
            >>> session = server.create_session()
            >>> session.restore_echo(False)
            >>> session.broadcast_to_publisher
            False
        """
        self._echo = value

    def _flow(self) -> SessionFlow[ServerSession, Ended]:
        flow = self.flow
        if flow is None:
            flow = self.flow = SessionFlow()
        return flow

    def on_queued(self, listener: QueuedListener) -> QueuedListener:
        """Calls `listener(session, delivery)` before each message is queued for this session
        (`delivery.channel`, `delivery.message`); returning False drops it. Synchronous: it
        runs inside every broadcast that reaches the session (CometD's `QueueListener`).
        Returns `listener`.

        Examples:
            >>> session = server.create_session()
            >>> @session.on_queued
            ... def no_debug(session, delivery):
            ...     return not delivery.channel.startswith("/debug/")
            >>> session.deliver("/debug/x", 1)
            >>> session.deliver("/news", 2)
            >>> [d.channel for d in session.queue]
            ['/news']

        Added in version 0.3.0."""
        self._flow().queued.append(listener)
        return listener

    def on_queue_full(self, listener: QueueFullListener) -> QueueFullListener:
        """Calls `listener(session, delivery)` when `delivery` would pass the session's queue
        bounds (CometD's `MaxQueueListener`). It returns `Overflow.QUEUE` after making room
        (`drop_oldest()`, `replace()`), `Overflow.DROP` to drop `delivery`, or
        `Overflow.POLICY` (or None) for the server's `--queue-full-policy`. Synchronous.
        Returns `listener`.

        Examples:
            >>> from bayeux import Overflow
            >>> session = server.create_session()
            >>> @session.on_queue_full
            ... def keep_alerts(session, delivery):
            ...     if delivery.channel == "/alerts":
            ...         session.drop_oldest()
            ...         return Overflow.QUEUE
            ...     return Overflow.DROP

        Added in version 0.3.0."""
        self._flow().full.append(listener)
        return listener

    def on_dequeue(self, listener: DequeueListener) -> DequeueListener:
        """Calls `listener(session, deliveries)` with each batch about to be sent to the client
        (a connect reply, a WebSocket frame); it returns the deliveries to send (some of them,
        in any order: conflate, drop) or None to send them all (CometD's `DeQueueListener`).
        What it leaves out is gone, and still counts as handed out (the ack extension numbers
        what is sent; with `--redis` the session's log position moves past it). Synchronous.
        Returns `listener`.

        Examples:
            >>> session = server.create_session()
            >>> @session.on_dequeue
            ... def latest_only(session, deliveries):
            ...     latest = {d.channel: d for d in deliveries}
            ...     return list(latest.values())
            >>> for price in (1, 2, 3):
            ...     session.deliver("/price", price)
            >>> [d.message["data"] for d in session.drain()]
            [3]

        Added in version 0.3.0."""
        self._flow().dequeue.append(listener)
        return listener

    def on_held(self, listener: SessionEventListener) -> SessionEventListener:
        """Calls `listener(session)` when a /meta/connect of this session is held (CometD's
        `HeartBeatListener`); it may be a coroutine function. Returns `listener`.

        Examples:
            >>> session = server.create_session()
            >>> _ = session.on_held(lambda session: print("held"))

        Added in version 0.3.0."""
        self._flow().held.append(listener)
        return listener

    def on_released(self, listener: SessionEventListener) -> SessionEventListener:
        """Calls `listener(session)` when the held /meta/connect of this session is answered;
        it may be a coroutine function. Returns `listener`.

        Examples:
            >>> session = server.create_session()
            >>> _ = session.on_released(lambda session: print("released"))

        Added in version 0.3.0."""
        self._flow().released.append(listener)
        return listener

    def on_removed(self, listener: RemovedListener) -> RemovedListener:
        """Calls `listener(session, reason)` when this session ends here (`reason` is an
        `Ended`: disconnected, expired, removed, kicked, queue-full, or moved to another
        process); it may be a coroutine function. Returns `listener`.

        Examples:
            >>> session = server.create_session()
            >>> _ = session.on_removed(lambda session, reason: print("ended:", reason.value))
            >>> server.remove_session(session)
            ended: removed

        Added in version 0.3.0."""
        self._flow().removed.append(listener)
        return listener

    def replace(self, old: Delivery, new: Delivery) -> bool:
        """Puts `new` in the place of the queued `old` (a queue-full listener merging a
        message into a queued one); False when `old` is not queued.

        Examples:
            >>> session = server.create_session()
            >>> session.deliver("/price", 1)
            >>> old = session.queue[0]
            >>> session.replace(old, Delivery({"channel": "/price", "data": 2}))
            True
            >>> [delivery.message["data"] for delivery in session.queue], session.replace(old, old)
            ([2], False)

        Added in version 0.3.0."""
        try:
            at = self.queue.index(old)
        except ValueError:
            return False
        self._swap(at, new)
        return True

    def _swap(self, at: int, new: Delivery) -> None:
        old = self.queue[at]
        self.queue[at] = new
        self.queue_bytes += new.size - old.size
        self.queue_share += new.share - old.share
        self.budget.room -= new.share - old.share

    def conflate(self, backlog: int, after: float, now: float, *, full: bool = False) -> int:
        """Conflation, before a message of a conflated channel is queued: when the queue holds
        at least `backlog` messages, and twice as many as it kept at its last conflation, and
        its oldest has waited `after` seconds by `now` (the message's `born`) since the reader
        last took from it, each conflation key (`Delivery.key`) keeps only its newest message,
        in its own place: the queue stays in the order it was published. A key that a
        channel's rule gave (`ServerChannel.conflate`) merges only under that rule's own
        `backlog` and `after`. With `full` (the queue is full), every key merges at once.
        Returns how many messages it merged away.

        A pass over the queue once it has doubled, not a search per message: a reader left
        behind costs about what one that keeps up does, so that the server stays ahead of the
        readers that keep up (benchmarks/conflation.py). Taking from the queue (`drain`,
        `take`) conflates what it takes the same way first.

        Examples:
            >>> def tick(symbol, price):
            ...     delivery = Delivery({"channel": "/price/" + symbol, "data": price})
            ...     delivery.key = symbol  # what a conflated channel gives its messages
            ...     return delivery
            >>> session = server.create_session()
            >>> for price in range(3):
            ...     for symbol in ("ACME", "INIT"):
            ...         session.enqueue(tick(symbol, price))
            >>> session.conflate(backlog=4, after=0, now=session.queue[-1].born)
            4
            >>> [(d.channel, d.message["data"]) for d in session.queue]
            [('/price/ACME', 2), ('/price/INIT', 2)]

        Added in version 0.3.0."""
        queue = self.queue
        if not queue:
            return 0
        flow = self.flow or self._flow()
        if not full:
            if len(queue) < backlog or len(queue) < 2 * flow.kept:
                return 0
            if flow.waited(queue[0].born, now) < after:
                return 0  # a burst in one turn of the loop, to a reader that keeps up
        return self._conflate_queue(flow, now, backlog, after, full)

    def _conflate_queue(
        self,
        flow: SessionFlow[ServerSession, Ended],
        now: float,
        backlog: int,
        after: float,
        full: bool = False,
    ) -> int:
        queue = self.queue
        length = len(queue)
        newest: dict[Hashable, Delivery] = {}
        keyed = 0
        for delivery in queue:
            key = delivery.key
            if key is not None:
                newest[key] = delivery
                keyed += 1
        if keyed == len(newest):
            flow.kept = length  # nothing superseded
            return 0
        waited = flow.waited(queue[0].born, now)
        # Whether each rule lets its keys merge now (None: keys given by hand, under the
        # conditions passed in); a rule's keys are (rule, key) pairs.
        lets: dict[Conflation | None, bool] = {}
        kept: list[Delivery] = []
        for delivery in queue:
            key = delivery.key
            if key is None or newest[key] is delivery:
                kept.append(delivery)
                continue
            rule = key[0] if type(key) is tuple and isinstance(key[0], Conflation) else None
            allowed = lets.get(rule)
            if allowed is None:
                if full:
                    allowed = True
                elif rule is None:
                    allowed = length >= backlog and waited >= after
                else:
                    allowed = length >= rule.backlog and waited >= rule.after
                lets[rule] = allowed
            if not allowed:
                kept.append(delivery)
        merged = length - len(kept)
        flow.kept = len(kept)
        if merged:
            self.queue = kept
            self.queue_bytes = sum(d.size for d in kept)
            share = sum(map(_SHARE, kept))
            self.budget.room += self.queue_share - share
            self.queue_share = share
        return merged

    def _reshaped(self) -> None:
        # The queue changed other than by appending: the oldest's wait starts again.
        flow = self.flow
        if flow is not None:
            flow.since = None
            flow.kept = 0

    def hold(self, delivery: Delivery) -> None:
        """Queues `delivery` without waking the waiting connection (an open batch wakes it
        when it closes).

        Examples:
            >>> class Poll:  # what a transport attaches to a session
            ...     def wake(self):
            ...         print("woken")
            >>> session = server.create_session()
            >>> session.attach(Poll())
            >>> session.hold(Delivery({"channel": "/alerts", "data": "hi"}))
            >>> len(session.queue)
            1
        """
        self.queue.append(delivery)
        self.queue_share += delivery.share
        self.queue_bytes += delivery.size
        self.budget.room -= delivery.share

    def enqueue(self, delivery: Delivery, lazy_seconds: float | None = None) -> None:
        """Queues `delivery` for the client and wakes its waiting connection (after
        `lazy_seconds` for a lazy channel); the core calls it.

        Examples:
            >>> class Poll:  # what a transport attaches to a session
            ...     def wake(self):
            ...         print("woken")
            >>> session = server.create_session()
            >>> session.attach(Poll())
            >>> session.enqueue(Delivery({"channel": "/alerts", "data": 1}))
            woken
            >>> session.enqueue(Delivery({"channel": "/alerts", "data": 2}))  # woken already
            >>> len(session.queue)
            2
        """
        was_empty = not self.queue or self.lazy_pending
        self.queue.append(delivery)
        # Kept as a running total: summing the shares of what is drained costs more (an
        # attrgetter is not specialized for slots; callgrind on a fan-out of 500 sessions).
        self.queue_share += delivery.share
        self.queue_bytes += delivery.size
        self.budget.room -= delivery.share
        if self.waiter is None:
            return
        if lazy_seconds is not None:
            if len(self.queue) == 1:  # the first message: nothing else has woken the waiter
                self.lazy_pending = True
                self.waiter.wake_after(lazy_seconds)
        elif was_empty:
            self.lazy_pending = False
            self.waiter.wake()

    def drain(self) -> list[Delivery]:
        """Everything queued, oldest first, leaving the queue empty.

        Examples:
            >>> session = server.create_session()
            >>> session.deliver("/alerts", 1)
            >>> session.deliver("/alerts", 2)
            >>> [delivery.message["data"] for delivery in session.drain()], session.queue
            ([1, 2], [])
        """
        flow = self.flow
        if flow is not None and flow.after is not None and len(self.queue) > 1:
            self._conflate_taken(flow, flow.after)
        return self._take_all()

    def _take_all(self) -> list[Delivery]:
        items = self.queue
        self.queue = []
        self.budget.room += self.queue_share
        self.queue_share = 0
        self.queue_bytes = 0
        self.lazy_pending = False
        self._handed_out(items)
        flow = self.flow
        if flow is not None:
            flow.since = None
            flow.kept = 0
            if flow.dequeue:
                return flow.dequeued(self, items)
        return items

    def _conflate_taken(self, flow: SessionFlow[ServerSession, Ended], after: float) -> None:
        # What a reader left behind takes is conflated first, so that it never receives a
        # key's older values (the queue is conflated only now and then as it grows).
        queue = self.queue
        now = queue[-1].born
        if flow.waited(queue[0].born, now) >= after:
            merged = self._conflate_queue(flow, now, flow.backlog or 0, after)
            if merged and flow.drops is not None:
                flow.drops["conflated"] += merged

    def _handed_out(self, items: list[Delivery]) -> None:
        # The newest log position among them (the queue is in log order; what did not come
        # from the log has none). Usually the last one: one comparison per batch.
        for delivery in reversed(items):
            if delivery.position:
                if delivery.position > self.written:
                    self.written = delivery.position
                return

    def take(self, max_bytes: int) -> list[Delivery]:
        """The oldest deliveries whose sizes add up to at most `max_bytes` (at least one),
        leaving the rest queued: what a transport puts in flight while the rest stays bounded
        here.

        Examples:
            >>> session = server.create_session()
            >>> for n in range(3):
            ...     session.deliver("/n", n)
            >>> taken = session.take(session.queue[0].size)  # room for one
            >>> [delivery.message["data"] for delivery in taken], len(session.queue)
            ([0], 2)

        Added in version 0.2.0."""
        if self.queue_bytes <= max_bytes:
            return self.drain()  # the common case: everything fits
        flow = self.flow
        if flow is not None and flow.after is not None:
            self._conflate_taken(flow, flow.after)
            if self.queue_bytes <= max_bytes:
                return self._take_all()
        queue = self.queue
        count = 1
        size = queue[0].size
        while count < len(queue) and size + queue[count].size <= max_bytes:
            size += queue[count].size
            count += 1
        taken = queue[:count]
        del queue[:count]
        self.queue_bytes -= size
        share = sum(map(_SHARE, taken))
        self.queue_share -= share
        self.budget.room += share
        if not queue:
            self.lazy_pending = False
        self._handed_out(taken)
        flow = self.flow
        if flow is not None:
            flow.kept = 0
            flow.since = None
            if flow.dequeue:
                return flow.dequeued(self, taken)
        return taken

    def sendable(self, max_bytes: int) -> list[Delivery]:
        """What a transport may send now outside a connect reply (a stream, a WebSocket
        flush): the oldest deliveries up to `max_bytes` (at least one), taken from the queue;
        none while messages may leave only in connect replies (the ack extension numbers
        those, so nothing may bypass them).

        Examples:
            >>> session = server.create_session()
            >>> session.deliver("/alerts", "hi")
            >>> [delivery.message["data"] for delivery in session.sendable(65536)]
            ['hi']
            >>> session.ack = AckState()  # the ack extension: in connect replies only
            >>> session.deliver("/alerts", "later")
            >>> session.sendable(65536), len(session.queue)
            ([], 1)

        Added in version 0.3.0."""
        if self.connect_delivery_only or not self.queue:
            return []
        return self.take(max_bytes)

    def drop_oldest(self) -> Delivery:
        """Removes and returns the oldest queued delivery (`--queue-full-policy drop-oldest`).

        Examples:
            >>> session = server.create_session()
            >>> session.deliver("/alerts", "old")
            >>> session.deliver("/alerts", "new")
            >>> session.drop_oldest().message["data"], len(session.queue)
            ('old', 1)

        Added in version 0.2.0."""
        delivery = self.queue.pop(0)
        self._reshaped()
        self.queue_bytes -= delivery.size
        self.queue_share -= delivery.share
        self.budget.room += delivery.share
        return delivery

    def requeue(self, deliveries: list[Delivery]) -> None:
        """Puts `deliveries` back at the front of the queue, in order.

        Examples:
            >>> session = server.create_session()
            >>> session.deliver("/alerts", 1)
            >>> unsent = session.drain()  # say its connection closed before they were written
            >>> session.deliver("/alerts", 2)
            >>> session.requeue(unsent)
            >>> [delivery.message["data"] for delivery in session.queue]
            [1, 2]

        Added in version 0.2.0."""
        self.queue[:0] = deliveries
        self._reshaped()
        self.queue_bytes += sum(d.size for d in deliveries)
        share = sum(map(_SHARE, deliveries))
        self.queue_share += share
        self.budget.room -= share

    def clear(self) -> None:
        """Drops everything queued and unacknowledged, giving its bytes back to the address's
        budget.

        Examples:
            >>> session = server.create_session()
            >>> session.deliver("/alerts", "hi")
            >>> session.clear()
            >>> session.queue, session.queued_bytes()
            ([], 0)

        Added in version 0.2.0."""
        self.budget.room += self.queue_share + self.pending_share
        self.queue.clear()
        self._reshaped()
        self.queue_share = self.pending_share = 0
        self.queue_bytes = 0
        if self.ack is not None:
            self.ack.forget()

    @property
    def connected(self) -> bool:
        """Whether it had its first /meta/connect (which is always answered at once).

        Examples:
            >>> import asyncio
            >>> session = server.create_session()
            >>> session.connected
            False
            >>> connect = {"channel": "/meta/connect", "clientId": session.id,
            ...            "connectionType": "long-polling"}
            >>> outcome = asyncio.run(server.handle([connect]))
            >>> session.connected
            True

        Added in version 0.3.0."""
        return self._connected

    def connected_once(self) -> bool:
        """A /meta/connect arrived: whether it is the session's first.

        Examples:
            >>> session = server.create_session()
            >>> session.connected_once(), session.connected_once()
            (True, False)

        Added in version 0.3.0."""
        if self.state is SessionState.HANDSHAKEN:
            self.state = SessionState.CONNECTED
            self._connected = True
            return True
        return False

    def end(self, reason: Ended) -> None:
        """The session ended here (or moved to another process): `ended` keeps why, so that
        its held connect can be answered accordingly; the connection waiting for it is told.

        Examples:
            >>> class Poll:  # what a transport attaches to a session
            ...     def close(self):
            ...         print("closed")
            >>> session = ServerSession("ab" * 20, 0.0)
            >>> session.attach(Poll())
            >>> session.end(Ended.MOVED)
            closed
            >>> session.ended, session.waiter
            (<Ended.MOVED: 'moved'>, None)

        Added in version 0.3.0."""
        self.state = SessionState.ENDED
        self.ended = reason
        waiter, self.waiter = self.waiter, None
        if waiter is not None:
            waiter.close()
        flow = self.flow
        if flow is not None and flow.removed:
            flow.tell(flow.removed, self, reason)

    def attach(self, waiter: Waiter) -> None:
        """Makes `waiter` the connection that receives this session's messages, displacing any
        other one.

        Examples:
            >>> class Poll:  # what a transport attaches to a session
            ...     def __init__(self, name):
            ...         self.name = name
            ...     def displace(self):
            ...         print(self.name, "displaced")
            >>> session = server.create_session()
            >>> session.attach(Poll("first"))
            >>> session.attach(Poll("second"))
            first displaced
        """
        previous = self.waiter
        self.waiter = waiter
        if previous is not None and previous is not waiter:
            previous.displace()

    def detach(self, waiter: Waiter) -> None:
        """Forgets `waiter` if it is the session's waiting connection.

        Examples:
            >>> class Poll:  # what a transport attaches to a session
            ...     pass
            >>> session, poll = server.create_session(), Poll()
            >>> session.attach(poll)
            >>> session.detach(Poll())  # not its waiter: nothing changes
            >>> session.waiter is poll
            True
            >>> session.detach(poll)
            >>> session.waiter is None
            True
        """
        if self.waiter is waiter:
            self.waiter = None

    @property
    def tag(self) -> str:
        """A short name for logs that does not reveal the clientId (which is the session's only
        credential): a hash of it, stable for the session's life.

        Examples:
            >>> ServerSession("abc", 0.0).tag
            's-44229fc0ef'

        Added in version 0.2.0."""
        return "s-" + hashlib.blake2b(self.id.encode(), digest_size=5).hexdigest()

    def __repr__(self) -> str:
        return f"ServerSession({self.tag}, {len(self._subscriptions or ())} subscriptions)"
