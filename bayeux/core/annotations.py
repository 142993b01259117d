"""Marks on the methods of a service class (CometD's annotated services): `server.add_services(obj)`
finds them, binds them to `obj` and registers them, and ties `obj`'s start and stop hooks to
the endpoint's start and shutdown.

These decorators only mark a function (and check its template): they register nothing, and
return the function itself. The signature is checked by `add_services`, on the bound method.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from .decorators import LIFECYCLE, MARKS
from .templates import ChannelTemplate

__all__ = ["listener", "on_start", "on_stop", "remote_call", "service", "subscription"]

F = TypeVar("F", bound=Callable[..., Any])


def _mark(kind: str, channel: str) -> Callable[[F], F]:
    template = ChannelTemplate(channel)  # a bad template fails where it is written

    def mark(function: F) -> F:
        marks = getattr(function, MARKS, None)
        if marks is None:
            marks = []
            setattr(function, MARKS, marks)
        marks.append((kind, template))
        return function

    return mark


def service(channel: str) -> Callable[[F], F]:
    """Marks a method as the service of `channel` (a service channel or template):
    `add_services` registers it as `BayeuxServer.service` does, called as
    `method(session, message, **names)`.

    Examples:
        >>> from bayeux.client import SyncClient
        >>> from bayeux.testing import ServerThread
        >>> class Engines:
        ...     @bayeux.service("/service/engines/{engine_id}")
        ...     def engine(self, session, message, engine_id):
        ...         return {"engine": engine_id, "asked": message["data"]}
        >>> engines = server.add_services(Engines())
        >>> with ServerThread(endpoint=Endpoint(server=server)) as running:
        ...     with SyncClient(running.url) as client:
        ...         client.remote_call("/service/engines/e42", "status")
        {'engine': 'e42', 'asked': 'status'}

    Added in version 0.3.0."""
    return _mark("service", channel)


def remote_call(channel: str) -> Callable[[F], F]:
    """Marks a method as the target of CometD's `remoteCall` on `channel` (a service channel
    or template): called as `method(session, data, **names)`, its return value is the reply's
    data, a `ServiceError` a failure (`BayeuxServer.remote_call`).

    Examples:
        >>> from bayeux.client import SyncClient
        >>> from bayeux.testing import ServerThread
        >>> class Prices:
        ...     @bayeux.remote_call("/service/price/{symbol}")
        ...     async def price(self, session, data, symbol):
        ...         return {"symbol": symbol, "price": 42.0}
        >>> prices = server.add_services(Prices())
        >>> with ServerThread(endpoint=Endpoint(server=server)) as running:
        ...     with SyncClient(running.url) as client:
        ...         client.remote_call("/service/price/ACME", None)
        {'symbol': 'ACME', 'price': 42.0}

    Added in version 0.3.0."""
    return _mark("remote_call", channel)


def listener(channel: str) -> Callable[[F], F]:
    """Marks a method as a message listener of `channel` (a channel, pattern or template):
    called as `method(session, channel, message, **names)`, it may change the message or
    return False to drop it (`BayeuxServer.listener`).

    Examples:
        >>> from bayeux.client import SyncClient
        >>> from bayeux.testing import ServerThread
        >>> class Moderation:
        ...     @bayeux.listener("/chat/{room}")
        ...     def no_shouting(self, session, channel, message, room):
        ...         return not str(message["data"]).isupper()
        >>> moderation = server.add_services(Moderation())
        >>> with ServerThread(endpoint=Endpoint(server=server)) as running:
        ...     with SyncClient(running.url) as client:
        ...         client.publish("/chat/lobby", "HELLO")
        Traceback (most recent call last):
        ...
        bayeux.client.errors.BayeuxError: 404:/chat/lobby:Message deleted

    Added in version 0.3.0."""
    return _mark("listener", channel)


def subscription(channel: str) -> Callable[[F], F]:
    """Marks a method as a server-side subscriber of `channel` (a broadcast channel, pattern
    or template): called as `method(message, **names)` for each message published there
    (`BayeuxServer.subscription`).

    Examples:
        >>> from bayeux.client import SyncClient
        >>> from bayeux.testing import ServerThread
        >>> class Ticker:
        ...     @bayeux.subscription("/stock/{symbol}")
        ...     def ticked(self, message, symbol):
        ...         print(symbol, message["data"])
        >>> ticker = server.add_services(Ticker())
        >>> with ServerThread(endpoint=Endpoint(server=server)) as running:
        ...     with SyncClient(running.url) as client:
        ...         reply = client.publish("/stock/ACME", 42.5)
        ACME 42.5

    Added in version 0.3.0."""
    return _mark("subscription", channel)


def on_start(function: F) -> F:
    """Marks the method `add_services` calls when the endpoint starts (or at once, if it has
    started): CometD's `@PostConstruct`. It may be a coroutine function.

    Examples:
        >>> from bayeux.testing import ServerThread
        >>> class Feed:
        ...     @bayeux.on_start
        ...     async def open(self):
        ...         print("feed open")
        >>> feed = server.add_services(Feed())
        >>> with ServerThread(endpoint=Endpoint(server=server)):
        ...     pass
        feed open

    Added in version 0.3.0."""
    setattr(function, LIFECYCLE, "start")
    return function


def on_stop(function: F) -> F:
    """Marks the method `add_services` calls when the endpoint shuts down: CometD's
    `@PreDestroy`. It may be a coroutine function (awaited within the drain's timeout).

    Examples:
        >>> from bayeux.testing import ServerThread
        >>> class Feed:
        ...     @bayeux.on_stop
        ...     def close(self):
        ...         print("feed closed")
        >>> feed = server.add_services(Feed())
        >>> with ServerThread(endpoint=Endpoint(server=server)):
        ...     print("serving")
        serving
        feed closed

    Added in version 0.3.0."""
    setattr(function, LIFECYCLE, "stop")
    return function
