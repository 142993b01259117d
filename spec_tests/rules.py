"""The rule registry: each conformance rule is an async function checking one requirement of the
Bayeux 1.0 specification (as the CometD documentation states it) over one transport."""

from __future__ import annotations

import asyncio
import inspect
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .client import Client
from .wire import TRANSPORTS

T = TypeVar("T")

PROFILES = {
    "core": "what every Bayeux 1.0 server must do (MUST and SHOULD of the specification)",
    "cometd": "what CometD servers add and CometD clients rely on (client advice, CORS, sub-paths)",
    "robustness": "how a production server treats hostile or broken input",
    "replay": "durable replay as Salesforce Streaming clients expect it (n/a where not offered)",
}
SPEC = "https://docs.cometd.org/current/reference/#"


class NotApplicable(Exception):
    """The rule checks an optional feature this server does not offer (an extension, say)."""


class CannotCheck(Exception):
    """The rule cannot be checked against this server within the suite's time bounds (its
    settings): the run is incomplete, and says so in its exit status."""


# The longest a rule waits for something the server's advice announces (a held connect's
# timeout, a session's expiry): past this the rule cannot be checked.
MAX_WAIT = 60.0


@dataclass
class Context:
    """What a rule gets: the server URL and transport, and clients that are closed afterwards."""

    url: str
    transport: str
    timeout: float = MAX_WAIT + 10
    clients: list[Client] = field(default_factory=list)
    # Rules run concurrently against one server: each run publishes under its own prefix.
    prefix: str = field(default_factory=lambda: "/spec/" + secrets.token_hex(6))

    def ch(self, name: str) -> str:
        """A channel private to this rule run, e.g. ctx.ch("chat") -> /spec/1a2b3c4d5e6f/chat."""
        return f"{self.prefix}/{name}"

    tasks: list[asyncio.Future[Any]] = field(default_factory=list)

    def spawn(self, coroutine: Awaitable[T]) -> asyncio.Future[T]:
        """Runs a request concurrently; whatever becomes of it is collected when the rule ends."""
        task = asyncio.ensure_future(coroutine)
        self.tasks.append(task)
        return task

    def client(self, *, same_browser_as: Client | None = None) -> Client:
        """A new client; `same_browser_as` makes it a second connection of that client's
        session, sharing its clientId and cookie jar as another tab of one browser would."""
        client = Client(self.url, self.transport, timeout=self.timeout)
        if same_browser_as is not None:
            client.client_id = same_browser_as.client_id
            client.wire.cookies = same_browser_as.wire.cookies
        self.clients.append(client)
        return client

    async def started(self) -> Client:
        """A client that has handshaken and done its first connect."""
        client = self.client()
        await client.start()
        return client

    async def close(self) -> None:
        for task in self.tasks:
            if not task.done():
                task.cancel()
            elif not task.cancelled():
                task.exception()  # collected: the rule has already judged the outcome
        for client in self.clients:
            try:
                await client.close()
            except Exception:  # noqa: BLE001 - closing is best effort
                pass


RuleFunction = Callable[[Context], Awaitable[None]]


@dataclass(frozen=True)
class Rule:
    id: str
    section: str
    profile: str
    transports: tuple[str, ...]
    text: str
    run: RuleFunction

    @property
    def link(self) -> str:
        return SPEC + self.section


RULES: dict[str, Rule] = {}


def rule(
    id: str, *, section: str, profile: str = "core", transports: tuple[str, ...] = TRANSPORTS
) -> Callable[[RuleFunction], RuleFunction]:
    """Registers a rule; its docstring is the requirement in one sentence."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}")

    def register(fn: RuleFunction) -> RuleFunction:
        if id in RULES:
            raise ValueError(f"duplicate rule id {id!r}")
        RULES[id] = Rule(
            id, section, profile, tuple(transports), inspect.cleandoc(fn.__doc__ or id), fn
        )
        return fn

    return register


def all_rules() -> list[Rule]:
    from . import (  # noqa: F401 - importing registers the rules
        rules_channels,
        rules_extensions,
        rules_hostile,
        rules_http,
        rules_meta,
        rules_publish,
        rules_replay,
    )

    return list(RULES.values())
