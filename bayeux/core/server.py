"""The Bayeux protocol engine: takes a batch of messages in, gives replies out.

No I/O happens here. Transports decode bytes into messages, await `BayeuxServer.handle`, and write
what it returns; time comes from injected clocks, and expiry happens when the transport calls
`sweep`. A `/meta/connect` that may wait for messages comes back as a `ConnectHold` which the
transport parks and later completes with `finish_connect`.

`handle` is a coroutine so that application hooks (security policy, authorizers, message
listeners) and the engine (core/engine.py) may await; with neither it never suspends.

`BayeuxServer` is the facade of modules that each add one concern (state.py lists them):
applications call the registration methods here and `publish`/`deliver` (publishing.py),
transports `handle` and `finish_connect` (meta.py), the engine `apply_log`, `take_over` and
`let_go` (bridge.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from . import channel as ch
from .bridge import EngineBridge
from .channels import ChannelListener, Initializer, MessageListener, ServerChannel, Subscribers
from .context import RequestContext, entering, leaving
from .decorators import (
    ServiceRoutes,
    check_signature,
    marked,
    message_listener,
    service_call,
)
from .engine import EngineUnavailable, ForeignBrowser
from .extension import Extension
from .fanout import NotRepresentable
from .hooks import (
    PresenceListener,
    RemovalListener,
    SessionListener,
    SubscriptionListener,
    check_pattern,
)
from .message import Delivery, Message, error
from .peer import Peer
from .policy import Authorizer, SecurityPolicy
from .replies import (
    CLIENT_ID,
    ENGINE_UNAVAILABLE,
    MAX_MS,
    TOO_MANY_WAITING,
    failure,
    field_problem,
    non_json_problem,
    unknown_client,
)
from .service import ServiceHandler
from .session import ConnectHold, Ended, ServerSession, reply_ready
from .state import Outcome
from .templates import ChannelTemplate
from .threads import on_loop, on_loop_async
from .users import check_user

__all__ = [
    "BayeuxServer",
    "ConnectHold",
    "MessageListener",
    "NotRepresentable",
    "Outcome",
    "RemovalListener",
    "SessionListener",
    "SubscriptionListener",
]

log = logging.getLogger("bayeux.server")

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")


class BayeuxServer(EngineBridge):
    """Sessions, subscriptions, the five meta channels of Bayeux 1.0, and the hooks applications
    use: a security policy, authorizers, listeners, services and extensions.

    An application gets one from its `Endpoint` (`endpoint.server`) or gives it one
    (`Endpoint(server=...)`); transports hand it batches (`handle`).

    Examples:
        >>> server = BayeuxServer(Settings(timeout=20000), policy=SecurityPolicy())
        >>> session = server.create_session()  # a client's comes from its handshake
        >>> server.subscribe(session, "/chat/lobby")
        >>> server.publish("/chat/lobby", "hello")
        1
        >>> [delivery.message["data"] for delivery in session.drain()]
        ['hello']

    Added in version 0.1.0."""

    # ------------------------------------------------------------------------ registration

    @property
    def policy(self) -> SecurityPolicy:
        """The security policy (given to the constructor, or set here, e.g. by --app).

        Examples:
            >>> class Closed(SecurityPolicy):
            ...     def can_handshake(self, session, message):
            ...         return False
            >>> server.policy = Closed()
            >>> asyncio.run(LocalSession.connect(server))
            Traceback (most recent call last):
            ...
            PermissionError: local session refused: 403::Handshake denied

        Added in version 0.3.0."""
        return self.hooks.policy

    @policy.setter
    @on_loop
    def policy(self, policy: SecurityPolicy) -> None:
        self.hooks.policy = policy

    @property
    def extensions(self) -> list[Extension]:
        """The server's extensions, in the order they run on incoming messages.

        Examples:
            >>> server.add_extension(TimestampExtension())
            >>> [type(extension).__name__ for extension in server.extensions]
            ['TimestampExtension']

        Added in version 0.3.0."""
        return self.hooks.extensions

    @on_loop
    def add_extension(self, extension: Extension) -> None:
        """Runs `extension` on every message of every session: incoming ones in the order added,
        outgoing ones in reverse.

        Examples:
            >>> class Region(Extension):
            ...     def outgoing(self, session, message):
            ...         message.setdefault("ext", {})["region"] = "eu-1"
            ...         return True
            >>> server.add_extension(Region())
            >>> session = server.create_session()
            >>> session.deliver("/alerts", "hi")
            >>> session.queue[0].message
            {'channel': '/alerts', 'data': 'hi', 'ext': {'region': 'eu-1'}}
        """
        self.hooks.extensions = [*self.hooks.extensions, extension]
        self.hooks.installed()

    @on_loop
    def remove_extension(self, extension: Extension) -> bool:
        """Stops running `extension`; False when it was not installed.

        Examples:
            >>> region = Extension()
            >>> server.add_extension(region)
            >>> server.remove_extension(region), server.remove_extension(region)
            (True, False)

        Added in version 0.3.0."""
        if extension not in self.hooks.extensions:
            return False
        self.hooks.extensions = [e for e in self.hooks.extensions if e is not extension]
        self.hooks.installed()
        return True

    @on_loop
    def add_authorizer(self, pattern: str, authorizer: Authorizer) -> None:
        """Authorizes operations on `pattern` (a channel or a wildcard pattern covering many):
        `server.channel(pattern).add_authorizer(authorizer)`.

        Examples:
            >>> def read_only(operation, channel, session, message):
            ...     if operation is Operation.PUBLISH:
            ...         return Authorization.DENY
            ...     return Authorization.GRANT
            >>> server.add_authorizer("/news/**", read_only)
            >>> reader = asyncio.run(LocalSession.connect(server))
            >>> asyncio.run(reader.publish("/news/today", "fake news"))["error"]
            '403:/news/today:Publish denied'
        """
        self.hooks.on_channel(pattern).add_authorizer(authorizer)

    @on_loop
    def add_message_listener(self, pattern: str, listener: MessageListener) -> None:
        """Calls `listener(session, channel, message)` for every message a session publishes to
        a channel matching `pattern`, before delivery: `session` is the publisher, `channel`
        the channel published to, `message` the publish. It may change the message in place;
        returning False drops it (the publisher is told `404:<channel>:Message deleted`). It
        may be a coroutine function. The server's own `publish` does not call it.

        Examples:
            >>> def no_shouting(session, channel, message):
            ...     if str(message["data"]).isupper():
            ...         print(session.id, "shouted on", channel)
            ...         return False
            >>> server.add_message_listener("/chat/**", no_shouting)
        """
        self.hooks.on_channel(pattern).add_listener(listener)

    @on_loop
    def add_service(self, channel: str, handler: ServiceHandler) -> None:
        """Answers messages published to the service channel `channel` (or a pattern of them):
        `handler(request)` returns (or resolves to) the reply's data, or raises ServiceError.
        The reply goes to the requesting session only, with the request's id.

        Examples:
            >>> server.add_service("/service/echo", lambda request: request.data)
            >>> session = server.create_session()
            >>> call = {"channel": "/service/echo", "clientId": session.id, "id": "7", "data": "hi"}
            >>> outcome = asyncio.run(server.handle([call]))
            >>> outcome.replies[0]["successful"], session.queue[0].message
            (True, {'channel': '/service/echo', 'id': '7', 'successful': True, 'data': 'hi'})
        """
        check_pattern(channel)
        if not ch.is_service(channel):
            raise ValueError(f"services live on /service/** channels, not {channel!r}")
        served = self.hooks.on_channel(channel)
        served.service = handler
        self.channel_table.changed(served)

    @on_loop
    def set_lazy(self, pattern: str) -> None:
        """Messages on channels matching `pattern` may wait up to `max_lazy_timeout` for
        company before waking a held connect (CometD's lazy channels):
        `server.channel(pattern).lazy = True`.

        Examples:
            >>> server.set_lazy("/prices/**")
            >>> server.channel("/prices/**").lazy
            True
            >>> class Poll:  # what a transport attaches to a session
            ...     def wake_after(self, seconds):
            ...         print("wake up in", seconds, "s")
            >>> session = server.create_session()
            >>> server.subscribe(session, "/prices/ACME")
            >>> session.attach(Poll())
            >>> server.publish("/prices/ACME", 42.0)
            wake up in 5.0 s
            1
        """
        self.hooks.on_channel(pattern).lazy = True

    # -------------------------------------------------------------------------- channels

    @on_loop
    def channel(self, name: str, initializer: Initializer | None = None) -> ServerChannel:
        """The channel (or wildcard pattern) `name` as an object, made if there is none:
        `initializer(channel)` and the matching `add_channel_initializer` ones configure it
        then, and the channel-added listeners are told. The server keeps it until its
        `remove()`. CometD's `createChannelIfAbsent`.

        Raises:
            ValueError: `name` is not a channel name or pattern.

        Examples:
            >>> room = server.channel("/chat/lobby", lambda c: setattr(c, "persistent", True))
            >>> room.persistent, room is server.channel("/chat/lobby")
            (True, True)

        Added in version 0.3.0."""
        check_pattern(name)
        return self.channel_table.channel(name, initializer)

    @on_loop
    def find_channel(self, name: str) -> ServerChannel | None:
        """The object of channel `name` if there is one (asked for, or made for a
        subscription while initializers or channel listeners are installed); else None.

        Examples:
            >>> server.find_channel("/never/asked") is None
            True

        Added in version 0.3.0."""
        return self.channel_table.get(name)

    @on_loop
    def add_channel_initializer(self, pattern: str, initializer: Initializer) -> Initializer:
        """Calls `initializer(channel)` for each concrete channel matching `pattern` when its
        object is made: when the application asks for it, and when a session first subscribes
        to it (as CometD's `ConfigurableServerChannel.Initializer`; it is called
        synchronously). Never for a wildcard object (a client may subscribe to `/rooms/*`:
        hooks meant for one room would cover them all); configure patterns with
        `server.channel("/rooms/*")`. Mind `persistent`: a channel kept after its last
        subscriber leaves stays for good, and clients choose the names they subscribe to.
        Returns `initializer`.

        Examples:
            >>> def lazy_rooms(channel):
            ...     channel.lazy_timeout = 0.5
            >>> _ = server.add_channel_initializer("/rooms/*", lazy_rooms)
            >>> server.channel("/rooms/blue").lazy_timeout
            0.5

        Added in version 0.3.0."""
        check_pattern(pattern)
        self.channel_table.add_initializer(pattern, initializer)
        return initializer

    @on_loop
    def on_channel_added(self, listener: ChannelListener) -> ChannelListener:
        """Calls `listener(channel)` when a channel object is made (asked for, or a channel's
        first subscriber arrived); usable as a decorator. Synchronous. In this process only.

        Examples:
            >>> @server.on_channel_added
            ... def added(channel):
            ...     print("added", channel.name)
            >>> _ = server.channel("/rooms/green")
            added /rooms/green

        Added in version 0.3.0."""
        self.channel_table.added.append(listener)
        self.channel_table.watchers_changed()
        return listener

    @on_loop
    def on_channel_removed(self, listener: ChannelListener) -> ChannelListener:
        """Calls `listener(channel)` when a channel object goes: its `remove()`, or its last
        subscriber left and nothing keeps it (not asked for, not persistent, no hooks); usable
        as a decorator. Synchronous. In this process only.

        Examples:
            >>> @server.on_channel_removed
            ... def removed(channel):
            ...     print("removed", channel.name)
            >>> server.channel("/rooms/red").remove()
            removed /rooms/red

        Added in version 0.3.0."""
        self.channel_table.removed.append(listener)
        self.channel_table.watchers_changed()
        return listener

    @on_loop_async
    async def deployment_subscribers(self, channel: str, limit: int = 100) -> Subscribers:
        """Who subscribes to exactly `channel`: across the deployment with an engine (its
        remote clients, plus this process's server-side sessions), else in this process; at
        most `limit` clientIds listed. `ServerChannel.deployment_subscribers` calls it.

        Examples:
            >>> import asyncio
            >>> asyncio.run(server.deployment_subscribers("/chat/lobby"))
            Subscribers(count=0, client_ids=[])

        Added in version 0.3.0."""
        local = [s for s in self.tree.subscribers(channel) if s.local]
        found = None
        if self.engine.shared:
            try:
                found = await self.engine.channel_subscribers(channel, limit)
            except EngineUnavailable:
                self.stats.errors["engine"] += 1
        if found is None:
            ids = [s.id for s in self.tree.subscribers(channel)]
            return Subscribers(len(ids), ids[:limit])
        count, remote = found
        ids = [*remote, *(s.id for s in local)]
        return Subscribers(count + len(local), ids[:limit])

    @on_loop
    def on_session_added(self, listener: SessionListener) -> SessionListener:
        """Calls `listener(session)` once `session` is created: by a handshake the policy
        allowed (a client's or a `LocalSession`'s), or by `create_session`. It may be a
        coroutine function; one that raises is logged.

        Returns `listener`, so that it may decorate it: `@server.on_session_added`.

        Examples:
            >>> @server.on_session_added
            ... def added(session):
            ...     print("session added:", session.id)
            >>> session = server.create_session()
            session added: ...
        """
        self.hooks.session_added.append(listener)
        return listener

    @on_loop
    def on_session_removed(self, listener: RemovalListener) -> RemovalListener:
        """Calls `listener(session, ended)` once `session` has ended: `ended` is why, an
        `Ended` (`Ended.DISCONNECTED` when its client disconnected, `Ended.EXPIRED` when it
        timed out, `Ended.KICKED` after `disconnect`...). It may be a coroutine function; one
        that raises is logged.

        Returns `listener`, so that it may decorate it: `@server.on_session_removed`.

        Examples:
            >>> @server.on_session_removed
            ... def removed(session, ended):
            ...     print("session removed:", session.id, ended.value)
            >>> server.remove_session(server.create_session())
            session removed: ... removed
        """
        self.hooks.session_removed.append(listener)
        return listener

    @on_loop
    def on_subscribed(self, listener: SubscriptionListener) -> SubscriptionListener:
        """Calls `listener(session, channel)` once `session` has subscribed to `channel` (a
        channel or a wildcard pattern), by a `/meta/subscribe` or the server's `subscribe`.
        It may be a coroutine function; one that raises is logged.

        Returns `listener`, so that it may decorate it: `@server.on_subscribed`.

        Examples:
            >>> @server.on_subscribed
            ... def subscribed(session, channel):
            ...     print("subscribed to", channel)
            >>> server.subscribe(server.create_session(), "/chat/lobby")
            subscribed to /chat/lobby
        """
        self.hooks.subscribed.append(listener)
        return listener

    @on_loop
    def on_unsubscribed(self, listener: SubscriptionListener) -> SubscriptionListener:
        """Calls `listener(session, channel)` once `session` has unsubscribed from `channel` (a
        channel or a wildcard pattern), by a `/meta/unsubscribe` or the server's
        `unsubscribe`, or has ended while subscribed to it. It may be a coroutine function;
        one that raises is logged.

        Returns `listener`, so that it may decorate it: `@server.on_unsubscribed`.

        Examples:
            >>> @server.on_unsubscribed
            ... def unsubscribed(session, channel):
            ...     print("unsubscribed from", channel)
            >>> session = server.create_session()
            >>> server.subscribe(session, "/chat/lobby")
            >>> server.remove_session(session)  # ended while subscribed
            unsubscribed from /chat/lobby
        """
        self.hooks.unsubscribed.append(listener)
        return listener

    # ------------------------------------------------------------------------ decorators

    @on_loop
    def service(self, channel: str) -> Callable[[F], F]:
        """A decorator: the function answers messages published to `channel`, a service
        channel, pattern or template (`/service/engines/{engine_id}`), called as
        `function(session, message, **names)` with each `{name}` of the template as a keyword
        argument. It returns (or, a coroutine function, resolves to) the reply's data, or
        raises ServiceError, as `add_service`'s handlers do; the reply goes to the requester.
        The decorator returns the function.

        Templates that share a pattern (`/service/a/{x}/b` and `/service/a/{x}/c` are both
        served by `/service/a/**`) are tried in the order registered; a channel none of them
        matches goes to the pattern's earlier `add_service` handler, or is answered
        `400:<channel>:Unknown service`.

        Raises:
            ValueError: `channel` is not a valid service channel, pattern or template.
            TypeError: (when decorating) the function cannot be called that way: the
                message names what is missing.

        Examples:
            >>> @server.service("/service/engines/{engine_id}")
            ... def engine(session, message, engine_id):
            ...     return {"engine": engine_id, "asked": message["data"]}

        Added in version 0.3.0."""
        return self._decorator("service", channel)

    @on_loop
    def remote_call(self, channel: str) -> Callable[[F], F]:
        """A decorator for the target of CometD's `remoteCall` on `channel` (a service
        channel, pattern or template): called as `function(session, data, **names)` with the
        call's data; its return value (awaited, from a coroutine function) is the reply's
        data, a ServiceError the failure the caller sees (`400:<channel>:<error>`, with its
        `data`). Otherwise as `service`.

        Examples:
            >>> @server.remote_call("/service/price/{symbol}")
            ... async def price(session, data, symbol):
            ...     if symbol != "ACME":
            ...         raise ServiceError("Unknown symbol", {"symbol": symbol})
            ...     return {"symbol": symbol, "price": 42.0}

        Added in version 0.3.0."""
        return self._decorator("remote_call", channel)

    @on_loop
    def listener(self, channel: str) -> Callable[[F], F]:
        """A decorator: the function is a message listener (`add_message_listener`) of
        `channel`, a channel, pattern or template (`/chat/{room}`), called as
        `function(session, channel, message, **names)` for every message a session publishes
        on a matching channel, before delivery. It may change the message; returning False
        drops it (the publisher is told `404:<channel>:Message deleted`). It may be a coroutine
        function. The decorator returns the function.

        Examples:
            >>> @server.listener("/chat/{room}")
            ... def no_shouting(session, channel, message, room):
            ...     return not str(message["data"]).isupper()

        Added in version 0.3.0."""
        return self._decorator("listener", channel)

    @on_loop
    def subscription(self, channel: str) -> Callable[[F], F]:
        """A decorator: the function is a subscriber living in the server, called as
        `function(message, **names)` for each message published on a broadcast channel
        matching `channel` (a channel, pattern or template: `/stock/{symbol}`), by clients
        or by the server's `publish`, on the event loop, never inside the publish. It may be
        a coroutine function. Its session (one for all of them, subscribed from the server
        side, past the policy; session listeners see it, `session.local` True) is made by
        `start_services`, which the endpoint calls when it starts. The decorator returns the
        function.

        Examples:
            >>> @server.subscription("/stock/{symbol}")
            ... def ticked(message, symbol):
            ...     print(symbol, message["data"])

        Added in version 0.3.0."""
        return self._decorator("subscription", channel)

    def _decorator(self, kind: str, channel: str) -> Callable[[F], F]:
        template = ChannelTemplate(channel)
        self._check_kind(kind, template)

        def decorate(function: F) -> F:
            self._register(kind, template, function)
            return function

        return decorate

    @staticmethod
    def _check_kind(kind: str, template: ChannelTemplate) -> None:
        pattern = template.pattern
        if kind in ("service", "remote_call") and not ch.is_service(pattern):
            raise ValueError(f"services live on /service/** channels, not {template.template!r}")
        if kind == "subscription" and not ch.is_broadcast(pattern):
            raise ValueError(f"subscriptions are to broadcast channels: {template.template!r}")
        if kind == "listener" and ch.is_meta(pattern):
            raise ValueError(f"meta channels have no message listeners: {template.template!r}")
        check_pattern(pattern)

    @on_loop
    def _register(self, kind: str, template: ChannelTemplate, function: Callable[..., Any]) -> None:
        check_signature(function, kind, template)
        registry = self.decorated
        if kind == "listener":
            self.add_message_listener(template.pattern, message_listener(template, function))
        elif kind == "subscription":
            registry.subscribe(template, function)
        else:
            pattern = template.pattern
            installed = self.hooks.channels.get(pattern)
            current = installed.service if installed is not None else None
            routes = registry.routes.get(pattern)
            if routes is None or current is not routes:
                routes = registry.routes[pattern] = ServiceRoutes(current)
                self.add_service(pattern, routes)
            routes.add(template, service_call(function, data=kind == "remote_call"))

    @on_loop
    def add_services(self, obj: T) -> T:
        """Registers the methods of `obj` (or the functions of a module) marked with
        `bayeux.service`, `bayeux.remote_call`, `bayeux.listener` and `bayeux.subscription`,
        bound to it, as the decorators of the same names do (each signature checked now); its
        method marked `bayeux.on_start` is called when the endpoint starts (at once if it
        has), the one marked `bayeux.on_stop` when it shuts down: CometD's annotated service
        objects, with `@PostConstruct` and `@PreDestroy`. Either may be a coroutine function.
        Returns `obj`.

        Raises:
            TypeError: a marked method cannot be called as its mark says (nothing of `obj`
                is registered then).

        Examples:
            >>> class Engines:
            ...     @bayeux.service("/service/engines/{engine_id}")
            ...     def engine(self, session, message, engine_id):
            ...         return {"engine": engine_id}
            ...
            ...     @bayeux.on_start
            ...     async def open(self):
            ...         print("engines ready")
            >>> engines = server.add_services(Engines())

        Added in version 0.3.0."""
        found = list(marked(obj))
        registrations: list[tuple[str, ChannelTemplate, Callable[..., Any]]] = []
        start = stop = None
        for _, function, marks in found:
            if marks == "start":
                start = function
            elif marks == "stop":
                stop = function
            else:
                for kind, template in marks:
                    self._check_kind(kind, template)
                    check_signature(function, kind, template)
                    registrations.append((kind, template, function))
        for kind, template, function in registrations:
            self._register(kind, template, function)
        self.decorated.lifecycle(start, stop)
        return obj

    @on_loop_async
    async def start_services(self) -> None:
        """Starts what the decorators registered: the session of `subscription`s subscribes,
        and the start hooks of `add_services` objects run (the asynchronous ones awaited).
        `Endpoint.start` calls it; call it yourself when you drive a `BayeuxServer` without
        an endpoint. Calling it again does nothing until `stop_services`.

        Examples:
            >>> @server.subscription("/stock/{symbol}")
            ... def ticked(message, symbol):
            ...     print(symbol, message["data"])
            >>> async def main():
            ...     await server.start_services()
            ...     server.publish("/stock/ACME", 42.0)
            ...     await asyncio.sleep(0)  # subscriptions are called on the loop's next turn
            ...     await server.stop_services()
            >>> asyncio.run(main())
            ACME 42.0

        Added in version 0.3.0."""
        await self.decorated.start()

    @on_loop_async
    async def stop_services(self) -> None:
        """Runs the stop hooks of `add_services` objects (the asynchronous ones awaited), and
        ends the session of `subscription`s; `Endpoint.shutdown` calls it.

        Examples:
            >>> class Feed:
            ...     @bayeux.on_start
            ...     def open(self):
            ...         print("feed open")
            ...
            ...     @bayeux.on_stop
            ...     async def close(self):
            ...         print("feed closed")
            >>> feed = server.add_services(Feed())
            >>> asyncio.run(server.start_services())
            feed open
            >>> asyncio.run(server.stop_services())
            feed closed

        Added in version 0.3.0."""
        await self.decorated.stop()

    # ----------------------------------------------------------------------------- users

    @on_loop
    def on_presence(self, listener: PresenceListener) -> PresenceListener:
        """Calls `listener(user, online)`: `user` (the id given to `associate`) has its first
        session in the deployment (`online` is True), or its last one ended (False:
        disconnected, expired, kicked, dissociated; with --redis also its process's crash,
        within maxInterval plus a sweep). Told once, on one process. It may be a coroutine
        function; one that raises is logged.

        Returns `listener`, so that it may decorate it: `@server.on_presence`.

        Examples:
            >>> @server.on_presence
            ... def presence(user, online):
            ...     print(user, "is", "online" if online else "offline")

        Added in version 0.3.0."""
        self.hooks.presence.append(listener)
        return listener

    @on_loop_async
    async def deliver_to_user(self, user: str, channel: str, data: Any) -> int:
        """Sends a message to every session of `user`, whichever process serves it; returns
        how many. With --redis it goes through the log, as a broadcast does: in order with
        the rest, and through the crash of a process serving one (the ack extension then
        loses nothing); the server's outgoing extensions see it once here, each session's
        own where it is served.

        Raises:
            ValueError: `user` is not 1 to 256 printable characters.

        Examples:
            >>> phone, laptop = server.create_session(), server.create_session()
            >>> for session in (phone, laptop):
            ...     asyncio.run(server.associate("alice", session))
            >>> asyncio.run(server.deliver_to_user("alice", "/alerts", "hi"))
            2
            >>> [delivery.message["data"] for delivery in phone.queue]
            ['hi']

        Added in version 0.3.0."""
        check_user(user)
        if not self.engine.shared:
            sessions = self.users.sessions_of(user)
            for session in sessions:
                self.deliver(session, channel, data)
            return len(sessions)
        delivery = await self._logged_delivery(channel, data)
        return 0 if delivery is None else await self.engine.deliver_to_user(user, delivery)

    @on_loop_async
    async def deliver_to_client(self, client_id: str, channel: str, data: Any) -> bool:
        """Sends a message to one session by its clientId, whichever process serves it (with
        --redis through the log, as `deliver_to_user` does); False when there is no engine
        and this process has no such session.

        Examples:
            >>> session = server.create_session()
            >>> asyncio.run(server.deliver_to_client(session.id, "/alerts", "hi"))
            True
            >>> [delivery.message["data"] for delivery in session.queue]
            ['hi']
            >>> asyncio.run(server.deliver_to_client("ab" * 20, "/alerts", "hi"))
            False

        Added in version 0.3.0."""
        if not self.engine.shared:
            session = self.sessions.get(client_id)
            if session is None:
                return False
            self.deliver(session, channel, data)
            return True
        delivery = await self._logged_delivery(channel, data)
        if delivery is not None:
            await self.engine.deliver_to(client_id, delivery)
        return True

    async def _logged_delivery(self, channel: str, data: Any) -> Delivery | None:
        """A message for some sessions, to go through the log: checked, past the server's
        outgoing extensions (None if one dropped it), encoded."""
        if not self.channels.valid_name(channel) or ch.is_meta(channel):
            raise ValueError(f"cannot deliver on {channel!r}")
        message: Message = {"channel": channel, "data": data}
        kept = self._outgoing_broadcast(message)
        if kept is not True and kept is not False:
            kept = await kept
        return self._encoded(message) if kept else None

    @on_loop_async
    async def online_users(self, limit: int = 1000) -> list[str]:
        """At most `limit` users with a session in the deployment (in no particular order).

        Raises:
            ValueError: `limit` is not an int from 1 to 100,000.

        Examples:
            >>> asyncio.run(server.associate("alice", server.create_session()))
            >>> asyncio.run(server.online_users())
            ['alice']

        Added in version 0.3.0."""
        if isinstance(limit, bool) or not isinstance(limit, int) or not 0 < limit <= 100_000:
            raise ValueError(f"limit must be an int from 1 to 100000, not {limit!r}")
        if not self.engine.shared:
            return self.users.online(limit)
        return await self.engine.online_users(limit)

    # ------------------------------------------------------------------------ sessions

    @on_loop
    def disconnect(self, session: ServerSession) -> None:
        """Ends `session` and tells its client to stop, as CometD's ServerSession.disconnect()
        does: its held connect, or else its next one within its interval plus maxInterval
        (`stop_ms`), is answered with advice `reconnect: none`, and session listeners are told
        `Ended.KICKED`.
        `remove_session`, by contrast, lets the client handshake again.

        Examples:
            >>> session = server.create_session()
            >>> server.disconnect(session)
            >>> session.ended
            <Ended.KICKED: 'kicked'>
            >>> connect = {"channel": "/meta/connect", "clientId": session.id,
            ...            "connectionType": "long-polling"}
            >>> reply = asyncio.run(server.handle([connect])).replies[0]
            >>> reply["error"], reply["advice"]
            ('402::Disconnected by the server', {'reconnect': 'none', 'interval': 0})
        """
        if session.remote:
            # Served by another process: it is told, and every process remembers it (a
            # failure is logged: the client then handshakes again at worst).
            self._tasks.spawn(self.engine.end(session.id, self.stop_ms(session)))
            # The view ends here too, so that nothing more is sent to it (a service's reply
            # to the kicking call, say), as for a session kicked where it is served; the
            # serving process tells the listeners.
            session.end(Ended.KICKED)
            return
        if self.sessions.get(session.id) is not session:
            return
        self.stopped(session.id, self.stop_ms(session) / 1000)
        self.remove_session(session, Ended.KICKED)

    @on_loop
    def set_timing(
        self,
        session: ServerSession,
        *,
        timeout: int | None = None,
        interval: int | None = None,
        max_interval: int | None = None,
    ) -> None:
        """Gives `session` its own timeout, interval and maxInterval in ms (None: the
        server's setting), as CometD's ServerSession does: for a mobile client that should
        poll less often, a dashboard that may be away longer. Its next connect reply advises
        them, its connects are held that long, and it expires maxInterval after its last one;
        with an engine, on whichever process serves it. A security policy may call it from
        can_handshake, so that the handshake reply already advises them.

        Raises:
            ValueError: a value is not None or an int of ms from 0 to 2^31 - 1.

        Examples:
            >>> session = server.create_session()
            >>> server.set_timing(session, timeout=60000, max_interval=120000)
            >>> server.timing(session)  # timeout, interval, maxInterval
            (60000, 0, 120000)

        Added in version 0.3.0."""
        for name, value in (
            ("timeout", timeout),
            ("interval", interval),
            ("max_interval", max_interval),
        ):
            if value is not None and (
                not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_MS
            ):
                raise ValueError(f"{name} must be None or an int of ms in [0, {MAX_MS}]")
        session.timeout, session.interval, session.max_interval = timeout, interval, max_interval
        if self.sessions.get(session.id) is session:
            if session.held is None and session.ended is None:
                session.deadline = self.expiry(self.timing(session)[1] / 1000, session)
            if not session.local:
                self.engine.timing_changed(session)

    # ----------------------------------------------------------------------------- the batch

    def batches_may_wait(self) -> bool:
        """Whether a batch may wait while it is handled: on an application's hook (an
        extension, authorizer, listener, service or custom policy, any of which may be a
        coroutine) or on the engine's log. Only then is it charged to its address (`handle`),
        and a large one from a busy address refused before it is read.

        Examples:
            >>> server.batches_may_wait()
            False
            >>> server.add_message_listener("/chat/**", lambda session, channel, message: True)
            >>> server.batches_may_wait()
            True

        Added in version 0.3.0."""
        hooks = self.hooks
        return hooks.waits or type(hooks.policy) is not SecurityPolicy or self.engine.shared

    async def handle(
        self,
        messages: list[Message],
        peer: Peer | None = None,
        request: RequestContext | None = None,
        *,
        cost: int = 0,
    ) -> Outcome:
        """Handles one batch from one connection (`peer`, when the transport knows it) that
        came with HTTP request `request` (hooks read it with `current_request()`).

        `cost` is what the decoded batch holds in memory (`message.decoded_cost`; transports
        give it when `batches_may_wait()`, else 0): it counts against its address's budget
        (--max-address-bytes) while the batch is handled, and its messages against
        --max-extension-backlog; a batch past either is refused whole, each message with
        503::Too many messages waiting and advice to retry.

        Examples:
            >>> handshake = {"channel": "/meta/handshake", "version": "1.0",
            ...              "supportedConnectionTypes": ["long-polling"]}
            >>> reply = asyncio.run(server.handle([handshake])).replies[0]
            >>> publish = {"channel": "/chat/lobby", "clientId": reply["clientId"], "data": "hi"}
            >>> asyncio.run(server.handle([publish])).replies
            [{'channel': '/chat/lobby', 'successful': True}]
        """
        if asyncio.get_running_loop() is not self.loop_owner.loop:
            self.loop_owner.bind_running()
        peer = peer or Peer()
        budget = None
        count = len(messages)  # charged as it came (a handshake's batch is cut to one below)
        if cost and peer.address is not None:
            budget = peer.budget
            if budget is None or not self.budgets.holds(budget):
                budget = peer.budget = self.budgets.of(peer.address)
            if not self.budgets.charge_batch(
                budget, cost, count, self.settings.max_extension_backlog
            ):
                self.stats.refused["batch-waiting"] += 1
                return Outcome(replies=[failure(m, *TOO_MANY_WAITING) for m in messages])
        token = entering(request) if request is not None else None
        attributes_before = self.attribute_write
        try:
            outcome = Outcome([])
            if len(messages) > 1:
                handshake = next((m for m in messages if m["channel"] == ch.META_HANDSHAKE), None)
                if handshake is not None:
                    # Bayeux 1.0: a server MUST ignore other messages sent with a handshake;
                    # and one batch makes at most one session.
                    messages = [handshake]
            for message in messages:
                try:
                    await self._handle_one(message, peer, outcome, request)
                except Exception:
                    # A bug here must cost this message only, never the batch or the connection.
                    channel = message["channel"][:64]
                    log.exception("internal error handling a message on %r", channel)
                    self.stats.errors["handle"] += 1
                    outcome.replies.append(failure(message, error(500, "", "Internal error")))
            if outcome.appends:
                # Each settles within the engine's command timeout: in the log, or delivered
                # here.
                await asyncio.wait(outcome.appends)
            if outcome.deciding:
                await self._decided(outcome)
            written = self.attribute_write
            if written is not attributes_before and written is not None and not written.done():
                # Attributes changed by this batch's hooks are in the session's record before
                # its client hears back (its next request may reach another process).
                await asyncio.wait([written])
            return outcome
        finally:
            if token is not None:
                leaving(token)
            if budget is not None:
                self.budgets.discharge_batch(budget, cost, count)

    async def _handle_one(
        self, message: Message, peer: Peer, outcome: Outcome, request: RequestContext | None
    ) -> None:
        channel = message["channel"]
        self.stats.messages_in[
            "meta" if ch.is_meta(channel) else "service" if ch.is_service(channel) else "broadcast"
        ] += 1
        session = self._session_of(message)
        if session is None and self.engine.shared and channel != ch.META_HANDSHAKE:
            client_id = message.get("clientId")
            if (
                peer.persistent
                and self.settings.require_handshake_per_connection
                and isinstance(client_id, str)
                and CLIENT_ID.match(client_id)
            ):
                # Not served here, so not handshaken on this connection: refused before the
                # session moves, which would cost its own client its connection.
                self.stats.refused["other-connection"] += 1
                self._emit(outcome, None, unknown_client(message))
                return
            try:
                session = await self._shared_session(message, request)
            except EngineUnavailable:
                self.stats.errors["engine"] += 1
                outcome.replies.append(failure(message, *ENGINE_UNAVAILABLE))
                return
            except ForeignBrowser:
                self.stats.refused["other-browser"] += 1
                self._emit(outcome, None, unknown_client(message))
                return
        if session is not None:
            # A clientId alone is not enough to use a session: refused like an unknown one.
            refused = self.foreign(session, peer, request)
            if refused is not None:
                self.stats.refused[refused] += 1
                self._emit(outcome, None, unknown_client(message))
                return
            if request is not None:
                session.context = request
        problem = field_problem(message)
        if problem is None and peer.binary:
            problem = non_json_problem(message)
        if problem is not None:
            self._emit(outcome, session, failure(message, problem))
            return
        if self.hooks.extensions or (session is not None and session.extensions):
            if (
                not self.hooks.session_extensions_seen
                and session is not None
                and session.extensions
            ):
                # From now on batches may wait on a session's extension: charge them.
                self.hooks.session_extensions_seen = True
                self.hooks.installed()
            rejected = self.hooks.incoming(session, message)
            if rejected is not None and not isinstance(rejected, dict):
                rejected = await rejected  # an asynchronous extension
            if rejected is not None:
                self._emit(outcome, session, rejected)
                return
        channel = message["channel"]
        if channel == ch.META_CONNECT:
            reply, hold = self._connect(message, session)
            if hold is None:
                self._emit(outcome, session, reply)
            else:
                if outcome.connect is not None:
                    # Two connects in one batch: the earlier one is answered at once.
                    earlier, reply_now = self.finish_connect(outcome.connect)
                    if outcome.connect.pending is not None:
                        await reply_ready(outcome.connect)
                    outcome.replies.extend(d.message for d in earlier)
                    outcome.replies.append(reply_now)
                outcome.connect = hold
            return
        reply = await self._dispatch(channel, message, session, peer, outcome)
        if channel == ch.META_HANDSHAKE and reply.get("successful"):
            session = self.sessions.get(reply["clientId"])
        self._emit(outcome, session, reply)

    async def _dispatch(
        self,
        channel: str,
        message: Message,
        session: ServerSession | None,
        peer: Peer,
        outcome: Outcome,
    ) -> Message:
        if channel == ch.META_HANDSHAKE:
            return await self._handshake(message, peer)
        if session is None:
            if ch.is_meta(channel) and channel not in ch.META_CHANNELS:
                return failure(message, error(404, channel, "Unknown meta channel"))
            if not ch.is_meta(channel) and not self.channels.valid_name(channel):
                return failure(message, error(405, channel, "Invalid channel"))
            return unknown_client(message)
        if channel == ch.META_DISCONNECT:
            return await self._disconnect(message, session)
        if channel == ch.META_SUBSCRIBE:
            return await self._subscribe(message, session, subscribe=True)
        if channel == ch.META_UNSUBSCRIBE:
            return await self._subscribe(message, session, subscribe=False)
        if ch.is_meta(channel):
            # Exact names only: "/meta/subscribe/x" is not "/meta/subscribe".
            return failure(message, error(404, channel, "Unknown meta channel"))
        return await self._publish(message, session, outcome)

    def foreign(
        self, session: ServerSession, peer: Peer, request: RequestContext | None
    ) -> str | None:
        """Why a message may not use `session` from where it came, or None: another
        connection than the one it was handshaken on (when required), or another browser
        (or, untrusted, no browser cookie at all).

        Examples:
            >>> from bayeux.core.peer import Peer
            >>> session = server.create_session()
            >>> server.foreign(session, Peer(), None) is None  # anyone with its clientId
            True
            >>> strict = BayeuxServer(Settings(require_handshake_per_connection=True))
            >>> session = strict.create_session()
            >>> strict.foreign(session, Peer(persistent=True), None)  # a WebSocket of its own
            'other-connection'

        Added in version 0.3.0."""
        settings = self.settings
        if (
            peer.persistent
            and settings.require_handshake_per_connection
            and session not in peer.sessions
        ):
            return "other-connection"
        if session.browser is None:
            return None
        allowed = self.browser_allowed(request)
        return None if allowed is None or allowed == session.browser else "other-browser"

    def _emit(self, outcome: Outcome, session: ServerSession | None, reply: Message) -> None:
        """Runs outgoing extensions on a reply, keeping it unless one of them drops it (the
        asynchronous ones decide before the batch is answered)."""
        if reply.get("successful") is False:
            self.stats.error_replies[str(reply.get("error", ""))[:3]] += 1
        kept = self.hooks.outgoing(session, reply)
        if kept is True:
            outcome.replies.append(reply)
        elif kept is not False:
            outcome.replies.append(reply)
            outcome.deciding.append((reply, kept))

    async def _decided(self, outcome: Outcome) -> None:
        """Waits for the replies' asynchronous outgoing extensions, dropping what they drop."""
        deciding, outcome.deciding = outcome.deciding, []
        results = await asyncio.gather(*(kept for _, kept in deciding))
        pairs = zip(deciding, results, strict=True)
        dropped = {id(reply) for (reply, _), kept in pairs if not kept}
        if dropped:
            outcome.replies = [r for r in outcome.replies if id(r) not in dropped]
