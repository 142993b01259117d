"""Subscriptions by channel, and the sessions that a published message reaches."""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from typing import Generic, TypeVar

S = TypeVar("S", bound=Hashable)

# What one subscription costs at most, in bytes of memory: its entries (the session's set, the
# tree's pattern count, a slot's set entry) and a node for each segment that no other
# subscription shares (the node, its parent's dict, the segment's string). Measured with
# tracemalloc in tests/system/test_memory_bounds.py; segments shared with other subscriptions cost
# nothing more, so this is an upper bound.
SUBSCRIPTION_OVERHEAD = 256
NODE_COST = 320


def subscription_cost(pattern: str) -> int:
    """The memory a session is charged for subscribing to `pattern` (an upper bound)."""
    return SUBSCRIPTION_OVERHEAD + len(pattern) + NODE_COST * pattern.count("/")


class _Node(Generic[S]):
    """One segment of the tree: who subscribes to the channel ending here (`exact`), to its
    children (`/here/*`) and to everything below it (`/here/**`).

    Each container is made when first needed: most nodes of a deep pattern are only a step on
    the way, and empty containers cost more than the node itself
    (tests/system/test_memory_bounds.py)."""

    __slots__ = ("children", "exact", "star", "deep")

    def __init__(self) -> None:
        self.children: dict[str, _Node[S]] | None = None
        self.exact: set[S] | None = None
        self.star: set[S] | None = None
        self.deep: set[S] | None = None

    def empty(self) -> bool:
        return not (self.children or self.exact or self.star or self.deep)


def _split(pattern: str) -> tuple[list[str], str]:
    """The segments leading to a pattern's node, and which of its sets holds the pattern."""
    segments = pattern[1:].split("/")
    last = segments[-1]
    if last == "**":
        return segments[:-1], "deep"
    if last == "*":
        return segments[:-1], "star"
    return segments, "exact"


class ChannelTree(Generic[S]):
    """Maps subscription patterns (concrete or wildcard) to their subscribers.

    A tree of segments: matching a channel walks its segments once, so its cost grows with the
    number of segments, not with the number of subscriptions, and nothing is cached.
    """

    def __init__(self) -> None:
        self._root: _Node[S] = _Node()
        self._patterns: dict[str, int] = {}  # pattern -> number of subscribers

    def _slot(self, pattern: str, *, create: bool) -> set[S] | None:
        segments, kind = _split(pattern)
        node = self._root
        for segment in segments:
            children = node.children
            child = children.get(segment) if children is not None else None
            if child is None:
                if not create:
                    return None
                if children is None:
                    children = node.children = {}
                child = children[segment] = _Node()
            node = child
        slot: set[S] | None = getattr(node, kind)
        if slot is None and create:
            slot = set()
            setattr(node, kind, slot)
        return slot

    def subscribe(self, pattern: str, subscriber: S) -> bool:
        """Adds a subscription; False when it was already there."""
        slot = self._slot(pattern, create=True)
        assert slot is not None
        if subscriber in slot:
            return False
        slot.add(subscriber)
        self._patterns[pattern] = self._patterns.get(pattern, 0) + 1
        return True

    def unsubscribe(self, pattern: str, subscriber: S) -> bool:
        """Removes a subscription; False when there was none."""
        slot = self._slot(pattern, create=False)
        if slot is None or subscriber not in slot:
            return False
        slot.discard(subscriber)
        remaining = self._patterns[pattern] - 1
        if remaining:
            self._patterns[pattern] = remaining
        else:
            del self._patterns[pattern]
            self._prune(_split(pattern)[0])
        return True

    def _prune(self, segments: list[str]) -> None:
        """Drops the nodes along `segments` that no longer hold anything."""
        path = [self._root]
        for segment in segments:
            children = path[-1].children
            assert children is not None
            path.append(children[segment])
        for depth in range(len(segments), 0, -1):
            if not path[depth].empty():
                return
            parent = path[depth - 1]
            assert parent.children is not None
            del parent.children[segments[depth - 1]]
            if not parent.children:
                parent.children = None

    def match(self, channel: str) -> set[S]:
        """Every subscriber of `channel`, once each however many of its patterns match."""
        segments = channel[1:].split("/")
        final = segments.pop()
        found: set[S] = set()
        node = self._root
        # The nodes above the final segment's parent: only their `**` subscribers match.
        # Written out for the last steps rather than checked at each one: every publish
        # walks it (benchmarks/exchange.py).
        for segment in segments:
            if node.deep:
                found |= node.deep
            children = node.children
            if children is None:
                return found
            child = children.get(segment)
            if child is None:
                return found
            node = child
        if node.deep:
            found |= node.deep
        if node.star:
            found |= node.star
        children = node.children
        if children is not None:
            child = children.get(final)
            if child is not None and child.exact:
                found |= child.exact
        return found

    def has(self, pattern: str) -> bool:
        """Whether anyone subscribes to exactly `pattern`."""
        return pattern in self._patterns

    def count(self, pattern: str) -> int:
        """How many subscribe to exactly `pattern`."""
        return self._patterns.get(pattern, 0)

    def subscribers(self, pattern: str) -> frozenset[S]:
        slot = self._slot(pattern, create=False)
        return frozenset(slot or ())

    def patterns(self) -> Iterator[str]:
        return iter(self._patterns)

    def __len__(self) -> int:
        return sum(self._patterns.values())
