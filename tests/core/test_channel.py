from __future__ import annotations

import pytest

from bayeux.core import channel as ch


@pytest.mark.parametrize(
    "name",
    ["/foo", "/foo/bar", "/foo-bar/(foobar)", "/a_b/!~$@", "/stock/NASDAQ.AAPL", "/meta/connect"],
)
def test_valid_names(name: str) -> None:
    assert ch.is_valid_name(name)
    assert ch.is_valid_subscription(name)


@pytest.mark.parametrize(
    "name",
    ["", "/", "foo", "/foo/", "//foo", "/foo//bar", "/foo bar", "/foo/*", "/f\u00e9e", 3, None],
)
def test_invalid_names(name: object) -> None:
    assert not ch.is_valid_name(name)


@pytest.mark.parametrize("pattern", ["/foo/*", "/foo/**", "/*", "/**", "/a/b/c/*"])
def test_valid_patterns(pattern: str) -> None:
    assert ch.is_valid_subscription(pattern)
    assert not ch.is_valid_name(pattern)
    assert ch.is_wildcard(pattern)


@pytest.mark.parametrize("pattern", ["/foo/***", "/foo/*/bar", "/foo*", "/**/x", "*", "/a/b*"])
def test_invalid_patterns(pattern: str) -> None:
    assert not ch.is_valid_subscription(pattern)


def test_kinds() -> None:
    assert ch.is_meta("/meta/connect") and not ch.is_broadcast("/meta/connect")
    assert ch.is_service("/service/echo") and not ch.is_broadcast("/service/echo")
    assert ch.is_broadcast("/metadata") and ch.is_broadcast("/services/x")


# The examples of the specification's "Channel Globbing" section.
@pytest.mark.parametrize(
    ("pattern", "channel", "expected"),
    [
        ("/foo/*", "/foo/bar", True),
        ("/foo/*", "/foo/boo", True),
        ("/foo/*", "/foo", False),
        ("/foo/*", "/foobar", False),
        ("/foo/*", "/foo/bar/boo", False),
        ("/foo/**", "/foo/bar", True),
        ("/foo/**", "/foo/boo", True),
        ("/foo/**", "/foo/bar/boo", True),
        ("/foo/**", "/foo", False),
        ("/foo/**", "/foobar", False),
        ("/foo/**", "/foobar/boo", False),
        ("/**", "/a", True),
        ("/**", "/a/b/c", True),
        ("/*", "/a", True),
        ("/*", "/a/b", False),
        ("/foo/bar", "/foo/bar", True),
        ("/foo/bar", "/foo/baz", False),
    ],
)
def test_matching(pattern: str, channel: str, expected: bool) -> None:
    assert ch.matches(pattern, channel) is expected


def test_limits_refuse_long_names_and_many_segments() -> None:
    limits = ch.ChannelLimits(max_length=20, max_segments=3)
    assert limits.valid_name("/a/b/c")
    assert not limits.valid_name("/a/b/c/d")  # four segments
    assert not limits.valid_name("/" + "x" * 20)  # 21 characters
    assert limits.valid_subscription("/a/b/**")
    assert not limits.valid_subscription("/a/b/c/**")


@pytest.mark.parametrize("name", ["/log/x\n", "/log\n/x", "\n/x", "/x\r", "/x\x00"])
def test_control_characters_make_a_name_invalid(name: str) -> None:
    assert not ch.is_valid_name(name)
    assert not ch.is_valid_subscription(name + "/*")
