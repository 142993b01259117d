"""Service channels that answer requests: what the CometD JS `remoteCall()` talks to."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .context import RequestContext

if TYPE_CHECKING:
    from .message import Message
    from .policy import MaybeAwaitable
    from .session import ServerSession


class ServiceError(Exception):
    """Raised by a service handler to answer the request unsuccessfully.

    `data` travels in the reply for the client's callback, `error` as the Bayeux error string.

    Added in version 0.1.0.
    """

    def __init__(self, error: str = "Service failed", data: Any = None) -> None:
        super().__init__(error)
        self.error = error
        self.data = data


@dataclass(frozen=True)
class ServiceRequest:
    """A message published to a service channel, as its handler gets it: the `session` that
    sent it, the `channel`, the whole `message`, and the HTTP request that carried it.

    Added in version 0.1.0."""

    session: ServerSession
    channel: str
    message: Message
    # The HTTP request that carried it (core/context.py), if any.
    context: RequestContext | None = None

    @property
    def data(self) -> Any:
        """The request message's `data`."""
        return self.message.get("data")


ServiceHandler = Callable[[ServiceRequest], "MaybeAwaitable[Any]"]
