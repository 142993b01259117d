from __future__ import annotations

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
