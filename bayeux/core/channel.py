"""Channel names: validation, kinds and wildcard matching (Bayeux 1.0, section 2.2).

Every check here costs time linear in the name's length, and names are refused past a length and a
segment count (`ChannelLimits`) before any other work: a channel name comes from the wire.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# A segment is one or more of: letters, digits and the spec's "mark" characters, plus "." which
# CometD accepts and real applications use (e.g. "/stock/NASDAQ.AAPL").
_SEGMENT = r"[A-Za-z0-9\-_!~()$@.]+"
# fullmatch, never `$`: `$` also matches before a trailing newline ("/log/x\n").
_NAME_RE = re.compile(rf"(?:/{_SEGMENT})+")
_PATTERN_RE = re.compile(rf"(?:/{_SEGMENT})*/\*\*?")

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


@dataclass(frozen=True, slots=True)
class ChannelLimits:
    """How long a channel name or pattern may be, in characters and in segments."""

    max_length: int = 1024
    max_segments: int = 32

    def _within(self, channel: str) -> bool:
        return len(channel) <= self.max_length and channel.count("/") <= self.max_segments

    def valid_name(self, channel: object) -> bool:
        """A concrete channel a message can be published to: no wildcards."""
        return (
            isinstance(channel, str)
            and self._within(channel)
            and _NAME_RE.fullmatch(channel) is not None
        )

    def valid_subscription(self, channel: object) -> bool:
        """A concrete channel, or a pattern whose last segment is `*` or `**`."""
        return (
            isinstance(channel, str)
            and self._within(channel)
            and (
                _NAME_RE.fullmatch(channel) is not None
                or _PATTERN_RE.fullmatch(channel) is not None
            )
        )


DEFAULT_LIMITS = ChannelLimits()


def is_valid_name(channel: object, limits: ChannelLimits = DEFAULT_LIMITS) -> bool:
    return limits.valid_name(channel)


def is_valid_subscription(channel: object, limits: ChannelLimits = DEFAULT_LIMITS) -> bool:
    return limits.valid_subscription(channel)


def is_wildcard(channel: str) -> bool:
    return channel.endswith("/*") or channel.endswith("/**")


def is_meta(channel: str) -> bool:
    return channel.startswith(META_PREFIX) or channel == "/meta"


def is_service(channel: str) -> bool:
    return channel.startswith(SERVICE_PREFIX) or channel == "/service"


_META_OR_SERVICE = (META_PREFIX, SERVICE_PREFIX)


def is_broadcast(channel: str) -> bool:
    # Neither is_meta nor is_service, in one call: asked of every publish
    # (benchmarks/exchange.py).
    return not (channel.startswith(_META_OR_SERVICE) or channel == "/meta" or channel == "/service")


def matches(pattern: str, channel: str) -> bool:
    """Whether the subscription `pattern` (concrete or wildcard) matches the concrete `channel`.

    `/a/*` matches `/a/b` only; `/a/**` matches `/a/b` and `/a/b/c`; `/**` matches everything."""
    if pattern.endswith("/**"):
        prefix = pattern[:-2]  # keeps the slash: "/a/"
        return channel.startswith(prefix) and len(channel) > len(prefix)
    if pattern.endswith("/*"):
        prefix = pattern[:-1]
        return (
            channel.startswith(prefix)
            and len(channel) > len(prefix)
            and channel.find("/", len(prefix)) == -1
        )
    return pattern == channel
