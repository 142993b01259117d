"""Who may do what: a security policy for the whole server, and authorizers per channel pattern.

Every hook may return its answer directly or as an awaitable (a coroutine checking a token against
a database, say); the core awaits it before going on with the message.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from enum import Enum
from typing import TYPE_CHECKING, Any, TypeVar, Union

if TYPE_CHECKING:
    from .message import Message
    from .session import ServerSession

T = TypeVar("T")
# A hook's answer, given directly or by a coroutine. (Union spelling: mypy needs it for a
# generic alias.)
MaybeAwaitable = Union[T, Awaitable[T]]  # noqa: UP007


async def resolve(value: MaybeAwaitable[T]) -> T:
    """The value itself, or what it resolves to when it is awaitable."""
    if inspect.isawaitable(value):
        return await value
    return value


class SecurityPolicy:
    """Override the checks you need; the defaults allow everything, as CometD's do.

    Examples:
        >>> from bayeux.client import SyncClient
        >>> from bayeux.testing import ServerThread
        >>> class TokenPolicy(SecurityPolicy):
        ...     async def can_handshake(self, session, message):  # or a plain def
        ...         return (message.get("ext") or {}).get("token") == "s3cret"  # your check
        >>> server.policy = TokenPolicy()
        >>> with ServerThread(endpoint=Endpoint(server=server)) as running:
        ...     with SyncClient(running.url, handshake_ext={"token": "s3cret"}) as client:
        ...         print(client.state)
        connected

    Added in version 0.1.0.
    """

    def can_handshake(self, session: ServerSession, message: Message) -> MaybeAwaitable[bool]:
        """Whether `session` may be created by this handshake `message` (a coroutine function
        too). The default allows every handshake; refused, the client gets `403::Handshake
        denied` and advice not to retry.

        Examples:
            >>> from bayeux.client import SyncClient
            >>> from bayeux.testing import ServerThread
            >>> class LoggedIn(SecurityPolicy):
            ...     def can_handshake(self, session, message):
            ...         request = current_request()  # the HTTP request of the handshake
            ...         return request is not None and request.cookie("app_login") is not None
            >>> server.policy = LoggedIn()
            >>> with ServerThread(endpoint=Endpoint(server=server)) as running:
            ...     SyncClient(running.url).open()
            Traceback (most recent call last):
            ...
            bayeux.client.errors.BayeuxError: 403::Handshake denied
        """
        return True

    def can_create(
        self, session: ServerSession, channel: str, message: Message
    ) -> MaybeAwaitable[bool]:
        """Asked when a subscribe or publish names a channel nobody uses yet; refused, the
        subscribe or publish is refused as by `can_subscribe` or `can_publish`.

        Examples:
            >>> from bayeux.client import SyncClient
            >>> from bayeux.testing import ServerThread
            >>> class KnownRooms(SecurityPolicy):
            ...     def can_create(self, session, channel, message):
            ...         return channel in ("/chat/lobby", "/chat/help")
            >>> server.policy = KnownRooms()
            >>> with ServerThread(endpoint=Endpoint(server=server)) as running:
            ...     with SyncClient(running.url) as client:
            ...         client.publish("/chat/secret", "anyone?")
            Traceback (most recent call last):
            ...
            bayeux.client.errors.BayeuxError: 403:/chat/secret:Publish denied
        """
        return True

    def can_subscribe(
        self, session: ServerSession, channel: str, message: Message
    ) -> MaybeAwaitable[bool]:
        """Whether `session` may subscribe to `channel` (a name or pattern). The default allows
        it; refused, the reply is `403:<channel>:Subscription denied`.

        Examples:
            >>> from bayeux.client import SyncClient
            >>> from bayeux.testing import ServerThread
            >>> class StaffOnly(SecurityPolicy):
            ...     def can_subscribe(self, session, channel, message):
            ...         return not channel.startswith("/staff/")
            >>> server.policy = StaffOnly()
            >>> with ServerThread(endpoint=Endpoint(server=server)) as running:
            ...     with SyncClient(running.url) as client:
            ...         client.subscribe("/staff/news", print)
            Traceback (most recent call last):
            ...
            bayeux.client.errors.BayeuxError: 403:/staff/news:Subscription denied
        """
        return True

    def can_publish(
        self, session: ServerSession, channel: str, message: Message
    ) -> MaybeAwaitable[bool]:
        """Whether `session` may publish `message` on `channel`. The default allows it; refused,
        the reply is `403:<channel>:Publish denied`.

        Examples:
            >>> from bayeux.client import SyncClient
            >>> from bayeux.testing import ServerThread
            >>> class ReadOnlyNews(SecurityPolicy):
            ...     def can_publish(self, session, channel, message):
            ...         return channel != "/news"  # the server publishes there
            >>> server.policy = ReadOnlyNews()
            >>> with ServerThread(endpoint=Endpoint(server=server)) as running:
            ...     with SyncClient(running.url) as client:
            ...         client.publish("/news", "fake news")
            Traceback (most recent call last):
            ...
            bayeux.client.errors.BayeuxError: 403:/news:Publish denied
        """
        return True


class Operation(Enum):
    """What an authorizer is asked about: creating a channel, subscribing to it, or publishing on
    it.

    Examples:
        >>> from bayeux.client import SyncClient
        >>> from bayeux.testing import ServerThread
        >>> def announcements(operation, channel, session, message):
        ...     if operation is Operation.PUBLISH:
        ...         return Authorization.DENY  # clients listen; the server announces
        ...     return Authorization.GRANT
        >>> server.add_authorizer("/announce/**", announcements)
        >>> with ServerThread(endpoint=Endpoint(server=server)) as running:
        ...     with SyncClient(running.url) as client:
        ...         subscribed = client.subscribe("/announce/all", print)
        ...         client.publish("/announce/all", "hi")
        Traceback (most recent call last):
        ...
        bayeux.client.errors.BayeuxError: 403:/announce/all:Publish denied

    Added in version 0.1.0."""

    CREATE = "create"
    SUBSCRIBE = "subscribe"
    PUBLISH = "publish"


class Authorization(Enum):
    """An authorizer's answer: GRANT, DENY, or IGNORE (no opinion: the other authorizers decide).

    Examples:
        >>> from bayeux.client import SyncClient
        >>> from bayeux.testing import ServerThread
        >>> def admins_only(operation, channel, session, message):
        ...     if session.attributes.get("role") == "admin":
        ...         return Authorization.GRANT
        ...     return Authorization.IGNORE  # no GRANT from anyone: denied
        >>> server.add_authorizer("/admin/**", admins_only)
        >>> with ServerThread(endpoint=Endpoint(server=server)) as running:
        ...     with SyncClient(running.url) as client:
        ...         client.subscribe("/admin/alerts", print)
        Traceback (most recent call last):
        ...
        bayeux.client.errors.BayeuxError: 403:/admin/alerts:Subscription denied

    Added in version 0.1.0."""

    GRANT = "grant"
    DENY = "deny"
    IGNORE = "ignore"  # no opinion: another authorizer decides


Authorizer = Callable[[Operation, str, "ServerSession", "Message"], MaybeAwaitable[Authorization]]


async def authorize(
    authorizers: list[Authorizer], operation: Operation, channel: str, session: Any, message: Any
) -> bool:
    """CometD's rule: with no authorizer in scope the operation is allowed; otherwise any DENY
    denies, and it takes at least one GRANT to allow."""
    if not authorizers:
        return True
    granted = False
    for authorizer in authorizers:
        result: Authorization = await resolve(authorizer(operation, channel, session, message))
        if result is Authorization.DENY:
            return False
        granted = granted or result is Authorization.GRANT
    return granted
