"""What the listener and its connections ask of each other: the listener owns the
connections (their clock, their count, a drain); a connection asks the listener what it
serves and hands itself over when it changes kind (an HTTP upgrade to WebSocket)."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, Protocol

from ..transports.context import Context
from ..transports.http import HttpRequest, HttpResponse
from .holding import Holding


class Connection(Protocol):
    """A connection as its listener sees it (HTTP/1.1 or WebSocket)."""

    # What it holds of its client address's memory budget (None behind a trusted proxy).
    holding: Holding | None
    # The slot of the listener's clock it is in (clock.py), 0 for none.
    clock_slot: int

    def tick(self, now: float) -> float:
        """The listener's clock, once a deadline it asked for (`ConnectionHost.wake_at`) has
        passed: gives up on a client that is too slow or idle too long, pings an idle peer.
        Returns when to be looked at next (monotonic seconds), or 0.0 for no deadline."""

    def finish_draining(self) -> None:
        """Finishes what is under way, then closes (a shutdown)."""


class ConnectionHost(Protocol):
    """What a connection may ask of the listener that accepted it."""

    context: Context
    # Whether a reverse proxy in front names each request's client (X-Real-IP and the like).
    xheaders: bool

    def serves(self, path: str) -> bool:
        """Whether `path` is the endpoint's (else an extra route may answer it)."""

    async def extra_response(self, request: HttpRequest) -> HttpResponse:
        """The answer to a request outside the endpoint's path (health, metrics, a site
        such as the admin page, 404)."""

    def client_address(self, headers: dict[str, str], peer_ip: str | None) -> str | None:
        """The client's address: the peer's, or the one a trusted proxy names."""

    def scheme(self, headers: dict[str, str]) -> str:
        """ "https" over TLS, or as a trusted proxy says; else "http"."""

    def wake_at(self, connection: Connection, when: float) -> None:
        """Has the listener's clock look at `connection` once the monotonic time `when` has
        passed (or sooner)."""

    def replace(self, old: Connection, new: Connection) -> None:
        """A connection changed kind (HTTP upgraded to WebSocket); it stays counted."""

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Runs `work` as a task the listener keeps until it is done."""

    def closed(self, connection: Connection) -> None:
        """The connection is closed: no longer counted or ticked."""
