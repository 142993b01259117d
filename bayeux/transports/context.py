"""What a transport needs from the endpoint that serves it.

Transports depend on this protocol, never on `bayeux.endpoint`: the endpoint mounts the
transports, so the dependency goes one way (endpoint -> adapters/connection -> transports -> core).
"""

from __future__ import annotations

from typing import Any, Protocol

from ..core.server import BayeuxServer
from ..core.settings import Settings


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

    def stream_opened(self, stream: Any) -> None:
        """A connection a drain must finish: it has a `finish_draining()` method."""

    def stream_closed(self, stream: Any) -> None: ...
