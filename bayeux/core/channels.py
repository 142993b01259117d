"""Channels as objects, as CometD's ServerChannel: each channel or channel pattern the
application configures owns its hooks (authorizers, message listeners, a service), its flags
(lazy with its own timeout, persistent, broadcast-to-publisher) and its attributes, and answers
for its subscribers. `ChannelTable` holds them, with the initializers and the listeners of
channels added and removed.

A channel object is made when the application asks for one (`BayeuxServer.channel`, or
installing a hook), and, only while some initializer or channel listener is installed, when a
session first subscribes to a channel: with neither, a subscription makes no object, so a
deployment of many private channels pays nothing for them (benchmarks/memory.py). Subscribers
themselves live in the subscription tree (core/tree.py); an object only looks them up.

What is read on every publish (whether any channel is lazy, which override broadcast-to-
publisher) is recomputed when something changes, so that a server with no channel objects
answers each with one attribute read (benchmarks/fanout.py).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Hashable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from . import channel as ch
from .flow import Conflation
from .message import Message
from .policy import Authorizer
from .service import ServiceHandler
from .session import ServerSession
from .threads import LoopOwner, on_loop, on_loop_async
from .tree import ChannelTree

log = logging.getLogger("bayeux.server")

MessageListener = Callable[[ServerSession | None, str, Message], Any]
ChannelListener = Callable[["ServerChannel"], Any]
Initializer = Callable[["ServerChannel"], Any]

# At most this many subscribers in one listing (ServerChannel.subscribers): a listing is for
# looking at, and a channel may have every session of the deployment.
MAX_LISTING = 10_000


@dataclass(frozen=True, slots=True)
class Subscribers:
    """Who subscribes to a channel across the deployment: how many, and some of their
    clientIds (at most the limit asked).

    Examples:
        >>> import asyncio
        >>> session = server.create_session()
        >>> server.subscribe(session, "/chat/lobby")
        >>> found = asyncio.run(server.deployment_subscribers("/chat/lobby"))
        >>> found.count, found.client_ids == [session.id]
        (1, True)

    Added in version 0.3.0."""

    count: int
    client_ids: list[str]


class ChannelHost(Protocol):
    """What a channel asks of the server it belongs to."""

    @property
    def loop_owner(self) -> LoopOwner: ...

    @property
    def tree(self) -> ChannelTree[ServerSession]: ...

    def publish(
        self,
        channel: str,
        data: Any,
        *,
        ext: dict[str, Any] | None = None,
        sender: ServerSession | None = None,
        lazy: bool = False,
    ) -> int: ...

    def unsubscribe(self, session: ServerSession, pattern: str) -> None: ...

    def deployment_subscribers(self, channel: str, limit: int) -> Awaitable[Subscribers]: ...


class ServerChannel:
    """One channel, or one wildcard pattern (`/chat/*`, `/chat/**`), as the server holds it:
    get it with `server.channel(name)`.

    The hooks and flags of a pattern apply to every channel it matches; a concrete channel's
    own `broadcast_to_publisher` and `lazy_timeout` come before a pattern's.

    Examples:
        >>> prices = server.channel("/prices/ACME")
        >>> prices.lazy = True                 # ticks may wait for company
        >>> prices.broadcast_to_publisher = False
        >>> prices.attributes["desk"] = "equities"
        >>> prices.subscriber_count
        0

    Added in version 0.3.0."""

    __slots__ = (
        "name",
        "authorizers",
        "listeners",
        "service",
        "attributes",
        "_lazy",
        "_lazy_timeout",
        "_persistent",
        "_broadcast_to_publisher",
        "_table",
        "_kept",
        "_conflation",
        "_order",
    )

    def __init__(self, name: str, table: ChannelTable, *, kept: bool, order: int = 0) -> None:
        self.name = name
        # Run in the order added (add_authorizer, add_listener); read by the server's hooks.
        self.authorizers: list[Authorizer] = []
        self.listeners: list[MessageListener] = []
        self.service: ServiceHandler | None = None
        # The application's own values, in this process only (CometD's channel attributes).
        self.attributes: dict[str, Any] = {}
        self._lazy = False
        self._lazy_timeout: float | None = None
        self._persistent = False
        self._broadcast_to_publisher: bool | None = None
        self._table = table
        # Made by the application (kept until `remove`), not by a subscription.
        self._kept = kept
        self._conflation: Conflation | None = None
        # When it was made, among the server's channels: hooks run in that order.
        self._order = order

    @property
    def loop_owner(self) -> LoopOwner:
        """The server's loop: changes made from another thread are made on it.

        Examples:
            >>> server.channel("/news").loop_owner is server.loop_owner
            True
        """
        return self._table.host.loop_owner

    # ------------------------------------------------------------------------------ kind

    @property
    def is_wildcard(self) -> bool:
        """Whether this is a pattern (`/a/*` or `/a/**`), not a concrete channel.

        Examples:
            >>> server.channel("/chat/*").is_wildcard
            True

        Added in version 0.3.0."""
        return self.name.endswith("*")

    @property
    def is_service(self) -> bool:
        """Whether this is a `/service/**` channel (messages for the server alone).

        Examples:
            >>> server.channel("/service/echo").is_service
            True

        Added in version 0.3.0."""
        return ch.is_service(self.name)

    # ----------------------------------------------------------------------------- flags

    @property
    def lazy(self) -> bool:
        """Whether its messages may wait for company (up to `lazy_timeout`) before waking a
        held connect: CometD's lazy channels.

        Examples:
            >>> server.channel("/news").lazy = True
            >>> server.channel("/news").lazy
            True

        Added in version 0.3.0."""
        return self._lazy

    @lazy.setter
    @on_loop
    def lazy(self, lazy: bool) -> None:
        self._lazy = bool(lazy)
        self._table.changed(self)

    @property
    def lazy_timeout(self) -> float | None:
        """Seconds a lazy message waits at most; None for the server's `--max-lazy-timeout`.
        Setting it makes the channel lazy.

        Examples:
            >>> news = server.channel("/news")
            >>> news.lazy_timeout = 0.5
            >>> news.lazy
            True

        Added in version 0.3.0."""
        return self._lazy_timeout

    @lazy_timeout.setter
    @on_loop
    def lazy_timeout(self, seconds: float | None) -> None:
        if seconds is not None and not (0 <= seconds <= 3600):
            raise ValueError(f"a lazy timeout is 0 to 3600 seconds, not {seconds!r}")
        self._lazy_timeout = seconds
        if seconds is not None:
            self._lazy = True
        self._table.changed(self)

    @property
    def persistent(self) -> bool:
        """Whether the channel stays when its last subscriber leaves (with its settings and
        attributes). A channel the application asked for stays anyway until `remove()`: this
        matters for the channels initializers configure as sessions subscribe.

        Examples:
            >>> server.channel("/rooms/lobby").persistent = True

        Added in version 0.3.0."""
        return self._persistent

    @persistent.setter
    @on_loop
    def persistent(self, persistent: bool) -> None:
        self._persistent = bool(persistent)

    @property
    def broadcast_to_publisher(self) -> bool | None:
        """Whether a message published here also reaches its publisher when subscribed; None
        (the default) for the server's `--broadcast-to-publisher`. A message echoes only when
        its channel and its publishing session both allow it (CometD's rule).

        Examples:
            >>> server.channel("/chat/*").broadcast_to_publisher = False

        Added in version 0.3.0."""
        return self._broadcast_to_publisher

    @broadcast_to_publisher.setter
    @on_loop
    def broadcast_to_publisher(self, value: bool | None) -> None:
        self._broadcast_to_publisher = None if value is None else bool(value)
        self._table.changed(self)

    @property
    def conflation(self) -> Conflation | None:
        """The conflation rule of this channel (or pattern), if any (`conflate`).

        Examples:
            >>> server.channel("/plain").conflation is None
            True

        Added in version 0.3.0."""
        return self._conflation

    @on_loop
    def conflate(
        self,
        key: Callable[[Message], Hashable] | None,
        *,
        backlog: int = 64,
        after: float = 0.1,
    ) -> Conflation | None:
        """Conflates what is published here: in a session's queue that holds at least
        `backlog` messages, left waiting by its reader for `after` seconds, messages with the
        same `key(message)` merge (only the newest stays, in publish order): a slow client of
        a price feed receives the latest value per key, not a backlog, and its queue stays
        bounded by twice the number of keys, or `backlog` plus what `after` lets in. A client
        that takes its queue within `after` of a message's queuing, or whose queue never
        reaches `backlog`, loses nothing, however many messages one turn of the loop queues
        for it. The keys of two conflated channels never merge each other's messages. `None`
        turns it off. Returns the rule.

        Examples:
            >>> prices = server.channel("/prices/*")
            >>> rule = prices.conflate(key=lambda message: message["channel"], backlog=2, after=0)
            >>> slow = server.create_session()
            >>> server.subscribe(slow, "/prices/*")
            >>> for n in range(5):
            ...     _ = server.publish("/prices/ACME", n)
            ...     _ = server.publish("/prices/INIT", n)
            >>> [(d.channel, d.message["data"]) for d in slow.drain()]
            [('/prices/ACME', 4), ('/prices/INIT', 4)]

        Added in version 0.3.0."""
        if key is None:
            self._conflation = None
        else:
            if not callable(key):
                raise TypeError(f"a conflation key is a function of the message, not {key!r}")
            if not isinstance(backlog, int) or isinstance(backlog, bool) or backlog < 0:
                raise ValueError(f"backlog is a count of messages >= 0, not {backlog!r}")
            if (
                not isinstance(after, (int, float))
                or isinstance(after, bool)
                or not 0 <= after < float("inf")
            ):
                raise ValueError(f"after is a number of seconds >= 0, not {after!r}")
            self._conflation = Conflation(key, backlog, float(after))
        self._table.changed(self)
        return self._conflation

    # ----------------------------------------------------------------------------- hooks

    @on_loop
    def add_listener(self, listener: MessageListener) -> MessageListener:
        """Calls `listener(session, channel, message)` for each message a session publishes
        here (or, on a pattern, to a channel it matches), before delivery; it may change the
        message, and returning False drops it. Returns `listener` (usable as a decorator).

        Examples:
            >>> @server.channel("/chat/*").add_listener
            ... def polite(session, channel, message):
            ...     return "shout" not in str(message["data"])

        Added in version 0.3.0."""
        # A new list, never changed in place: a message inside an asynchronous listener goes
        # on through the list it started with.
        self.listeners = [*self.listeners, listener]
        self._table.changed(self)
        return listener

    @on_loop
    def remove_listener(self, listener: MessageListener) -> None:
        """Stops calling `listener` (nothing happens if it was not added).

        Examples:
            >>> room = server.channel("/chat/*")
            >>> room.remove_listener(room.add_listener(lambda s, c, m: True))

        Added in version 0.3.0."""
        if listener in self.listeners:
            self.listeners = [other for other in self.listeners if other is not listener]
            self._table.changed(self)

    @on_loop
    def add_authorizer(self, authorizer: Authorizer) -> Authorizer:
        """Asks `authorizer` about every create, subscribe and publish on this channel (or on
        the channels this pattern matches); returns it.

        Examples:
            >>> from bayeux import Authorization
            >>> def members_only(operation, channel, session, message):
            ...     return Authorization.GRANT if session.user else Authorization.DENY
            >>> _ = server.channel("/members/**").add_authorizer(members_only)

        Added in version 0.3.0."""
        self.authorizers = [*self.authorizers, authorizer]
        self._table.changed(self)
        return authorizer

    @on_loop
    def remove_authorizer(self, authorizer: Authorizer) -> None:
        """Stops asking `authorizer` (nothing happens if it was not added).

        Examples:
            >>> from bayeux import Authorization
            >>> members = server.channel("/members/**")
            >>> members.remove_authorizer(members.add_authorizer(lambda *_: Authorization.GRANT))

        Added in version 0.3.0."""
        if authorizer in self.authorizers:
            self.authorizers = [other for other in self.authorizers if other is not authorizer]
            self._table.changed(self)

    # ------------------------------------------------------------------------ subscribers

    @property
    def subscriber_count(self) -> int:
        """How many sessions of this process subscribe to exactly this channel (or pattern).

        Examples:
            >>> server.channel("/nobody/here").subscriber_count
            0

        Added in version 0.3.0."""
        return self._table.tree.count(self.name)

    @on_loop
    def subscribers(self, limit: int = 100) -> list[ServerSession]:
        """Up to `limit` (at most 10,000) of the sessions of this process subscribed to
        exactly this channel.

        Examples:
            >>> server.channel("/nobody/here").subscribers(limit=10)
            []

        Added in version 0.3.0."""
        limit = max(0, min(limit, MAX_LISTING))
        found: list[ServerSession] = []
        for session in self._table.tree.subscribers(self.name):
            if len(found) >= limit:
                break
            found.append(session)
        return found

    @on_loop_async
    async def deployment_subscribers(self, limit: int = 100) -> Subscribers:
        """Who subscribes to exactly this channel across the deployment: with `--redis`, every
        process's clients (and this process's server-side sessions); alone, this process's.
        At most `limit` (at most 10,000) clientIds are listed.

        Examples:
            >>> import asyncio
            >>> asyncio.run(server.channel("/nobody/here").deployment_subscribers())
            Subscribers(count=0, client_ids=[])

        Added in version 0.3.0."""
        return await self._table.host.deployment_subscribers(
            self.name, max(0, min(limit, MAX_LISTING))
        )

    # ------------------------------------------------------------------------- messages

    def publish(
        self,
        data: Any,
        *,
        sender: ServerSession | None = None,
        lazy: bool = False,
        ext: dict[str, Any] | None = None,
    ) -> int:
        """Publishes `data` here from the server side, as `server.publish` does: on behalf of
        `sender` when given (it does not get the message back unless broadcast-to-publisher
        allows it), lazily when `lazy` (it may wait like a lazy channel's). Returns how many
        sessions of this process it reaches.

        Raises:
            ValueError: this is a pattern or a meta channel.

        Examples:
            >>> server.channel("/prices/ACME").publish({"last": 42.0}, lazy=True)
            0

        Added in version 0.3.0."""
        return self._table.host.publish(self.name, data, ext=ext, sender=sender, lazy=lazy)

    @on_loop
    def remove(self) -> None:
        """Removes the channel: its subscribers are unsubscribed, its hooks, settings and
        attributes forgotten, and the channel-removed listeners told.

        Examples:
            >>> server.channel("/old/news").remove()
            >>> server.find_channel("/old/news") is None
            True

        Added in version 0.3.0."""
        self._table.remove(self)

    def _cleared(self) -> None:
        """Forgotten by the server: its hooks, flags and rule go with it."""
        self.authorizers, self.listeners, self.service = [], [], None
        self._lazy, self._lazy_timeout, self._broadcast_to_publisher = False, None, None
        self._conflation = None

    def __repr__(self) -> str:
        return f"<ServerChannel {self.name}>"


class ChannelTable:
    """The server's channel objects by name, their initializers and channel listeners, and
    what the publish path reads of them.

    What a publish reads is kept per kind as an exact-name dictionary and a tuple of the
    wildcard objects that set it: a lookup costs one dictionary read plus the configured
    patterns, whatever the number of channels subscribed to, and a change to one channel
    updates only its own entries (a client subscribing to thousands of channels while an
    initializer is installed costs a constant each: tests/core/test_channels_hostile.py)."""

    def __init__(self, host: ChannelHost, changed: Callable[[], None]) -> None:
        self.host = host
        self.by_name: dict[str, ServerChannel] = {}
        self.initializers: list[tuple[str, Initializer]] = []
        self.added: list[ChannelListener] = []
        self.removed: list[ChannelListener] = []
        # Told after a change of hooks (the server recomputes whether batches may wait).
        self._changed = changed
        # Whether a subscription to a new channel must make its object (an initializer or a
        # channel listener wants to see it).
        self.watched = False
        # Wildcard objects that hold a hook, a flag or a rule, in the order they were made.
        self._patterns: dict[str, ServerChannel] = {}
        # Per kind: the concrete channels that set it, and the configured patterns that do.
        self._lazy: dict[str, float | None] = {}
        self._timeouts: dict[str, float] = {}
        self._echo: dict[str, bool] = {}
        self._conflation: dict[str, Conflation] = {}
        self._lazy_patterns: tuple[tuple[str, float | None], ...] = ()
        self._timeout_patterns: tuple[tuple[str, float], ...] = ()
        self._echo_patterns: tuple[tuple[str, bool], ...] = ()
        self._conflation_patterns: tuple[tuple[str, Conflation], ...] = ()
        # The channels (and patterns) with each kind of hook.
        self._authorized: set[str] = set()
        self._listened: set[str] = set()
        self._served: set[str] = set()
        # Read on every publish: whether anything sets each kind at all (most servers: no).
        self.lazy = False
        self.echo = False
        self.conflated = False
        self.authorized = False
        self.listened = False
        self.served = False
        self._made = 0

    @property
    def tree(self) -> ChannelTree[ServerSession]:
        return self.host.tree

    def changed(self, channel: ServerChannel) -> None:
        """`channel`'s hooks, flags or rule changed: its entries are updated (removed, for an
        object the server no longer holds)."""
        name = channel.name
        if self.by_name.get(name) is not channel:
            channel = ServerChannel(name, self, kept=False)  # nothing set: entries go
        if name.endswith("*"):
            if _configured(channel):
                self._patterns[name] = self.by_name[name]
            else:
                self._patterns.pop(name, None)
            patterns = sorted(self._patterns.values(), key=_made_order)
            self._lazy_patterns = tuple((c.name, c.lazy_timeout) for c in patterns if c.lazy)
            self._timeout_patterns = tuple(
                (c.name, c.lazy_timeout) for c in patterns if c.lazy_timeout is not None
            )
            self._echo_patterns = tuple(
                (c.name, c.broadcast_to_publisher)
                for c in patterns
                if c.broadcast_to_publisher is not None
            )
            self._conflation_patterns = tuple(
                (c.name, c.conflation) for c in patterns if c.conflation is not None
            )
        else:
            _set(self._lazy, name, channel.lazy_timeout if channel.lazy else _ABSENT)
            _set(
                self._timeouts,
                name,
                _ABSENT if channel.lazy_timeout is None else channel.lazy_timeout,
            )
            _set(
                self._echo,
                name,
                _ABSENT
                if channel.broadcast_to_publisher is None
                else channel.broadcast_to_publisher,
            )
            _set(
                self._conflation,
                name,
                _ABSENT if channel.conflation is None else channel.conflation,
            )
        for names, present in (
            (self._authorized, bool(channel.authorizers)),
            (self._listened, bool(channel.listeners)),
            (self._served, channel.service is not None),
        ):
            if present:
                names.add(name)
            else:
                names.discard(name)
        self.lazy = bool(self._lazy or self._lazy_patterns)
        self.echo = bool(self._echo or self._echo_patterns)
        self.conflated = bool(self._conflation or self._conflation_patterns)
        hooked = (self.authorized, self.listened, self.served)
        self.authorized = bool(self._authorized)
        self.listened = bool(self._listened)
        self.served = bool(self._served)
        if hooked != (self.authorized, self.listened, self.served):
            self._changed()

    def watchers_changed(self) -> None:
        self.watched = bool(self.initializers or self.added or self.removed)

    # -------------------------------------------------------------------------- objects

    def get(self, name: str) -> ServerChannel | None:
        return self.by_name.get(name)

    def channel(
        self, name: str, initializer: Initializer | None = None, *, kept: bool = True
    ) -> ServerChannel:
        """The object of `name`, made (and initialized, and announced) if there is none;
        one the application asks for is kept until removed."""
        found = self.by_name.get(name)
        if found is not None:
            if kept:
                found._kept = True
            return found
        self._made += 1
        made = self.by_name[name] = ServerChannel(name, self, kept=kept, order=self._made)
        if not name.endswith("*"):
            # Initializers configure concrete channels only: run on a pattern's object (a
            # client may subscribe to `/rooms/*`), a per-channel hook would apply to every
            # channel the pattern covers.
            for pattern, init in self.initializers:
                if pattern == name or ch.matches(pattern, name):
                    self._call(init, made)
        if initializer is not None:
            self._call(initializer, made)
        for listener in self.added:
            self._call(listener, made)
        return made

    def add_initializer(self, pattern: str, initializer: Initializer) -> None:
        self.initializers.append((pattern, initializer))
        self.watchers_changed()

    def channels(self) -> Iterator[ServerChannel]:
        return iter(list(self.by_name.values()))

    # ---------------------------------------------------------------- from subscriptions

    def first_subscriber(self, name: str) -> None:
        """`name` got its first subscriber: its object is made when someone watches."""
        if self.watched and name not in self.by_name:
            self.channel(name, kept=False)

    def last_subscriber_left(self, name: str) -> None:
        """`name` lost its last subscriber: an object no one else holds goes."""
        found = self.by_name.get(name)
        if found is None or found._kept or found.persistent:
            return
        if found.listeners or found.authorizers or found.service is not None:
            return
        self._forget(found)

    def remove(self, channel: ServerChannel) -> None:
        if self.by_name.get(channel.name) is not channel:
            return
        channel._kept = True  # its subscribers leaving must not forget it first
        for session in list(self.tree.subscribers(channel.name)):
            self.host.unsubscribe(session, channel.name)
        self._forget(channel)

    def _forget(self, channel: ServerChannel) -> None:
        if self.by_name.pop(channel.name, None) is not channel:
            return
        channel._cleared()
        self.changed(channel)
        for listener in self.removed:
            self._call(listener, channel)

    # --------------------------------------------------------------- read when publishing

    def lazy_seconds(self, channel: str, default: float) -> float | None:
        """How long a message on `channel` may wait as lazy; None when it is not lazy."""
        own = self._lazy.get(channel, _ABSENT)
        if own is not _ABSENT:
            return default if own is None else own
        for pattern, seconds in self._lazy_patterns:
            if ch.matches(pattern, channel):
                return default if seconds is None else seconds
        return None

    def timeout_of(self, channel: str, default: float) -> float:
        """How long a message published lazily on `channel` may wait: its own lazy timeout,
        else the first pattern's that matches it, else `default`."""
        own = self._timeouts.get(channel)
        if own is not None:
            return own
        for pattern, seconds in self._timeout_patterns:
            if ch.matches(pattern, channel):
                return seconds
        return default

    def conflation_for(self, channel: str) -> Conflation | None:
        own = self._conflation.get(channel)
        if own is not None:
            return own
        for pattern, rule in self._conflation_patterns:
            if ch.matches(pattern, channel):
                return rule
        return None

    def echoes(self, channel: str, default: bool) -> bool:
        """Whether `channel` lets a message reach its own publisher."""
        own = self._echo.get(channel)
        if own is not None:
            return own
        for pattern, echo in self._echo_patterns:
            if ch.matches(pattern, channel):
                return echo
        return default

    def hooked(self, channel: str, kind: str) -> list[ServerChannel]:
        """The objects whose `kind` of hook ("authorizers", "listeners", "service") applies
        to `channel`: its own and the patterns' matching it, in the order they were made."""
        names = {
            "authorizers": self._authorized,
            "listeners": self._listened,
            "service": self._served,
        }[kind]
        found = []
        own = self.by_name.get(channel) if channel in names else None
        if own is not None:
            found.append(own)
        for pattern in self._patterns.values():
            if pattern is not own and pattern.name in names and ch.matches(pattern.name, channel):
                found.append(pattern)
        if len(found) > 1:
            found.sort(key=_made_order)
        return found

    def exists(self, name: str) -> bool:
        """Whether `name` exists without subscribers: persistent, listened to or served (else
        a publish or subscribe creates it, which the policy and authorizers may refuse)."""
        found = self.by_name.get(name)
        return found is not None and (
            found.persistent or bool(found.listeners) or found.service is not None
        )

    @staticmethod
    def _call(function: Callable[[ServerChannel], Any], channel: ServerChannel) -> None:
        try:
            result = function(channel)
        except Exception:
            log.exception("channel initializer or listener %r failed", function)
            return
        if result is not None and hasattr(result, "__await__"):
            log.error("channel initializers and listeners are called synchronously: %r", function)
            close = getattr(result, "close", None)
            if close is not None:
                close()


# A dictionary entry that is not there (None is a value: "lazy, with the server's timeout").
_ABSENT: Any = object()


def _set(table: dict[str, Any], name: str, value: Any) -> None:
    if value is _ABSENT:
        table.pop(name, None)
    else:
        table[name] = value


def _made_order(channel: ServerChannel) -> int:
    return channel._order


def _configured(channel: ServerChannel) -> bool:
    return bool(
        channel.lazy
        or channel.lazy_timeout is not None
        or channel.broadcast_to_publisher is not None
        or channel.conflation is not None
        or channel.authorizers
        or channel.listeners
        or channel.service is not None
    )
