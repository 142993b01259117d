from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from bayeux.core import channel as ch
from bayeux.core.tree import ChannelTree


def test_subscribe_is_idempotent_and_unsubscribe_removes() -> None:
    tree: ChannelTree[str] = ChannelTree()
    assert tree.subscribe("/a", "s1") is True
    assert tree.subscribe("/a", "s1") is False
    assert tree.match("/a") == {"s1"}
    assert tree.unsubscribe("/a", "s1") is True
    assert tree.unsubscribe("/a", "s1") is False
    assert tree.match("/a") == set()
    assert list(tree.patterns()) == []  # empty patterns are dropped


def test_match_returns_each_subscriber_once_across_patterns() -> None:
    tree: ChannelTree[str] = ChannelTree()
    for pattern in ("/a/b", "/a/*", "/a/**", "/**"):
        tree.subscribe(pattern, "s1")
    tree.subscribe("/a/*", "s2")
    tree.subscribe("/a/b/c", "s3")
    tree.subscribe("/x/**", "s4")
    assert tree.match("/a/b") == {"s1", "s2"}
    assert tree.match("/a/b/c") == {"s1", "s3"}
    assert tree.match("/x") == {"s1"}
    assert len(tree) == 7


SEGMENTS = st.sampled_from(["a", "b", "c"])
CHANNELS = st.lists(SEGMENTS, min_size=1, max_size=4).map(lambda s: "/" + "/".join(s))
PATTERNS = CHANNELS | st.tuples(st.lists(SEGMENTS, max_size=3), st.sampled_from(["*", "**"])).map(
    lambda t: "/" + "/".join([*t[0], t[1]])
)


@given(
    subscriptions=st.lists(st.tuples(PATTERNS, st.integers(0, 3)), max_size=20), channel=CHANNELS
)
def test_match_agrees_with_matching_each_pattern(subscriptions, channel) -> None:
    tree: ChannelTree[int] = ChannelTree()
    for pattern, subscriber in subscriptions:
        tree.subscribe(pattern, subscriber)
    expected = {s for p, s in subscriptions if ch.matches(p, channel)}
    assert tree.match(channel) == expected


@given(subscriptions=st.lists(st.tuples(PATTERNS, st.integers(0, 3)), max_size=20))
def test_unsubscribing_everything_leaves_an_empty_tree(subscriptions) -> None:
    tree: ChannelTree[int] = ChannelTree()
    for pattern, subscriber in subscriptions:
        tree.subscribe(pattern, subscriber)
    for pattern, subscriber in subscriptions:
        tree.unsubscribe(pattern, subscriber)
    assert len(tree) == 0 and list(tree.patterns()) == []
    assert tree._root.empty()  # no node is left behind to grow the tree


def test_matching_grows_nothing() -> None:
    """Publishing to a million different channels leaves no trace: nothing an outsider can fill."""
    tree: ChannelTree[str] = ChannelTree()
    tree.subscribe("/a/**", "s")
    for i in range(10000):
        assert tree.match(f"/a/{i}/x") == {"s"}
        assert tree.match(f"/b/{i}") == set()
    children = tree._root.children
    assert children is not None and list(children) == ["a"] and not children["a"].children
