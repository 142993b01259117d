"""The timestamp extension: every message the server sends carries a `timestamp` field, the
time it was sent as CometD's server TimestampExtension writes it (Java's
`EEE MMM dd HH:mm:ss zzz yyyy` in the server's time zone: `Tue Mar 05 14:03:22 UTC 2024`).

A broadcast is stamped once, before it is encoded for all its subscribers: every subscriber gets
the same bytes, stamped when the message was published, not when each connection wrote it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ..extension import Extension
from ..message import Message
from ..session import ServerSession

# Java's English names, whatever the process's locale (strftime's %a and %b follow it).
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def cometd_timestamp(seconds: float, *, utc: bool = False) -> str:
    """`seconds` since the epoch as CometD's TimestampExtension formats a time, in the
    process's time zone (or UTC)."""
    t = time.gmtime(seconds) if utc else time.localtime(seconds)
    zone = "UTC" if utc else t.tm_zone
    return (
        f"{_DAYS[t.tm_wday]} {_MONTHS[t.tm_mon - 1]} {t.tm_mday:02d}"
        f" {t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} {zone} {t.tm_year}"
    )


class TimestampExtension(Extension):
    """Stamps every message the server sends with a `timestamp` field, as CometD's server
    `TimestampExtension` does: replies, deliveries, and each broadcast once for all its
    subscribers. `--timestamp-extension` installs one; `clock` gives the time (seconds since
    the epoch), `utc` formats it in UTC rather than the server's time zone.

    Examples:
        >>> stamp = TimestampExtension(clock=lambda: 0.0, utc=True)
        >>> message = {"channel": "/news", "data": "hello"}
        >>> stamp.outgoing(None, message)
        True
        >>> message["timestamp"]
        'Thu Jan 01 00:00:00 UTC 1970'

    Added in version 0.3.0."""

    def __init__(self, clock: Callable[[], float] = time.time, *, utc: bool = False) -> None:
        self._clock = clock
        self._utc = utc
        # The text changes once a second: it is formatted once per second, not per message.
        self._second = -1
        self._text = ""

    def outgoing(self, session: ServerSession | None, message: Message) -> bool:
        """Puts the time in the message's `timestamp` field; keeps the message.

        Examples:
            >>> reply = {"channel": "/meta/connect", "successful": True}
            >>> TimestampExtension(clock=lambda: 1e9, utc=True).outgoing(None, reply)
            True
            >>> reply["timestamp"]
            'Sun Sep 09 01:46:40 UTC 2001'
        """
        second = int(self._clock())
        if second != self._second:
            self._text = cometd_timestamp(second, utc=self._utc)
            self._second = second
        message["timestamp"] = self._text
        return True
