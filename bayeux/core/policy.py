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
        >>> class TokenPolicy(SecurityPolicy):
        ...     async def can_handshake(self, session, message):
        ...         return await tokens.valid((message.get("ext") or {}).get("token"))

    Added in version 0.1.0.
    """

    def can_handshake(self, session: ServerSession, message: Message) -> MaybeAwaitable[bool]:
        """Whether `session` may be created by this handshake `message` (a coroutine function
        too). The default allows every handshake; refused, the client gets `403::Handshake
        denied` and advice not to retry."""
        return True

    def can_create(
        self, session: ServerSession, channel: str, message: Message
    ) -> MaybeAwaitable[bool]:
        """Asked when a subscribe or publish names a channel nobody uses yet."""
        return True

    def can_subscribe(
        self, session: ServerSession, channel: str, message: Message
    ) -> MaybeAwaitable[bool]:
        """Whether `session` may subscribe to `channel` (a name or pattern). The default allows
        it; refused, the reply is `403:<channel>:Subscription denied`."""
        return True

    def can_publish(
        self, session: ServerSession, channel: str, message: Message
    ) -> MaybeAwaitable[bool]:
        """Whether `session` may publish `message` on `channel`. The default allows it; refused,
        the reply is `403:<channel>:Publish denied`."""
        return True


class Operation(Enum):
    """What an authorizer is asked about: creating a channel, subscribing to it, or publishing on
    it.

    Added in version 0.1.0."""

    CREATE = "create"
    SUBSCRIBE = "subscribe"
    PUBLISH = "publish"


class Authorization(Enum):
    """An authorizer's answer: GRANT, DENY, or IGNORE (no opinion: the other authorizers decide).

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
