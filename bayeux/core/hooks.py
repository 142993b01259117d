"""What an application installs on the server, and the rules for running it.

Per channel or channel pattern, the channel objects hold their own (core/channels.py):
authorizers, message listeners, a service. For the whole server: the security policy,
extensions, and listeners of sessions and subscriptions. A hook that raises costs the
message it was given (or nothing, for listeners): it is logged and counted, never
propagated into the protocol.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from . import channel as ch
from .channels import ChannelTable, ServerChannel
from .extension import Extension
from .message import Message, error
from .policy import Authorizer, Operation, SecurityPolicy, authorize, resolve
from .replies import failure
from .service import ServiceHandler
from .session import Ended, ServerSession, SessionExtension
from .stats import Stats
from .tasks import Decision, TaskSet

log = logging.getLogger("bayeux.server")

SessionListener = Callable[[ServerSession], Any]
RemovalListener = Callable[[ServerSession, Ended], Any]
SubscriptionListener = Callable[[ServerSession, str], Any]
# listener(user, online): a user's first session appeared (True) or its last one ended.
PresenceListener = Callable[[str, bool], Any]


class Hooks:
    """The application's hooks, and how each is run."""

    def __init__(self, policy: SecurityPolicy, stats: Stats, table: ChannelTable) -> None:
        self.policy = policy
        self.stats = stats
        # The channel objects, which hold the hooks per channel and pattern.
        self.table = table
        self.channels = table.by_name
        self.extensions: list[Extension] = []
        # The same, in the order they see outgoing messages: the reverse (CometD's order).
        self.outgoing_extensions: list[Extension] = []
        self.session_added: list[SessionListener] = []
        self.session_removed: list[RemovalListener] = []
        self.presence: list[PresenceListener] = []
        self.subscribed: list[SubscriptionListener] = []
        self.unsubscribed: list[SubscriptionListener] = []
        # Whether a batch may wait on a hook (an extension, authorizer, listener or service
        # may be a coroutine): only then is it charged to its address while it is handled
        # (BayeuxServer.handle; a custom policy counts too, read there). Charging every batch
        # cost 9% more instructions per exchange (benchmarks/exchange.py).
        self.waits = False
        self.session_extensions_seen = False

    # ------------------------------------------------------------------------ registration

    def on_channel(self, pattern: str) -> ServerChannel:
        """The object of `pattern` (a channel or a wildcard pattern), made on first use."""
        check_pattern(pattern)
        return self.table.channel(pattern)

    def installed(self) -> None:
        """Called after a change to the channels' hooks or to `extensions`."""
        table = self.table
        self.outgoing_extensions = self.extensions[::-1]
        self.waits = (
            bool(self.extensions)
            or table.authorized
            or table.listened
            or table.served
            or self.session_extensions_seen
        )

    # ---------------------------------------------------------------------- per channel

    def service_for(self, channel: str) -> ServiceHandler | None:
        """The service answering `channel`: its own, else the first pattern's that matches."""
        if not self.table.served:
            return None
        own = self.channels.get(channel)
        if own is not None and own.service is not None:
            return own.service
        found = self.table.hooked(channel, "service")
        return found[0].service if found else None

    def authorizers_for(self, channel: str) -> list[Authorizer]:
        if not self.table.authorized:
            return []
        hooked = self.table.hooked(channel, "authorizers")
        return [authorizer for hooks in hooked for authorizer in hooks.authorizers]

    def in_use(self, channel: str) -> bool:
        """Whether `channel` exists: subscribed to, listened to or served (else a publish or
        subscribe creates it, which the policy and authorizers may refuse)."""
        return self.table.tree.has(channel) or self.table.exists(channel)

    async def may(
        self, operation: Operation, channel: str, session: ServerSession, message: Message
    ) -> bool:
        """Whether the policy and the authorizers in scope allow `operation` on `channel`. A
        policy or authorizer that raises denies (and is logged)."""
        if type(self.policy) is SecurityPolicy and not self.table.authorized:
            return True  # nothing installed: the common case costs nothing per message
        return await self.allowed(self._checks, operation, channel, session, message)

    async def allowed(
        self, check: Callable[..., Any], *args: Any, passing: tuple[type[Exception], ...] = ()
    ) -> bool:
        """`check(*args)`, awaited if need be; a check that raises denies (and is logged),
        except with one of the `passing` exceptions, which it raises for the caller to answer."""
        try:
            return bool(await resolve(check(*args)))
        except passing:
            raise
        except Exception:
            log.exception("security policy or authorizer %r failed: denied", check)
            self.stats.errors["policy"] += 1
            return False

    async def _checks(
        self, operation: Operation, channel: str, session: ServerSession, message: Message
    ) -> bool:
        policy = self.policy
        if not self.in_use(channel):
            if not await resolve(policy.can_create(session, channel, message)):
                return False
            if not await authorize(
                self.authorizers_for(channel), Operation.CREATE, channel, session, message
            ):
                return False
        check = policy.can_subscribe if operation is Operation.SUBSCRIBE else policy.can_publish
        if not await resolve(check(session, channel, message)):
            return False
        return await authorize(self.authorizers_for(channel), operation, channel, session, message)

    async def notify_message_listeners(
        self, session: ServerSession | None, channel: str, message: Message
    ) -> bool:
        """Whether every message listener in scope keeps the message (one that raises drops
        it, and is logged)."""
        if not self.table.listened:
            return True
        for hooks in self.table.hooked(channel, "listeners"):
            for listener in hooks.listeners:
                try:
                    if await resolve(listener(session, channel, message)) is False:
                        return False
                except Exception:
                    log.exception("message listener on %s failed; message dropped", hooks.name)
                    return False
        return True

    # ------------------------------------------------------------------------ extensions

    def incoming(
        self, session: ServerSession | None, message: Message
    ) -> Message | None | Awaitable[Message | None]:
        """Runs incoming extensions: None when they keep the message, a failure reply when one
        of them dropped it (or failed: a broken extension costs the message, not the batch),
        or, once one returns an awaitable, an awaitable of either that runs the rest in turn
        (so that extensions that never await cost no coroutine)."""
        extensions = iter(self.extensions_of(session, outgoing=False))
        for extension in extensions:
            try:
                kept = extension.incoming(session, message)
            except Exception:
                return self._incoming_failed(extension, message)
            if kept is False:
                return failure(message, error(404, message["channel"], "Message deleted"))
            if kept is not True and inspect.isawaitable(kept):
                # The rest of the iterator: the extensions after this one.
                return self._incoming_later(kept, list(extensions), session, message)
        return None

    async def _incoming_later(
        self,
        pending: Awaitable[bool],
        rest: Sequence[SessionExtension],
        session: ServerSession | None,
        message: Message,
    ) -> Message | None:
        extension: object = None
        try:
            kept: Decision = await pending
            for extension in rest:
                if kept is False:
                    break
                kept = extension.incoming(session, message)
                if kept is not True and inspect.isawaitable(kept):
                    kept = await kept
        except Exception:
            return self._incoming_failed(extension, message)
        if kept is False:
            return failure(message, error(404, message["channel"], "Message deleted"))
        return None

    def _incoming_failed(self, extension: object, message: Message) -> Message:
        log.exception("extension %r failed on an incoming message", extension)
        self.stats.errors["extension"] += 1
        return failure(message, error(500, message["channel"], "Extension failed"))

    def outgoing(self, session: ServerSession | None, message: Message) -> Decision:
        if not self.extensions and (session is None or not session.extensions):
            return True  # every reply asks: nothing to run costs no call (benchmarks/exchange.py)
        return self.run_outgoing(self.extensions_of(session, outgoing=True), session, message)

    def run_outgoing(
        self,
        extensions: Sequence[SessionExtension],
        session: ServerSession | None,
        message: Message,
    ) -> Decision:
        """Whether every extension keeps `message` (one that raises drops it, and is logged):
        a bool while they answer at once, else an awaitable of it that runs the rest in turn."""
        remaining = iter(extensions)
        for extension in remaining:
            try:
                kept = extension.outgoing(session, message)
            except Exception:
                self._outgoing_failed(extension)
                return False
            if kept is False:
                return False
            if kept is not True and inspect.isawaitable(kept):
                return self._outgoing_later(kept, list(remaining), session, message)
        return True

    async def _outgoing_later(
        self,
        pending: Awaitable[bool],
        rest: Sequence[SessionExtension],
        session: ServerSession | None,
        message: Message,
    ) -> bool:
        extension = None
        try:
            if await pending is False:
                return False
            for extension in rest:
                kept = extension.outgoing(session, message)
                if kept is not True and inspect.isawaitable(kept):
                    kept = await kept
                if kept is False:
                    return False
        except Exception:
            self._outgoing_failed(extension)
            return False
        return True

    def _outgoing_failed(self, extension: object) -> None:
        log.exception("extension %r failed on an outgoing message", extension)
        self.stats.errors["extension"] += 1

    def extensions_of(
        self, session: ServerSession | None, *, outgoing: bool
    ) -> Sequence[SessionExtension]:
        own = session.extensions if session is not None else []
        if not own:
            return self.outgoing_extensions if outgoing else self.extensions
        # CometD's order: server extensions first on the way in, in the order added; on the
        # way out session extensions first, each list in reverse.
        if outgoing:
            return [*own[::-1], *self.outgoing_extensions]
        return [*self.extensions, *own]

    # ------------------------------------------------------------------------- listeners

    def added(self, session: ServerSession) -> None:
        for listener in self.session_added:
            call_listener(listener, session)

    def removed(self, session: ServerSession, reason: Ended) -> None:
        for listener in self.session_removed:
            call_listener(listener, session, reason)

    def presence_changed(self, user: str, online: bool) -> None:
        for listener in self.presence:
            call_listener(listener, user, online)

    def subscription_changed(self, session: ServerSession, pattern: str, subscribed: bool) -> None:
        for listener in self.subscribed if subscribed else self.unsubscribed:
            call_listener(listener, session, pattern)


def check_pattern(pattern: str) -> None:
    if not ch.is_valid_subscription(pattern):
        raise ValueError(f"not a channel name or pattern: {pattern!r}")


# Tasks of asynchronous listeners.
_listener_tasks = TaskSet("listener task", log)


def call_listener(listener: Callable[..., Any], *args: Any) -> None:
    """Listeners must not break the server: failures are logged; coroutines run as tasks."""
    try:
        result = listener(*args)
        if asyncio.iscoroutine(result):
            _listener_tasks.spawn(result)
    except Exception:
        log.exception("listener %r failed", listener)
