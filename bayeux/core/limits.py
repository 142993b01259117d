"""Admission bounds: how many sessions one connection, one address and the whole server may
create. Sans-I/O: transports describe the connection a batch came on as a `Peer`, and time comes
from the server's injected clock."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .session import ServerSession


@dataclass(eq=False, slots=True)
class Peer:
    """The connection a batch arrived on, as far as the core needs to know it."""

    # The client's address (after any trusted proxy headers); None when unknown.
    address: str | None = None
    # A persistent connection (WebSocket): the sessions it creates are counted against it.
    persistent: bool = False
    # A binary format (msgpack) that can carry values JSON cannot: the core checks each message.
    binary: bool = False
    sessions: list[ServerSession] = field(default_factory=list)

    def live_sessions(self) -> int:
        """Sessions this connection created that have not ended (pruning the ended ones)."""
        self.sessions = [s for s in self.sessions if s.ended is None]
        return len(self.sessions)


def address_key(address: str) -> str:
    """Clients are counted by IPv4 address, or by IPv6 /64 (one subscriber's usual share)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:64]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


class AddressWindow:
    """Counts events per address over fixed windows of `window` seconds.

    At most `max_addresses` are tracked at once: past that the oldest windows are forgotten
    first, and if all are current a new address is let through uncounted (failing open keeps
    a flood of forged addresses from locking out everyone; max_sessions still bounds it)."""

    def __init__(self, limit: int, window: float, *, max_addresses: int = 100_000) -> None:
        self.limit = limit
        self.window = window
        self.max_addresses = max_addresses
        self._windows: dict[str, tuple[float, int]] = {}  # key -> (window start, count)

    def admit(self, address: str | None, now: float) -> float:
        """Counts one event; 0 when admitted, else seconds until the address may try again."""
        if self.limit < 0 or address is None:
            return 0.0
        key = address_key(address)
        start, count = self._windows.get(key, (now, 0))
        if now - start >= self.window:
            start, count = now, 0
        if count >= self.limit:
            return start + self.window - now
        if key not in self._windows and len(self._windows) >= self.max_addresses:
            self.expire(now)
            if len(self._windows) >= self.max_addresses:
                return 0.0
        self._windows[key] = (start, count + 1)
        return 0.0

    def expire(self, now: float) -> None:
        """Forgets the windows that have passed (called by the server's sweep)."""
        self._windows = {k: v for k, v in self._windows.items() if now - v[0] < self.window}

    def __len__(self) -> int:
        return len(self._windows)
