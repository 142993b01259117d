"""Random sequences of client requests, each sent to any of two processes sharing one real
redis-server, against a model of what Bayeux promises: every client gets exactly the messages
published on its channels while it was subscribed, in publish order, nothing twice, wherever
its requests landed; and a session attribute set through either process is what an authorizer
on either process reads (hypothesis state machine)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from bayeux import Authorization, BayeuxServer, Operation, ServerSession
from bayeux.core import channel as ch
from bayeux.testing import ServerThread

from ...helpers.redis_nodes import Client, node, wait_ready
from ...helpers.redisproc import RedisServer

pytestmark = pytest.mark.redis

CHANNELS = ["/m/a", "/m/b", "/m/c/x"]
PATTERNS = ["/m/a", "/m/b", "/m/c/*", "/m/**"]
CLIENTS = 3


VALUES = ["red", "green", "blue"]


def remember(
    operation: Operation, channel: str, session: ServerSession, message: dict[str, Any]
) -> Authorization:
    """A publish to /attr/<value> sets the session's attribute (nobody subscribes there)."""
    session.attributes["v"] = channel.rsplit("/", 1)[-1]
    return Authorization.GRANT


def check(
    operation: Operation, channel: str, session: ServerSession, message: dict[str, Any]
) -> Authorization:
    """A publish to /check/<value> is allowed only if the session's attribute is that value."""
    if session.attributes.get("v", "none") == channel.rsplit("/", 1)[-1]:
        return Authorization.GRANT
    return Authorization.DENY


def install(server: BayeuxServer) -> None:
    server.add_authorizer("/attr/*", remember)
    server.add_authorizer("/check/*", check)


class Deployment:
    """One redis-server and two processes, shared by every example (each example uses fresh
    clients, so examples do not see each other's sessions)."""

    redis: RedisServer | None = None
    nodes: list[ServerThread] = []


@pytest.fixture(scope="module", autouse=True)
def deployment():
    redis = RedisServer()
    redis.start()
    a, b = node(redis.url), node(redis.url)
    a.__enter__()
    b.__enter__()
    wait_ready(a, b)
    for n in (a, b):
        n.call(lambda n=n: install(n.endpoint.server))
    Deployment.redis, Deployment.nodes = redis, [a, b]
    yield
    b.__exit__(None, None, None)
    a.__exit__(None, None, None)
    redis.stop()


class SharedSessions(RuleBasedStateMachine):
    @initialize()
    def start(self) -> None:
        self.urls = [n.url for n in Deployment.nodes]
        self.clients = [Client(self.urls[i % 2]) for i in range(CLIENTS)]
        self.subscriptions: list[set[str]] = [set() for _ in range(CLIENTS)]
        self.expected: list[list[Any]] = [[] for _ in range(CLIENTS)]
        self.publisher = Client(self.urls[0])
        self.count = 0
        self.attributes = ["none"] * CLIENTS

    @rule(
        who=st.integers(0, CLIENTS - 1), where=st.integers(0, 1), pattern=st.sampled_from(PATTERNS)
    )
    def subscribe(self, who: int, where: int, pattern: str) -> None:
        assert self.clients[who].subscribe(self.urls[where], pattern)["successful"] is True
        self.subscriptions[who].add(pattern)

    @rule(
        who=st.integers(0, CLIENTS - 1), where=st.integers(0, 1), pattern=st.sampled_from(PATTERNS)
    )
    def unsubscribe(self, who: int, where: int, pattern: str) -> None:
        (reply,) = self.clients[who].send(
            self.urls[where], channel="/meta/unsubscribe", subscription=pattern
        )
        assert reply["successful"] is True
        self.subscriptions[who].discard(pattern)

    @rule(where=st.integers(0, 1), channel=st.sampled_from(CHANNELS))
    def publish(self, where: int, channel: str) -> None:
        self.count += 1
        data = {"n": self.count, "channel": channel}
        assert self.publisher.publish(self.urls[where], channel, data)["successful"] is True
        for who, patterns in enumerate(self.subscriptions):
            if any(ch.matches(p, channel) for p in patterns):
                self.expected[who].append(data)

    @rule(who=st.integers(0, CLIENTS - 1), where=st.integers(0, 1))
    def connect(self, who: int, where: int) -> None:
        reply = self.clients[who].connect(self.urls[where], timeout=0)
        assert reply["successful"] is True, reply

    @rule(who=st.integers(0, CLIENTS - 1), where=st.integers(0, 1), value=st.sampled_from(VALUES))
    def set_attribute(self, who: int, where: int, value: str) -> None:
        reply = self.clients[who].publish(self.urls[where], f"/attr/{value}", 1)
        assert reply["successful"] is True, reply
        self.attributes[who] = value

    @rule(who=st.integers(0, CLIENTS - 1), where=st.integers(0, 1))
    def read_attribute(self, who: int, where: int) -> None:
        # The record has it at once; a process serving the session hears of a change made
        # through another process's view a control message later.
        deadline = time.monotonic() + 3
        channel = f"/check/{self.attributes[who]}"
        while not self.clients[who].publish(self.urls[where], channel, 1)["successful"]:
            assert time.monotonic() < deadline, f"{channel} never allowed"
            time.sleep(0.01)
        wrong = next(v for v in [*VALUES, "none"] if v != self.attributes[who])
        assert (
            self.clients[who]
            .publish(self.urls[where], f"/check/{wrong}", 1)["error"]
            .startswith("403")
        )

    @invariant()
    def nothing_unexpected(self) -> None:
        for client, expected in zip(self.clients, self.expected, strict=True):
            # What arrived so far is the start of what is owed, in order.
            assert client.received == expected[: len(client.received)]

    def teardown(self) -> None:
        # Everything owed arrives, wherever the client polls.
        for who, client in enumerate(self.clients):
            deadline = time.monotonic() + 10
            turn = 0
            while len(client.received) < len(self.expected[who]) and time.monotonic() < deadline:
                client.connect(self.urls[turn % 2], timeout=0)
                turn += 1
                time.sleep(0.01)
            assert client.received == self.expected[who]
            client.send(self.urls[0], channel="/meta/disconnect")


SharedSessions.TestCase.settings = settings(max_examples=40, stateful_step_count=40, deadline=None)
test_shared_sessions_keep_bayeux_promises = SharedSessions.TestCase
