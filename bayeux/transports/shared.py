"""Bytes derived from a large payload once for every connection that sends it.

A broadcast of a large message to many WebSockets was framed (and, with permessage-deflate,
compressed) again for each socket: 1,000 subscribers of a 1 MiB message meant three 1 MiB
copies per socket on the loop, and 200 compressing subscribers kept an honest client waiting
8.3 s (benchmarks/soak.py, big-broadcast attacks). The derived bytes are kept by the identity
of the payload they came from, which the fan-out shares among all subscribers, and only while
a broadcast is being written: the WebSocket flusher forgets them all once it has nothing left
to write (`forget_all`).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable

# Payloads smaller than this are cheap to derive again, and too many to remember.
LARGE = 16 * 1024
# Every cache of derived bytes (one per kind: frame payloads, frames).
_ALL: list[DerivedBytes] = []


def forget_all() -> None:
    """Drops what every cache holds (nothing is being written that needs it any more)."""
    for cache in _ALL:
        cache.forget()


class DerivedBytes:
    """Remembers `derive(payload)` for the most recent large payloads, up to `max_bytes` of
    results (always at least the latest one), keyed by the payload object's identity and a
    variant (the opcode, the compression window)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._entries: dict[tuple[int, Hashable], tuple[bytes, bytes]] = {}
        self._bytes = 0
        _ALL.append(self)

    def forget(self) -> None:
        self._entries.clear()
        self._bytes = 0

    def get(self, payload: bytes, variant: Hashable, derive: Callable[[bytes], bytes]) -> bytes:
        key = (id(payload), variant)
        entry = self._entries.get(key)
        # The payload is held by the entry, so its id cannot be reused while the entry lives.
        if entry is not None and entry[0] is payload:
            return entry[1]
        derived = derive(payload)
        self._entries[key] = (payload, derived)
        self._bytes += len(payload) + len(derived)
        while self._bytes > self.max_bytes and len(self._entries) > 1:
            oldest = next(iter(self._entries))
            dropped, made = self._entries.pop(oldest)
            self._bytes -= len(dropped) + len(made)
        return derived

    def __len__(self) -> int:
        return len(self._entries)
