"""Channel names: validation, kinds and wildcard matching (Bayeux 1.0, section 2.2)."""

from __future__ import annotations

import re
from functools import lru_cache

# A segment is one or more of: letters, digits and the spec's "mark" characters, plus "." which
# CometD accepts and real applications use (e.g. "/stock/NASDAQ.AAPL").
_SEGMENT = r"[A-Za-z0-9\-_!~()$@.]+"
_NAME_RE = re.compile(rf"^(?:/{_SEGMENT})+$")
_PATTERN_RE = re.compile(rf"^(?:/{_SEGMENT})*/\*\*?$")

META_PREFIX = "/meta/"
SERVICE_PREFIX = "/service/"

META_HANDSHAKE = "/meta/handshake"
META_CONNECT = "/meta/connect"
META_DISCONNECT = "/meta/disconnect"
META_SUBSCRIBE = "/meta/subscribe"
META_UNSUBSCRIBE = "/meta/unsubscribe"
META_CHANNELS = frozenset(
    {META_HANDSHAKE, META_CONNECT, META_DISCONNECT, META_SUBSCRIBE, META_UNSUBSCRIBE}
)


def is_valid_name(channel: object) -> bool:
    """A concrete channel a message can be published to: no wildcards."""
    return isinstance(channel, str) and _NAME_RE.match(channel) is not None


def is_wildcard(channel: str) -> bool:
    return channel.endswith("/*") or channel.endswith("/**")


def is_valid_subscription(channel: object) -> bool:
    """A concrete channel, or a pattern whose last segment is `*` or `**`."""
    return isinstance(channel, str) and (
        _NAME_RE.match(channel) is not None or _PATTERN_RE.match(channel) is not None
    )


def is_meta(channel: str) -> bool:
    return channel.startswith(META_PREFIX) or channel == "/meta"


def is_service(channel: str) -> bool:
    return channel.startswith(SERVICE_PREFIX) or channel == "/service"


def is_broadcast(channel: str) -> bool:
    return not is_meta(channel) and not is_service(channel)


@lru_cache(maxsize=65536)
def wildcards_of(channel: str) -> tuple[str, ...]:
    """Every subscription pattern that matches the concrete `channel`.

    `/a/b/c` is matched by `/a/b/*`, `/a/b/**`, `/a/**` and `/**`. Looking these few keys up in a
    dict is cheaper than testing every pattern, and the result is cached for hot channels.
    """
    segments = channel.split("/")[1:]
    patterns = [channel.rsplit("/", 1)[0] + "/*"]
    for depth in range(len(segments) - 1, -1, -1):
        patterns.append("/" + "/".join(segments[:depth]) + "/**" if depth else "/**")
    return tuple(patterns)


def matches(pattern: str, channel: str) -> bool:
    """Whether the subscription `pattern` (concrete or wildcard) matches the concrete `channel`."""
    if pattern == channel:
        return True
    return is_wildcard(pattern) and pattern in wildcards_of(channel)
