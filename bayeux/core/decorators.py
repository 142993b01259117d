"""Functions registered with decorators (`@server.service`, `listener`, `subscription`,
`remote_call`, and `add_services` for marked methods): their signature checked when they are
registered, and each wrapped into the hook the server already runs, with a template's names
bound as keyword arguments.

Nothing here is on the path of a message unless a decorator registered something: a template
is served by its wildcard pattern (`templates.py`), through `add_service`,
`add_message_listener` and a server-side subscriber session.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import types
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, Protocol

from . import channel as ch
from .channels import MessageListener
from .message import Message
from .service import ServiceError, ServiceHandler, ServiceRequest
from .session import ServerSession, new_client_id
from .tasks import TaskSet
from .templates import ChannelTemplate

log = logging.getLogger("bayeux.server")
_tasks = TaskSet("a decorated function", log)

# How each kind of decorated function is called: these positional arguments, then each of the
# template's names as a keyword argument.
POSITIONAL: dict[str, tuple[str, ...]] = {
    "service": ("session", "message"),
    "remote_call": ("session", "data"),
    "listener": ("session", "channel", "message"),
    "subscription": ("message",),
}

# Where annotations.py keeps its marks on a function: [(kind, template), ...], and "start" or
# "stop" for a lifecycle hook.
MARKS = "__bayeux_handlers__"
LIFECYCLE = "__bayeux_lifecycle__"


def check_signature(function: Callable[..., Any], kind: str, template: ChannelTemplate) -> None:
    """Raises TypeError unless `function` can be called as `kind` is, with `template`'s names."""
    if not callable(function):
        raise TypeError(f"@{kind}({template.template!r}) decorates a callable, not {function!r}")
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return  # a builtin or an extension type: nothing to check
    positional = POSITIONAL[kind]
    call = ", ".join([*positional, *(f"{n}=..." for n in template.names)])
    what = getattr(function, "__qualname__", repr(function))
    parameters = signature.parameters
    has_var_keyword = any(p.kind is p.VAR_KEYWORD for p in parameters.values())
    problems = []
    slots = [
        p for p in parameters.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    has_var_positional = any(p.kind is p.VAR_POSITIONAL for p in parameters.values())
    for index, argument in enumerate(positional):
        slot = slots[index] if index < len(slots) else None
        if slot is None and not has_var_positional:
            problems.append(f"missing the positional parameter for {argument!r}")
        elif slot is not None and slot.name in template.names:
            problems.append(
                f"missing the positional parameter for {argument!r} ({slot.name!r} is the"
                f" template's {{{slot.name}}})"
            )
    for name in template.names:
        if name in positional:
            problems.append(f"the template's {{{name}}} is also a positional argument")
            continue
        parameter = parameters.get(name)
        if parameter is None and not has_var_keyword:
            problems.append(f"no parameter {name!r} for the template's {{{name}}}")
        elif parameter is not None and parameter.kind is parameter.POSITIONAL_ONLY:
            problems.append(f"parameter {name!r} is positional-only")
    if not problems:
        try:
            signature.bind(*positional, **dict.fromkeys(template.names))
        except TypeError as exc:
            problems.append(str(exc))
    if problems:
        raise TypeError(
            f"{what}{signature} cannot be called as {what}({call}) for @{kind}"
            f"({template.template!r}): {'; '.join(problems)}"
        )


def _spawned(result: Any) -> None:
    if asyncio.iscoroutine(result):
        _tasks.spawn(result)


# ------------------------------------------------------------------------------ services


class ServiceRoutes:
    """The service of one wildcard pattern, shared by the templates it serves: the first
    template (in the order registered) that matches the channel answers; a channel none of
    them matches goes to the service the pattern had before (`fallback`), or is answered
    `400:<channel>:Unknown service`."""

    def __init__(self, fallback: ServiceHandler | None) -> None:
        self.fallback = fallback
        self.routes: list[tuple[ChannelTemplate, Callable[[ServiceRequest, dict[str, str]], Any]]]
        self.routes = []

    def add(
        self, template: ChannelTemplate, call: Callable[[ServiceRequest, dict[str, str]], Any]
    ) -> None:
        """Adds a route; one for the same template replaces it (as `add_service` does)."""
        for index, (known, _) in enumerate(self.routes):
            if known == template:
                self.routes[index] = (template, call)
                return
        self.routes.append((template, call))

    def __call__(self, request: ServiceRequest) -> Any:
        channel = request.channel
        for template, call in self.routes:
            names = template.match(channel)
            if names is not None:
                return call(request, names)
        if self.fallback is not None:
            return self.fallback(request)
        raise ServiceError("Unknown service")


def service_call(
    function: Callable[..., Any], *, data: bool
) -> Callable[[ServiceRequest, dict[str, str]], Any]:
    """`function(session, message, **names)` (or `(session, data, **names)` for a remote
    call) as a route of `ServiceRoutes`: its result (awaited by the server if it is a
    coroutine) is the reply's data; ServiceError a failure."""
    if data:
        return lambda request, names: function(request.session, request.data, **names)
    return lambda request, names: function(request.session, request.message, **names)


# ----------------------------------------------------------------------------- listeners


def message_listener(template: ChannelTemplate, function: Callable[..., Any]) -> MessageListener:
    """`function(session, channel, message, **names)` as a message listener of
    `template.pattern`: channels the pattern matches but the template does not are let
    through untouched."""
    if not template.names and template.precise:
        return function  # nothing to bind: called as add_message_listener calls it

    def listener(session: ServerSession | None, channel: str, message: Message) -> Any:
        names = template.match(channel)
        if names is None:
            return None
        return function(session, channel, message, **names)

    return listener


# -------------------------------------------------------------------------- subscriptions


class TemplateSubscriber:
    """The server's own subscriber (a session living in the server, like a LocalSession's,
    subscribed from the server side without the policy): calls `function(message, **names)`
    for each message delivered on a channel of a subscription's template, on the event loop,
    never synchronously inside a publish."""

    is_stream = False

    def __init__(self, session: ServerSession) -> None:
        self.session = session
        self.routes: list[tuple[ChannelTemplate, Callable[..., Any]]] = []
        self._scheduled = False
        session.local = True
        session.deadline = None  # lives as long as the server, or until stopped
        session.attach(self)

    def wake(self) -> None:
        """Calls the subscriptions on the next turn of the loop (the core calls it)."""
        if not self._scheduled:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return  # no loop yet: what is queued goes at the next wake on the loop
            self._scheduled = True
            loop.call_soon(self._dispatch)

    def wake_after(self, seconds: float) -> None:
        """Wakes after `seconds` (a lazy message's delay; the core calls it)."""
        asyncio.get_running_loop().call_later(seconds, self.wake)

    def displace(self) -> None:
        """Nothing: no remote connect can take over a session living in the server."""

    def close(self) -> None:
        """Forgets the subscriptions; the core calls it when the session ends."""
        self.routes.clear()

    def _dispatch(self) -> None:
        self._scheduled = False
        for delivery in self.session.drain():
            message = delivery.message
            channel = message.get("channel")
            if not isinstance(channel, str):
                continue
            for template, function in list(self.routes):
                if not ch.matches(template.pattern, channel):
                    continue
                names = template.match(channel)
                if names is None:
                    continue
                try:
                    _spawned(function(message, **names))
                except Exception:
                    log.exception("subscription %s failed", template.template)


# ------------------------------------------------------------------------- service objects


def marked(obj: object) -> Iterator[tuple[str, Callable[..., Any], Any]]:
    """The functions of `obj` (an instance, whose class's methods are bound to it, or a
    module) that annotations.py marked: (name, bound function, its marks or lifecycle)."""
    if isinstance(obj, types.ModuleType):
        members = dict(vars(obj))
    else:
        members = {}
        for klass in reversed(type(obj).__mro__):
            members.update(vars(klass))
    for name, value in members.items():
        function = value.__func__ if isinstance(value, staticmethod | classmethod) else value
        marks = getattr(function, MARKS, None)
        lifecycle = getattr(function, LIFECYCLE, None)
        if marks is None and lifecycle is None:
            continue
        bound = getattr(obj, name)
        if marks:
            yield name, bound, list(marks)
        if lifecycle:
            yield name, bound, lifecycle


class ServicesHost(Protocol):
    """What `Decorated` needs from the server."""

    def new_session(self, client_id: str) -> ServerSession: ...

    def _add_session(self, session: ServerSession) -> None: ...

    def subscribe(self, session: ServerSession, pattern: str) -> None: ...

    def remove_session(self, session: ServerSession, reason: Any = ...) -> None: ...


class Decorated:
    """What the decorators registered on one server: the routes of template services, the
    server-side subscriber and its subscriptions, and the start and stop hooks of service
    objects; started and stopped with the endpoint (`start_services`, `stop_services`)."""

    def __init__(self, host: ServicesHost) -> None:
        self._host = host
        self.routes: dict[str, ServiceRoutes] = {}
        self.subscriptions: list[tuple[ChannelTemplate, Callable[..., Any]]] = []
        self.subscriber: TemplateSubscriber | None = None
        self.starts: list[Callable[[], Any]] = []
        self.stops: list[Callable[[], Any]] = []
        self.started = False

    def subscribe(self, template: ChannelTemplate, function: Callable[..., Any]) -> None:
        self.subscriptions.append((template, function))
        if self.started:
            self._subscribe(template, function)

    def _subscribe(self, template: ChannelTemplate, function: Callable[..., Any]) -> None:
        subscriber = self.subscriber
        if subscriber is None or subscriber.session.ended is not None:
            session = self._host.new_session(new_client_id())
            subscriber = self.subscriber = TemplateSubscriber(session)
            self._host._add_session(session)  # local before session listeners see it
        subscriber.routes.append((template, function))
        self._host.subscribe(subscriber.session, template.pattern)

    def lifecycle(self, start: Callable[[], Any] | None, stop: Callable[[], Any] | None) -> None:
        if start is not None:
            self.starts.append(start)
            if self.started:
                result = _call_hook(start)
                if result is not None:
                    _tasks.spawn(_awaited(result, "start"))
        if stop is not None:
            self.stops.append(stop)

    async def start(self) -> None:
        if self.started:
            return
        self.started = True
        for template, function in self.subscriptions:
            self._subscribe(template, function)
        waiting = [r for r in map(_call_hook, list(self.starts)) if r is not None]
        for result in waiting:
            await _awaited(result, "start")

    async def stop(self) -> None:
        if not self.started:
            return
        self.started = False
        for hook in list(self.stops):
            result = _call_hook(hook)
            if result is not None:
                await _awaited(result, "stop")
        subscriber, self.subscriber = self.subscriber, None
        if subscriber is not None:
            self._host.remove_session(subscriber.session)


def _call_hook(hook: Callable[[], Any]) -> Awaitable[Any] | None:
    """Calls a start or stop hook; its awaitable when it returns one. One that raises is
    logged: a broken service object must not stop the endpoint."""
    try:
        result = hook()
    except Exception:
        log.exception("start or stop hook %r failed", hook)
        return None
    return result if inspect.isawaitable(result) else None


async def _awaited(result: Awaitable[Any], what: str) -> None:
    try:
        await result
    except Exception:
        log.exception("a %s hook failed", what)
