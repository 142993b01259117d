"""The `timesync` extension: lets a client estimate its clock offset from the server's.

The client sends `ext.timesync: {tc, l, o}` (its send time, its lag and offset estimates) on meta
messages; the reply carries `{tc, ts, p, a}`: `tc` echoed, `ts` the server time when the request
arrived, `p` how long the server held it, and `a = tc + o + l - ts`, the accuracy of the client's
current estimate. Times are milliseconds since the epoch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .message import ext_of


@dataclass(frozen=True, slots=True)
class TimesyncRequest:
    tc: int
    lag: int
    offset: int
    received_ms: int

    @classmethod
    def from_message(cls, message: dict[str, Any], received_ms: int) -> TimesyncRequest | None:
        sync = ext_of(message).get("timesync")
        if not isinstance(sync, dict):
            return None
        values = [sync.get(k, 0) for k in ("tc", "l", "o")]
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            return None
        tc, lag, offset = (int(v) for v in values)
        return cls(tc, lag, offset, received_ms)

    def reply(self, sent_ms: int) -> dict[str, int]:
        return {
            "tc": self.tc,
            "ts": self.received_ms,
            "p": max(0, sent_ms - self.received_ms),
            "a": self.tc + self.offset + self.lag - self.received_ms,
        }
