"""The connection a batch arrived on, as far as the core needs to know it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .limits import AddressBudget
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
    # The sessions it created, when persistent (a shared empty tuple until then: an HTTP
    # connection's peer never needs a list; benchmarks/memory.py).
    sessions: Sequence[ServerSession] = ()
    # Its address's budget, looked up once for the batches of a persistent connection
    # (BayeuxServer.handle checks it is still current).
    budget: AddressBudget | None = None

    def created(self, session: ServerSession) -> None:
        """Counts a session this (persistent) connection created."""
        sessions = self.sessions
        if isinstance(sessions, list):
            sessions.append(session)
        else:
            self.sessions = [*sessions, session]

    def live_sessions(self) -> int:
        """Sessions this connection created that have not ended (pruning the ended ones)."""
        self.sessions = [s for s in self.sessions if s.ended is None]
        return len(self.sessions)
