"""The listener registration methods document how their listeners are called: a listener
written to a docstring's `listener(a, b)` is called with exactly those arguments, and each
docstring's example runs and is called; the Endpoint's registrations, which hand the listener
to the server's, document the same call. (A listener that takes the wrong arguments raises a
TypeError the server only logs: without this test, wrong documentation goes unnoticed.)
tests/system/test_docstring_examples.py runs every docstring's examples under doctest."""

from __future__ import annotations

import asyncio
import doctest
import inspect
import logging
import re
import typing
from collections.abc import Callable
from typing import Any

import pytest

from bayeux.core.peer import Peer
from bayeux.core.server import BayeuxServer
from bayeux.core.settings import Settings
from bayeux.endpoint import Endpoint

# Each registration method, and how a test registers a listener with it.
REGISTRATIONS: dict[str, Callable[[BayeuxServer, Callable[..., Any]], object]] = {
    "on_session_added": lambda server, listener: server.on_session_added(listener),
    "on_session_removed": lambda server, listener: server.on_session_removed(listener),
    "on_subscribed": lambda server, listener: server.on_subscribed(listener),
    "on_unsubscribed": lambda server, listener: server.on_unsubscribed(listener),
    "on_presence": lambda server, listener: server.on_presence(listener),
    "add_message_listener": lambda server, listener: server.add_message_listener(
        "/chat/**", listener
    ),
}

# The endpoint's registrations of the same listeners (they hand them to its server's).
ENDPOINT_REGISTRATIONS: dict[str, Callable[[Endpoint, Callable[..., Any]], object]] = {
    "on_session_added": lambda endpoint, listener: endpoint.on_session_added(listener),
    "on_session_removed": lambda endpoint, listener: endpoint.on_session_removed(listener),
    "on_subscribed": lambda endpoint, listener: endpoint.on_subscribed(listener),
    "on_unsubscribed": lambda endpoint, listener: endpoint.on_unsubscribed(listener),
}

DOCUMENTED_CALL = re.compile(r"`listener\(([^)]*)\)`")


def docstring(name: str, owner: type = BayeuxServer) -> str:
    doc = inspect.getdoc(getattr(owner, name))
    assert doc, f"{owner.__name__}.{name} has no docstring"
    return doc


def documented_arguments(name: str, owner: type = BayeuxServer) -> list[str]:
    """The arguments of the first `listener(...)` the docstring of `owner.name` shows."""
    found = DOCUMENTED_CALL.search(docstring(name, owner))
    assert found, f"{owner.__name__}.{name}'s docstring does not say how the listener is called"
    return [argument.strip() for argument in found.group(1).split(",") if argument.strip()]


def example_source(name: str) -> str:
    """The code of the docstring's `Examples:` block (doctest's `>>>` lines)."""
    examples = doctest.DocTestParser().get_examples(docstring(name))
    assert examples, f"BayeuxServer.{name}'s docstring has no example"
    return "".join(example.source for example in examples)


def recorder(arguments: list[str], calls: list[tuple[Any, ...]]) -> Callable[..., Any]:
    """A listener taking exactly `arguments` (positional, no defaults) that records its calls."""
    namespace: dict[str, Any] = {"calls": calls}
    parameters = ", ".join(arguments)
    exec(
        f"def listener({parameters}):\n    calls.append(({parameters}{',' if arguments else ''}))",
        namespace,
    )
    return namespace["listener"]


async def every_event(server: BayeuxServer) -> None:
    """Handshake, subscribe, publish (shouting, for the message listener's example),
    associate with a user, unsubscribe, disconnect: an event for every listener."""
    peer = Peer(address="192.0.2.1")

    async def one(**message: Any) -> dict[str, Any]:
        outcome = await server.handle([message], peer)
        (reply,) = outcome.replies
        return reply

    reply = await one(
        channel="/meta/handshake", version="1.0", supportedConnectionTypes=["long-polling"]
    )
    assert reply["successful"], reply
    client_id = reply["clientId"]
    session = server.sessions[client_id]
    reply = await one(channel="/meta/subscribe", clientId=client_id, subscription="/chat/room")
    assert reply["successful"], reply
    await one(channel="/chat/room", clientId=client_id, data="HELLO")
    await server.associate("alice", session)
    reply = await one(channel="/meta/unsubscribe", clientId=client_id, subscription="/chat/room")
    assert reply["successful"], reply
    await one(channel="/meta/disconnect", clientId=client_id)
    assert client_id not in server.sessions
    await asyncio.sleep(0)  # any listener task spawned


