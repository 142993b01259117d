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

    Examples:
        >>> from bayeux.client import BayeuxError, SyncClient
        >>> from bayeux.testing import ServerThread
        >>> @server.remote_call("/service/price")
        ... def price(session, data):
        ...     raise ServiceError("Unknown symbol", {"symbol": data})
        >>> with ServerThread(endpoint=Endpoint(server=server)) as running:
        ...     with SyncClient(running.url) as client:
        ...         try:
        ...             client.remote_call("/service/price", "XYZ")
        ...         except BayeuxError as error:
        ...             print(error, error.reply["data"])
        400:/service/price:Unknown symbol {'symbol': 'XYZ'}

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

    Examples:
        >>> from bayeux.client import SyncClient
        >>> from bayeux.testing import ServerThread
        >>> def echo(request):  # the reply's data
        ...     return {"channel": request.channel, "said": request.message["data"]}
        >>> server.add_service("/service/echo", echo)
        >>> with ServerThread(endpoint=Endpoint(server=server)) as running:
        ...     with SyncClient(running.url) as client:
        ...         client.remote_call("/service/echo", "hello")
        {'channel': '/service/echo', 'said': 'hello'}

    Added in version 0.1.0."""

    session: ServerSession
    channel: str
    message: Message
    # The HTTP request that carried it (core/context.py), if any.
    context: RequestContext | None = None

    @property
    def data(self) -> Any:
        """The request message's `data`.

        Examples:
            >>> from bayeux.client import SyncClient
            >>> from bayeux.testing import ServerThread
            >>> server.add_service("/service/upper", lambda request: request.data.upper())
            >>> with ServerThread(endpoint=Endpoint(server=server)) as running:
            ...     with SyncClient(running.url) as client:
            ...         client.remote_call("/service/upper", "hello")
            'HELLO'
        """
        return self.message.get("data")


ServiceHandler = Callable[[ServiceRequest], "MaybeAwaitable[Any]"]
