"""What a transport needs from the endpoint that serves it.

Transports depend on this protocol, never on `bayeux.endpoint`: the endpoint mounts the
transports, so the dependency goes one way (endpoint -> adapters/connection -> transports -> core).
"""

from __future__ import annotations

from typing import Protocol

from ..core.server import BayeuxServer
from ..core.settings import Settings


class Drainable(Protocol):
    """A connection a drain must finish (a WebSocket, an EventSource stream, a held poll)."""

    def finish_draining(self) -> None: ...


class Context(Protocol):
    server: BayeuxServer
    connections: int

    @property
    def settings(self) -> Settings: ...

    def start(self) -> None:
        """Starts the endpoint's background work on the running loop (idempotent)."""

    def origin_allowed(self, origin: str, host: str | None = None) -> bool: ...

    def browser_may_hold(self, browser: str | None) -> bool: ...

    def browser_holding(self, browser: str | None, change: int) -> None: ...

    def connection_opened(self) -> None: ...

    def connection_closed(self) -> None: ...

    def stream_opened(self, stream: Drainable) -> None:
        """A connection a drain must finish."""

    def stream_closed(self, stream: Drainable) -> None: ...
