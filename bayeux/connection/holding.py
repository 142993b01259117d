"""What one connection of the standalone server holds of its client address's memory budget
(core/limits.py): what it buffers (a request's head and body, a WebSocket message arriving in
fragments) and what it has written that the client has not read yet. Made when a connection is
accepted, handed on with an upgrade, settled when the connection closes."""

from __future__ import annotations

import asyncio
from typing import Any

from ..core.limits import AddressBudget, AddressBudgets


class Holding:
    """Charges to one address's budget on behalf of one connection."""

    __slots__ = ("budgets", "budget", "gathering", "unsent")

    def __init__(self, budgets: AddressBudgets, budget: AddressBudget) -> None:
        self.budgets = budgets
        self.budget: AddressBudget | None = budget
        # Bytes of input buffered (see `gather`), and of output the socket has not taken yet.
        self.gathering = 0
        self.unsent = 0

    def gather(self, size: int) -> bool:
        """Counts `size` more bytes of input buffered; False (counting nothing) when the
        address cannot afford them."""
        budget = self.budget
        if budget is None:
            return True
        if not budget.take(size):
            return False
        self.gathering += size
        return True

    def gathered(self) -> None:
        """The input buffered so far was handed on (a request answered, a message read)."""
        if self.budget is not None:
            self.budget.room += self.gathering
        self.gathering = 0

    def hold_unsent(self, size: int, written: asyncio.Future[Any]) -> bool:
        """Counts `size` bytes written but not yet taken by the socket, until `written`
        resolves (a connection waits for each write before the next); False (counting
        nothing) when the address cannot afford them: a client that does not read is then
        dropped rather than buffered for."""
        budget = self.budget
        if budget is None or size <= 0:
            return True
        if not budget.take(size):
            return False
        self.unsent += size
        written.add_done_callback(self._taken)
        return True

    def _taken(self, _written: asyncio.Future[Any]) -> None:
        if self.budget is not None:
            self.budget.room += self.unsent
        self.unsent = 0

    def close(self) -> None:
        """The connection closed: everything it held goes back (once)."""
        budget, self.budget = self.budget, None
        if budget is not None:
            self.budgets.disconnected(budget, self.gathering + self.unsent)
        self.gathering = self.unsent = 0
