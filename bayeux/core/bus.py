"""The bus: how the processes of one deployment share what is published to them.

One process alone needs no bus. With several (behind a load balancer, or on several machines),
each keeps its own sessions and subscriptions, and the bus carries every published message to the
other processes, which deliver it to their own subscribers. See bayeux/redis_bus.py.
"""

from __future__ import annotations

from typing import Protocol

from .message import Message


class Bus(Protocol):
    def share(self, message: Message, encoded: bytes) -> None:
        """Hands a message, already delivered locally, to the other processes. Must not block
        or raise: a bus that cannot reach its peers drops and reports, local delivery goes on."""
