"""The listener's clock: a connection is looked at when its next deadline falls due (a slow
client's timeout, an idle WebSocket's ping, an unanswered close), not at every tick.

Looking at every connection at every tick cost each tick time in proportion to the connections
open, idle or not: with tens of thousands of WebSockets a process did that work every second
although a few of them had a ping due. Here each connection sits in the slot of time its
deadline falls in (one slot a tick), and a tick takes only the slots that have passed.

A connection is in at most one slot. Deadlines only ever need it looked at sooner: asked for a
later time than the slot it is in, the clock leaves it there, and when that slot comes the
connection tells its true next deadline (`Timed.tick`) and goes to that slot. Asked for an
earlier time, it moves to the earlier slot (the later entry, left behind, is passed over).
"""

from __future__ import annotations

from typing import Protocol


class Timed(Protocol):
    """What the clock keeps: a connection, with the slot it is in."""

    # The slot the clock keeps it in, or 0 when it is in none (kept by the clock).
    clock_slot: int


class Clock:
    """Connections by the slot of time (`resolution` seconds wide) their deadline falls in."""

    __slots__ = ("resolution", "_slots")

    def __init__(self, resolution: float) -> None:
        self.resolution = resolution
        self._slots: dict[int, list[Timed]] = {}

    def __len__(self) -> int:
        """Entries kept (some may have moved to an earlier slot since)."""
        return sum(map(len, self._slots.values()))

    def at(self, connection: Timed, when: float) -> None:
        """Has `connection` looked at once the monotonic time `when` has passed, or sooner."""
        slot = int(when / self.resolution) + 1
        current = connection.clock_slot
        if current and current <= slot:
            return  # looked at by then anyway: it tells its next deadline then
        connection.clock_slot = slot
        entries = self._slots.get(slot)
        if entries is None:
            self._slots[slot] = [connection]
        else:
            entries.append(connection)

    def due(self, now: float) -> list[Timed]:
        """The connections whose slot has passed at `now`, taken out of the clock (each once,
        earliest slots first)."""
        last = int(now / self.resolution)
        passed = sorted(slot for slot in self._slots if slot <= last)
        out: list[Timed] = []
        for slot in passed:
            for connection in self._slots.pop(slot):
                if connection.clock_slot == slot:  # else it moved to another slot
                    connection.clock_slot = 0
                    out.append(connection)
        return out

    def empty(self) -> bool:
        return not self._slots