def failures(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize("name", sorted(REGISTRATIONS))
def test_a_listener_written_to_the_docstring_is_called_as_documented(
    name: str, caplog: pytest.LogCaptureFixture
) -> None:
    arguments = documented_arguments(name)
    assert arguments, f"BayeuxServer.{name}'s docstring documents a listener of no argument"
    calls: list[tuple[Any, ...]] = []

    async def scenario() -> None:
        server = BayeuxServer(Settings(timeout=20000, max_interval=5000))
        REGISTRATIONS[name](server, recorder(arguments, calls))
        await every_event(server)

    with caplog.at_level(logging.ERROR):
        asyncio.run(scenario())
    assert not failures(caplog), f"listener({', '.join(arguments)}) of {name} failed"
    assert calls, f"the listener of {name} was never called"
    assert all(len(call) == len(arguments) for call in calls)


@pytest.mark.parametrize("name", sorted(ENDPOINT_REGISTRATIONS))
def test_the_endpoint_documents_the_same_call(name: str, caplog: pytest.LogCaptureFixture) -> None:
    """A listener written to the Endpoint's docstring, registered on the endpoint, is called
    as documented; and that is the call the server's own docstring documents."""
    arguments = documented_arguments(name, Endpoint)
    assert arguments == documented_arguments(name), name
    calls: list[tuple[Any, ...]] = []

    async def scenario() -> None:
        endpoint = Endpoint(Settings(timeout=20000, max_interval=5000))
        ENDPOINT_REGISTRATIONS[name](endpoint, recorder(arguments, calls))
        await every_event(endpoint.server)

    with caplog.at_level(logging.ERROR):
        asyncio.run(scenario())
    assert not failures(caplog), f"listener({', '.join(arguments)}) of Endpoint.{name} failed"
    assert calls, f"the listener of Endpoint.{name} was never called"
    assert all(len(call) == len(arguments) for call in calls)


@pytest.mark.parametrize("name", sorted(REGISTRATIONS))
def test_the_docstring_example_runs(
    name: str, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    source = example_source(name)
    arguments = documented_arguments(name)
    namespace: dict[str, Any] = {}

    async def scenario() -> None:
        server = BayeuxServer(Settings(timeout=20000, max_interval=5000))
        namespace["server"] = server
        exec(compile(source, f"<BayeuxServer.{name} example>", "exec"), namespace)
        await every_event(server)

    with caplog.at_level(logging.ERROR):
        asyncio.run(scenario())
    assert not failures(caplog), f"the example of {name} failed"
    # The example's listener takes the documented arguments, and was called (it prints).
    defined = [f for f in namespace.values() if inspect.isfunction(f)]
    assert len(defined) == 1, f"{name}'s example should define one listener"
    assert list(inspect.signature(defined[0]).parameters) == arguments
    assert capsys.readouterr().out.strip(), f"the example listener of {name} was never called"


def test_the_type_aliases_agree_with_the_docstrings() -> None:
    """The listener type each registration method is annotated with (hooks.py's aliases)
    takes the arguments its docstring documents."""
    for name in REGISTRATIONS:
        hint = typing.get_type_hints(getattr(BayeuxServer, name))["listener"]
        parameters, _ = typing.get_args(hint)
        assert len(parameters) == len(documented_arguments(name)), (name, hint)
    for name in ENDPOINT_REGISTRATIONS:
        hint = typing.get_type_hints(getattr(Endpoint, name))["listener"]
        parameters, _ = typing.get_args(hint)
        assert len(parameters) == len(documented_arguments(name, Endpoint)), (name, hint)
