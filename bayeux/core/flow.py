"""Flow control per session, as CometD's session listeners give it: what to do with a slow
client's queue is the application's policy, not only a server-wide switch.

A session gets a `SessionFlow` the first time a listener is installed on it or a conflated
message is queued for it; the fan-out reads one attribute (`session.flow`) per delivery to learn
there is none (benchmarks/fanout.py). Listeners on the delivery path (queued, queue full,
dequeue) are synchronous: they run inside a broadcast, once per session it reaches. Listeners of
events (connect held, released, session removed) may be coroutine functions: they run as tasks.

Conflation (`ServerChannel.conflate`) keeps, in the queue of a session whose reader has left it
waiting a while, only the newest message per key: a slow reader of a price feed gets the latest
value per key while its queue stays bounded by twice the number of keys, and a reader that keeps
up loses nothing, even when one turn of the loop queues more than the backlog for it
(benchmarks/conflation.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from .message import Delivery, Message
from .tasks import TaskSet

if TYPE_CHECKING:
    from collections import Counter

log = logging.getLogger("bayeux.server")
_event_tasks = TaskSet("a session listener", log)


class Overflow(Enum):
    """What a queue-full listener decided (`ServerSession.on_queue_full`).

    Examples:
        >>> server = BayeuxServer(Settings(max_queue=1))
        >>> session = server.create_session()
        >>> server.subscribe(session, "/feed/**")
        >>> @session.on_queue_full
        ... def alerts_first(session, delivery):
        ...     if delivery.channel == "/feed/alerts":
        ...         session.drop_oldest()  # make room, then queue it
        ...         return Overflow.QUEUE
        ...     return Overflow.DROP  # or Overflow.POLICY: --queue-full-policy
        >>> for channel in ("/feed/prices", "/feed/prices", "/feed/alerts"):
        ...     reached = server.publish(channel, "tick")
        >>> [delivery.channel for delivery in session.drain()]
        ['/feed/alerts']

    Added in version 0.3.0."""

    QUEUE = "queue"  # the listener made room (drop_oldest, replace): queue the message now
    DROP = "drop"  # drop this message
    POLICY = "policy"  # apply the server's --queue-full-policy, as without a listener


# The session type (core/session.py's ServerSession, which holds a SessionFlow: this module
# does not import it), and why a session ended (its Ended).
S = TypeVar("S")
R = TypeVar("R")


# Compared and hashed by identity (eq=False): a rule is part of its messages' keys, so that
# two channels' rules never merge each other's messages, even with equal fields.
@dataclass(frozen=True, slots=True, eq=False)
class Conflation:
    """A channel's conflation rule: messages with the same `key(message)` merge in a session's
    queue (only the newest stays, in publish order) once it holds at least `backlog` messages and
    its reader has left them waiting `after` seconds.

    Examples:
        >>> rule = server.channel("/prices/*").conflate(
        ...     key=lambda m: m["channel"], backlog=2, after=0
        ... )
        >>> rule.backlog
        2
        >>> slow = server.create_session()  # a reader that does not keep up
        >>> server.subscribe(slow, "/prices/*")
        >>> for tick in range(100):
        ...     reached = server.publish("/prices/ACME", tick)
        >>> len(slow.queue) <= 2 + 1  # conflated as it grows: at most twice what it kept
        True
        >>> [delivery.message["data"] for delivery in slow.drain()]  # conflated when taken
        [99]

    Added in version 0.3.0."""

    key: Callable[[Message], Hashable]
    backlog: int = 64
    after: float = 0.1

    def key_of(self, message: Message) -> Hashable | None:
        """The message's key; None (not conflated) when the key function fails or its key is
        not a str, number, bytes or a tuple of them (logged: a bad key costs the merge, never
        the message).

        Examples:
            >>> rule = Conflation(key=lambda message: message["data"]["symbol"])
            >>> rule.key_of({"channel": "/prices", "data": {"symbol": "ACME", "price": 42}})
            'ACME'
        """
        try:
            key = self.key(message)
        except Exception:
            log.exception("conflation key %r failed on %s", self.key, message.get("channel"))
            return None
        if not _plain(key):
            # A key of another type could raise when compared, inside a broadcast.
            log.error(
                "conflation key %r gave %s for %s: not a str, number, bytes or tuple of them",
                self.key,
                type(key).__name__,
                message.get("channel"),
            )
            return None
        return key


def _plain(key: object, depth: int = 0) -> bool:
    """Whether `key` is a str, int, float, bytes or bool, or a (shallow) tuple of them."""
    if type(key) in (str, int, float, bytes, bool):
        return True
    return type(key) is tuple and depth < 4 and all(_plain(k, depth + 1) for k in key)


class SessionFlow(Generic[S, R]):
    """One session's listeners and conflation index."""

    __slots__ = (
        "queued",
        "full",
        "dequeue",
        "held",
        "released",
        "removed",
        "since",
        "kept",
        "after",
        "backlog",
        "drops",
    )

    def __init__(self) -> None:
        self.queued: list[Callable[[S, Delivery], Any]] = []
        self.full: list[Callable[[S, Delivery], Overflow | None]] = []
        self.dequeue: list[Callable[[S, list[Delivery]], list[Delivery] | None]] = []
        self.held: list[Callable[[S], Any]] = []
        self.released: list[Callable[[S], Any]] = []
        self.removed: list[Callable[[S, R], Any]] = []
        # Conflation (ServerSession.conflate): when the oldest message the reader has left in
        # the queue was born (None: found again once the reader took from it); how many the
        # queue kept at its last conflation (the next waits until it doubles); the shortest
        # `after` and `backlog` of the conflated channels that queued here, for what the
        # reader takes; and the server's drop counts, where merges made then are counted.
        self.since: float | None = None
        self.kept = 0
        self.after: float | None = None
        self.backlog: int | None = None
        self.drops: Counter[str] | None = None

    def waited(self, oldest_born: float, now: float) -> float:
        """How long, by `now`, the reader has left its queue (whose oldest message was born
        at `oldest_born`) waiting since it last took from it."""
        since = self.since
        if since is None:
            since = self.since = oldest_born
        return now - since

    # ------------------------------------------------------------ on the delivery path

    def accepts(self, session: S, delivery: Delivery) -> bool:
        """Whether every queued listener lets `delivery` into the queue (one that raises
        vetoes it, logged)."""
        for listener in self.queued:
            try:
                if listener(session, delivery) is False:
                    return False
            except Exception:
                log.exception("queued listener %r failed; message dropped", listener)
                return False
        return True

    def overflow(self, session: S, delivery: Delivery) -> Overflow:
        """What the queue-full listeners decide for `delivery` (the first that decides)."""
        for listener in self.full:
            try:
                decided = listener(session, delivery)
            except Exception:
                log.exception("queue-full listener %r failed", listener)
                continue
            if isinstance(decided, Overflow) and decided is not Overflow.POLICY:
                return decided
        return Overflow.POLICY

    def dequeued(self, session: S, deliveries: list[Delivery]) -> list[Delivery]:
        """The batch about to leave after the dequeue listeners: each may return a new list
        of some of its deliveries (conflate, drop), or None to keep it as it is. What is not
        one of them is ignored (logged): a listener cannot add messages here."""
        for listener in self.dequeue:
            try:
                kept = listener(session, list(deliveries))
            except Exception:
                log.exception("dequeue listener %r failed; batch kept", listener)
                continue
            if kept is None:
                continue
            allowed = {id(d) for d in deliveries}
            if not isinstance(kept, list) or any(id(d) not in allowed for d in kept):
                log.error("dequeue listener %r returned what was not in its batch", listener)
                continue
            deliveries = kept
        return deliveries

    # ----------------------------------------------------------------------- events

    def tell(self, listeners: list[Callable[..., Any]], *args: Any) -> None:
        for listener in list(listeners):
            try:
                result = listener(*args)
                if asyncio.iscoroutine(result):
                    _event_tasks.spawn(result)
            except Exception:
                log.exception("session listener %r failed", listener)
