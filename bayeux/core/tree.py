"""Subscriptions by channel, and the sessions that a published message reaches."""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from typing import Generic, TypeVar

from .channel import wildcards_of

S = TypeVar("S", bound=Hashable)


class ChannelTree(Generic[S]):
    """Maps subscription patterns (concrete or wildcard) to their subscribers.

    Matching looks up the channel itself and the few patterns that can match it (see
    `wildcards_of`), so its cost does not grow with the number of subscriptions.
    """

    def __init__(self) -> None:
        self._subscribers: dict[str, set[S]] = {}

    def subscribe(self, pattern: str, subscriber: S) -> bool:
        """Adds a subscription; False when it was already there."""
        subscribers = self._subscribers.setdefault(pattern, set())
        if subscriber in subscribers:
            return False
        subscribers.add(subscriber)
        return True

    def unsubscribe(self, pattern: str, subscriber: S) -> bool:
        """Removes a subscription; False when there was none."""
        subscribers = self._subscribers.get(pattern)
        if subscribers is None or subscriber not in subscribers:
            return False
        subscribers.discard(subscriber)
        if not subscribers:
            del self._subscribers[pattern]
        return True

    def match(self, channel: str) -> set[S]:
        """Every subscriber of `channel`, once each however many of its patterns match."""
        subscribers = self._subscribers
        found: set[S] = set()
        direct = subscribers.get(channel)
        if direct:
            found |= direct
        for pattern in wildcards_of(channel):
            matched = subscribers.get(pattern)
            if matched:
                found |= matched
        return found

    def has(self, pattern: str) -> bool:
        """Whether anyone subscribes to exactly `pattern`."""
        return pattern in self._subscribers

    def subscribers(self, pattern: str) -> frozenset[S]:
        return frozenset(self._subscribers.get(pattern, ()))

    def patterns(self) -> Iterator[str]:
        return iter(self._subscribers)

    def __len__(self) -> int:
        return sum(len(s) for s in self._subscribers.values())
