"""Admission bounds: how many sessions one connection, one address and the whole server may
create. Sans-I/O: transports describe the connection a batch came on as a `Peer`, and time comes
from the server's injected clock."""

from __future__ import annotations

import ipaddress

# The room of a budget without a limit: more than anything can hold.
UNLIMITED = 1 << 62

# What a session costs before anything is queued or subscribed: the session object, its id, its
# place in the server's table (tests/system/test_memory_bounds.py holds it to what it measures).
SESSION_OVERHEAD = 1024


class AddressBudget:
    """The memory one client address (an IPv6 /64) holds: its sessions' overhead, queues,
    unacknowledged batches and subscriptions, and on the standalone server its connections and
    what they buffer (a request's head and body, a WebSocket message arriving in fragments), in
    bytes. Bounded by max_address_bytes (`limit`; -1 for none)."""

    __slots__ = ("key", "limit", "room", "sessions", "connections", "waiting")

    def __init__(self, key: str, limit: int) -> None:
        self.key = key
        self.limit = limit
        # Bytes it may still hold: what every charge changes (`room -= size`), and the one
        # figure a delivery is checked against (`share > room`): one subtraction and one
        # comparison on each delivery's path (a `used + size > limit` check and its counter
        # showed in a fan-out's profile: benchmarks/fanout.py).
        self.room = limit if limit > 0 else UNLIMITED
        self.sessions = 0
        self.connections = 0
        # Messages of its batches the server is handling (waiting on hooks, the slow part):
        # bounded by max_extension_backlog (AddressBudgets.charge_batch).
        self.waiting = 0

    @property
    def used(self) -> int:
        """Bytes it holds."""
        return (self.limit if self.limit > 0 else UNLIMITED) - self.room

    def over(self, adding: int) -> bool:
        """Whether holding `adding` more bytes would pass the limit."""
        return adding > self.room

    def take(self, size: int) -> bool:
        """Counts `size` more bytes unless that would pass the limit; whether it did."""
        if size > self.room:
            return False
        self.room -= size
        return True


# Addresses whose keys are remembered at once (AddressBudgets.key_of).
MAX_REMEMBERED_ADDRESSES = 65536


# What an open connection of the standalone server costs before it buffers anything: its
# protocol objects, its coroutine, its kernel socket (benchmarks/memory.py measures the idle
# ones).
CONNECTION_OVERHEAD = 16 * 1024


# The budget of sessions no address is known for (made by the server itself, or on a
# transport that could not tell): counted, never limited.
UNBOUNDED = AddressBudget("", -1)


class AddressBudgets:
    """The budget of each address with live sessions or open connections (an address's budget
    goes with the last of them, so their number is bounded by theirs)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._budgets: dict[str, AddressBudget] = {}
        # Addresses as they come, to their keys: parsing an address with `ipaddress` for
        # every batch charged was a tenth of a long-polling exchange's instructions
        # (benchmarks/exchange.py). Bounded: cleared when full.
        self._keys: dict[str, str] = {}

    def key_of(self, address: str) -> str:
        key = self._keys.get(address)
        if key is None:
            if len(self._keys) >= MAX_REMEMBERED_ADDRESSES:
                self._keys.clear()
            key = self._keys[address] = address_key(address)
        return key

    def of(self, address: str | None) -> AddressBudget:
        if address is None:
            return UNBOUNDED
        key = self.key_of(address)
        budget = self._budgets.get(key)
        if budget is None:
            budget = self._budgets[key] = AddressBudget(key, self.limit)
        return budget

    def opened(self, budget: AddressBudget) -> None:
        """A session of the address was created (its admission checked `over`)."""
        budget.sessions += 1
        budget.room -= SESSION_OVERHEAD

    def closed(self, budget: AddressBudget, held: int) -> None:
        """A session of `budget` ended, letting go of `held` bytes beyond its overhead."""
        if budget is UNBOUNDED:
            budget.room += held  # no overhead was counted: the session had no address
            return
        budget.sessions -= 1
        budget.room += SESSION_OVERHEAD + held
        self._forget_if_unused(budget)

    def connected(self, address: str | None) -> AddressBudget | None:
        """A connection from `address` opened: its budget, or None when the address cannot
        afford one more."""
        budget = self.of(address)
        if not budget.take(CONNECTION_OVERHEAD):
            self._forget_if_unused(budget)
            return None
        budget.connections += 1
        return budget

    def disconnected(self, budget: AddressBudget, held: int) -> None:
        """A connection closed, letting go of `held` buffered bytes beyond its overhead."""
        budget.connections -= 1
        budget.room += CONNECTION_OVERHEAD + held
        self._forget_if_unused(budget)

    def holds(self, budget: AddressBudget) -> bool:
        """Whether `budget` is still the one its address is charged to (an address's budget
        goes once nothing holds it; a new one is made when it comes back)."""
        return self._budgets.get(budget.key) is budget

    def _forget_if_unused(self, budget: AddressBudget) -> None:
        if (
            budget.sessions <= 0
            and budget.connections <= 0
            and budget.waiting <= 0
            and budget is not UNBOUNDED
        ):
            self._budgets.pop(budget.key, None)

    def charge_batch(self, budget: AddressBudget, cost: int, messages: int, most: int) -> bool:
        """Charges a batch being handled: its decoded messages' memory (`cost`) to the
        address's budget, and their number against `most` messages of the address at once
        (--max-extension-backlog); False, charging nothing, when either would pass its bound.
        Only a batch that waits on an asynchronous hook is held long enough to matter: one
        handled without waiting gives its charge back in the same step of the loop."""
        if budget is UNBOUNDED:
            return True
        # A batch alone may have more messages than `most` (up to --max-batch-messages):
        # the count bounds what piles up, not what one batch may carry.
        if (budget.waiting and budget.waiting + messages > most) or not budget.take(cost):
            self._forget_if_unused(budget)
            return False
        budget.waiting += messages
        return True

    def busy(self, address: str | None, size: int, most: int) -> bool:
        """Whether a batch from `address` that costs `size` bytes would be refused: the address
        already has `most` messages being handled, or too little room left for it. Asked
        before reading a large body (so that it is not read at all), and before decoding one
        (so that a refused batch costs no decoding)."""
        if address is None:
            return False
        budget = self._budgets.get(self.key_of(address))
        if budget is None:
            return False
        return most <= budget.waiting or budget.room < size

    def discharge_batch(self, budget: AddressBudget, cost: int, messages: int) -> None:
        """Gives back what `charge_batch` charged, once the batch is handled."""
        if budget is UNBOUNDED:
            return
        budget.room += cost
        budget.waiting -= messages
        self._forget_if_unused(budget)

    def __len__(self) -> int:
        return len(self._budgets)


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
