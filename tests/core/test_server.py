"""The sans-I/O core: every meta handler's success and failure, publishing, expiry."""

from __future__ import annotations

import asyncio

import pytest

from bayeux.core.message import ProtocolError, batch_from
from bayeux.core.server import BayeuxServer
from bayeux.core.session import Ended, ServerSession, SessionState, Wakeup
from bayeux.core.settings import Settings
from bayeux.testing import ManualClock as Clock

from ..helpers.core import held


class RecordingWaiter:
    is_stream = False

    def __init__(self) -> None:
        self.events: list[str] = []

    def wake(self) -> None:
        self.events.append("wake")

    def displace(self) -> None:
        self.events.append("displace")

    def close(self) -> None:
        self.events.append("close")

    def wake_after(self, seconds: float) -> None:
        self.events.append("wake_after")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def server(clock: Clock) -> BayeuxServer:
    return BayeuxServer(Settings(timeout=20000, max_interval=5000), clock=clock)


def handle(server: BayeuxServer, messages: list):
    return asyncio.run(server.handle(messages))


def one(server: BayeuxServer, **message) -> dict:
    outcome = handle(server, [message])
    assert outcome.connect is None
    assert len(outcome.replies) == 1
    return outcome.replies[0]


def handshake(server: BayeuxServer) -> ServerSession:
    reply = one(
        server,
        channel="/meta/handshake",
        version="1.0",
        supportedConnectionTypes=["long-polling"],
    )
    return server.sessions[reply["clientId"]]


def connect(server: BayeuxServer, session: ServerSession, **extra):
    outcome = handle(
        server,
        [
            {
                "channel": "/meta/connect",
                "clientId": session.id,
                "connectionType": "long-polling",
                **extra,
            }
        ],
    )
    return outcome


# ---------------------------------------------------------------------------- handshake


def test_handshake_success_reply(server: BayeuxServer) -> None:
    reply = one(
        server,
        channel="/meta/handshake",
        version="1.0",
        supportedConnectionTypes=["long-polling", "foo"],
        id="7",
    )
    assert reply["successful"] is True
    assert reply["id"] == "7"
    assert reply["version"] == "1.0"
    assert reply["supportedConnectionTypes"] == [
        "websocket",
        "long-polling",
        "callback-polling",
        "cross-origin-long-polling",
        "eventsource",
    ]
    assert reply["advice"] == {
        "reconnect": "retry",
        "interval": 0,
        "timeout": 20000,
        "maxInterval": 5000,
    }
    assert reply["clientId"] in server.sessions
    assert len(reply["clientId"]) == 40 and reply["clientId"].isalnum()


def test_client_ids_are_unique(server: BayeuxServer) -> None:
    ids = {handshake(server).id for _ in range(200)}
    assert len(ids) == 200


@pytest.mark.parametrize(
    ("fields", "error_prefix"),
    [
        ({"supportedConnectionTypes": ["long-polling"]}, "400:version:"),
        ({"version": "1.0"}, "400:supportedConnectionTypes:"),
        ({"version": "1.0", "supportedConnectionTypes": "long-polling"}, "400:"),
        ({"version": "1.0", "supportedConnectionTypes": ["iframe"]}, "406:iframe:"),
        ({"version": 1, "supportedConnectionTypes": ["long-polling"]}, "400:version:"),
    ],
)
def test_handshake_failures(server: BayeuxServer, fields: dict, error_prefix: str) -> None:
    reply = one(server, channel="/meta/handshake", **fields)
    assert reply["successful"] is False
    assert reply["error"].startswith(error_prefix)
    assert reply["advice"]["reconnect"] == "none"
    assert not server.sessions


def test_messages_batched_with_handshake_are_ignored(server: BayeuxServer) -> None:
    outcome = handle(
        server,
        [
            {
                "channel": "/meta/handshake",
                "version": "1.0",
                "supportedConnectionTypes": ["long-polling"],
            },
            {"channel": "/a", "data": 1, "id": "p"},
        ],
    )
    assert [r["channel"] for r in outcome.replies] == ["/meta/handshake"]


# ------------------------------------------------------------------------------ connect


def test_first_connect_is_answered_at_once_then_held(server: BayeuxServer) -> None:
    session = handshake(server)
    first = connect(server, session, id="c1")
    assert first.connect is not None and first.connect.timeout == 0
    assert first.connect.reply["successful"] is True
    assert first.connect.reply["clientId"] == session.id
    assert first.connect.reply["id"] == "c1"
    second = connect(server, session)
    assert second.connect is not None and second.connect.timeout == 20.0


def test_client_timeout_advice_shortens_only_that_connect(server: BayeuxServer) -> None:
    session = handshake(server)
    connect(server, session)
    assert connect(server, session, advice={"timeout": 500}).connect.timeout == 0.5
    assert connect(server, session, advice={"timeout": 10**9}).connect.timeout == 20.0
    assert connect(server, session).connect.timeout == 20.0


def test_connect_unknown_client_advises_handshake(server: BayeuxServer) -> None:
    outcome = handle(
        server, [{"channel": "/meta/connect", "clientId": "nope", "connectionType": "long-polling"}]
    )
    (reply,) = outcome.replies
    assert outcome.connect is None
    assert reply["successful"] is False
    assert reply["error"] == "402::Unknown client"
    assert reply["advice"] == {"reconnect": "handshake", "interval": 0}


@pytest.mark.parametrize(
    ("connection_type", "code"), [(None, "400"), (5, "400"), ("iframe", "406")]
)
def test_connect_bad_connection_type(server: BayeuxServer, connection_type, code) -> None:
    session = handshake(server)
    message = {"channel": "/meta/connect", "clientId": session.id}
    if connection_type is not None:
        message["connectionType"] = connection_type
    (reply,) = handle(server, [message]).replies
    assert reply["successful"] is False and reply["error"].startswith(code + ":")


def test_held_connect_keeps_session_alive_and_finish_restarts_expiry(
    server: BayeuxServer, clock: Clock
) -> None:
    session = handshake(server)
    connect(server, session)
    hold = held(connect(server, session))
    assert session.held is hold
    clock.now += hold.timeout  # held to its very end: still alive
    assert server.sweep() == []
    assert server.finish_connect(hold) == ([], hold.reply)
    assert session.held is None
    assert session.deadline == clock.now + 5.0
    clock.now += 5.1
    assert server.sweep() == [session]
    assert session.ended is Ended.EXPIRED
    assert session.id not in server.sessions


def test_a_hold_no_transport_finishes_still_expires(server: BayeuxServer, clock: Clock) -> None:
    """A transport that loses a hold (a bug, a crash) cannot make its session immortal."""
    session = handshake(server)
    connect(server, session)
    hold = connect(server, session).connect
    max_interval = server.settings.max_interval / 1000
    clock.now += hold.timeout + max_interval - 0.1
    assert server.sweep() == []
    clock.now += 0.2
    assert server.sweep() == [session]


def test_session_expires_without_first_connect(server: BayeuxServer, clock: Clock) -> None:
    session = handshake(server)
    clock.now += 4.9
    assert server.sweep() == []
    clock.now += 0.2
    assert server.sweep() == [session]


def test_finish_connect_advice_after_session_end(server: BayeuxServer) -> None:
    session = handshake(server)
    connect(server, session)
    hold = connect(server, session).connect
    one(server, channel="/meta/disconnect", clientId=session.id)
    _, reply = server.finish_connect(hold)
    assert reply["advice"]["reconnect"] == "none"

    other = handshake(server)
    connect(server, other)
    hold = connect(server, other).connect
    server.remove_session(other, Ended.EXPIRED)
    _, reply = server.finish_connect(hold)
    assert reply["successful"] is False
    assert reply["advice"]["reconnect"] == "handshake"


def test_displaced_connect_gets_multiple_clients_advice(server: BayeuxServer) -> None:
    session = handshake(server)
    hold = connect(server, session).connect
    first, second = RecordingWaiter(), RecordingWaiter()
    session.attach(first)
    session.attach(second)
    assert first.events == ["displace"]
    _, reply = server.finish_connect(hold, Wakeup.DISPLACED)
    assert reply["advice"]["multiple-clients"] is True
    assert reply["advice"]["interval"] == server.settings.multi_session_interval


def test_shutdown_wakes_waiters_and_refuses_handshakes(server: BayeuxServer) -> None:
    session = handshake(server)
    waiter = RecordingWaiter()
    session.attach(waiter)
    server.shutdown()
    assert waiter.events == ["wake"]
    reply = one(
        server, channel="/meta/handshake", version="1.0", supportedConnectionTypes=["long-polling"]
    )
    assert reply["successful"] is False and reply["error"].startswith("503:")


# ---------------------------------------------------------------------------- disconnect


def test_disconnect_removes_session_and_closes_waiter(server: BayeuxServer) -> None:
    session = handshake(server)
    one(server, channel="/meta/subscribe", clientId=session.id, subscription="/a")
    waiter = RecordingWaiter()
    session.attach(waiter)
    reply = one(server, channel="/meta/disconnect", clientId=session.id, id="d")
    assert reply == {
        "channel": "/meta/disconnect",
        "id": "d",
        "clientId": session.id,
        "successful": True,
    }
    assert waiter.events == ["close"]
    assert session.id not in server.sessions
    assert server.tree.match("/a") == set()


def test_disconnect_unknown_client(server: BayeuxServer) -> None:
    reply = one(server, channel="/meta/disconnect", clientId="nope")
    assert reply["successful"] is False and reply["error"] == "402::Unknown client"


# ------------------------------------------------------------------------ (un)subscribe


def test_subscribe_string_and_list(server: BayeuxServer) -> None:
    session = handshake(server)
    reply = one(server, channel="/meta/subscribe", clientId=session.id, subscription="/a/*", id="s")
    assert reply == {
        "channel": "/meta/subscribe",
        "id": "s",
        "clientId": session.id,
        "subscription": "/a/*",
        "successful": True,
    }
    reply = one(
        server, channel="/meta/subscribe", clientId=session.id, subscription=["/b", "/c/**"]
    )
    assert reply["successful"] is True and reply["subscription"] == ["/b", "/c/**"]
    assert session.subscriptions == {"/a/*", "/b", "/c/**"}


@pytest.mark.parametrize(
    ("subscription", "error_prefix"),
    [
        (None, "400:subscription:"),
        ([], "400:subscription:"),
        (["/a", 3], "400:subscription:"),
        ("/a//b", "405:/a//b:"),
        (["/ok", "/bad*"], "405:/bad*:"),
        ("/meta/connect", "403:/meta/connect:"),
    ],
)
def test_subscribe_failures(server: BayeuxServer, subscription, error_prefix: str) -> None:
    session = handshake(server)
    message = {"channel": "/meta/subscribe", "clientId": session.id}
    if subscription is not None:
        message["subscription"] = subscription
    (reply,) = handle(server, [message]).replies
    assert reply["successful"] is False
    assert reply["error"].startswith(error_prefix)
    assert session.subscriptions == set()


def test_subscribe_unknown_client(server: BayeuxServer) -> None:
    reply = one(server, channel="/meta/subscribe", clientId="nope", subscription="/a")
    assert reply["error"] == "402::Unknown client"
    assert reply["advice"]["reconnect"] == "handshake"


def test_service_subscriptions_are_acknowledged_not_recorded(server: BayeuxServer) -> None:
    session = handshake(server)
    reply = one(server, channel="/meta/subscribe", clientId=session.id, subscription="/service/x")
    assert reply["successful"] is True
    assert session.subscriptions == set()


def test_unsubscribe(server: BayeuxServer) -> None:
    session = handshake(server)
    one(server, channel="/meta/subscribe", clientId=session.id, subscription="/a")
    reply = one(server, channel="/meta/unsubscribe", clientId=session.id, subscription="/a")
    assert reply["successful"] is True and reply["subscription"] == "/a"
    assert server.tree.match("/a") == set()
    # Unsubscribing from something never subscribed is not an error.
    reply = one(server, channel="/meta/unsubscribe", clientId=session.id, subscription="/zzz")
    assert reply["successful"] is True
    reply = one(server, channel="/meta/unsubscribe", clientId="nope", subscription="/a")
    assert reply["error"] == "402::Unknown client"


def test_unknown_meta_channels_are_refused_by_exact_name(server: BayeuxServer) -> None:
    session = handshake(server)
    for channel in ("/meta/foo", "/meta/subscribe/x", "/meta"):
        reply = one(server, channel=channel, clientId=session.id, subscription="/a", data={})
        assert reply["successful"] is False, channel
    assert session.subscriptions == set()


# ------------------------------------------------------------------------------ publish


def test_publish_delivers_once_without_publisher_identity(server: BayeuxServer) -> None:
    publisher, subscriber = handshake(server), handshake(server)
    for pattern in ("/chat/room", "/chat/*", "/**"):
        one(server, channel="/meta/subscribe", clientId=subscriber.id, subscription=pattern)
    reply = one(
        server, channel="/chat/room", clientId=publisher.id, data={"t": 1}, id="9", ext={"x": 1}
    )
    assert reply == {"channel": "/chat/room", "id": "9", "successful": True}
    (delivery,) = subscriber.queue
    assert delivery.message == {"channel": "/chat/room", "data": {"t": 1}, "ext": {"x": 1}}
    assert not publisher.queue


def test_broadcast_is_encoded_once_for_all_subscribers(server: BayeuxServer) -> None:
    publisher = handshake(server)
    subscribers = [handshake(server) for _ in range(3)]
    for s in subscribers:
        one(server, channel="/meta/subscribe", clientId=s.id, subscription="/n")
    one(server, channel="/n", clientId=publisher.id, data=[1, 2])
    deliveries = [s.queue[0] for s in subscribers]
    assert deliveries[0] is deliveries[1] is deliveries[2]
    assert deliveries[0].json is deliveries[2].json  # the cached bytes, not a new encoding
    assert deliveries[0].json == b'{"channel":"/n","data":[1,2]}'


def test_publisher_receives_own_message_unless_configured_otherwise(clock: Clock) -> None:
    for flag, expected in ((True, 1), (False, 0)):
        server = BayeuxServer(Settings(broadcast_to_publisher=flag), clock=clock)
        session = handshake(server)
        one(server, channel="/meta/subscribe", clientId=session.id, subscription="/a")
        one(server, channel="/a", clientId=session.id, data=1)
        assert len(session.queue) == expected


@pytest.mark.parametrize(
    ("message", "error_prefix"),
    [
        ({"channel": "/a/*", "data": 1}, "405:/a/*:"),
        ({"channel": "/a/**", "data": 1}, "405:/a/**:"),
        ({"channel": "/meta/foo", "data": 1}, "404:/meta/foo:"),
        ({"channel": "bad", "data": 1}, "405:bad:"),
        ({"channel": "/a"}, "400:data:"),
        ({"channel": "/a", "data": 1, "id": {"x": 1}}, "400:id:"),
        ({"channel": "/a", "data": 1, "ext": []}, "400:ext:"),
        ({"channel": "/a", "data": 1, "ext": None}, "400:ext:"),
        ({"channel": "/a", "data": 1, "id": None}, "400:id:"),
        ({"channel": "/a", "data": 1, "advice": None}, "400:advice:"),
        ({"channel": "/a", "data": 1, "advice": [1]}, "400:advice:"),
        ({"channel": "/a", "data": 1, "advice": {"timeout": -1}}, "400:advice.timeout:"),
        ({"channel": "/a", "data": 1, "advice": {"interval": "1"}}, "400:advice.interval:"),
        ({"channel": "/a", "data": 1, "ext": {"ack": "1"}}, "400:ext.ack:"),
        ({"channel": "/a", "data": 1, "ext": {"timesync": {"tc": "1"}}}, "400:ext.timesync:"),
        ({"channel": "/a", "data": 1, "ext": {"timesync": 1}}, "400:ext.timesync:"),
    ],
)
def test_publish_failures(server: BayeuxServer, message: dict, error_prefix: str) -> None:
    publisher, subscriber = handshake(server), handshake(server)
    one(server, channel="/meta/subscribe", clientId=subscriber.id, subscription="/**")
    reply = one(server, clientId=publisher.id, **message)
    assert reply["successful"] is False
    assert reply["error"].startswith(error_prefix)
    assert not subscriber.queue


def test_publish_with_empty_ext_and_advice_is_accepted(server: BayeuxServer) -> None:
    publisher, subscriber = handshake(server), handshake(server)
    one(server, channel="/meta/subscribe", clientId=subscriber.id, subscription="/a")
    reply = one(server, channel="/a", clientId=publisher.id, data=1, id="7", ext={}, advice={})
    assert reply == {"channel": "/a", "id": "7", "successful": True}
    assert len(subscriber.queue) == 1


def test_publish_without_valid_session_is_refused(server: BayeuxServer) -> None:
    subscriber = handshake(server)
    one(server, channel="/meta/subscribe", clientId=subscriber.id, subscription="/a")
    for extra in ({}, {"clientId": "forged"}):
        reply = one(server, channel="/a", data=1, **extra)
        assert reply["error"] == "402::Unknown client"
        assert reply["advice"]["reconnect"] == "handshake"
    assert not subscriber.queue


def test_service_messages_are_never_broadcast(server: BayeuxServer) -> None:
    publisher, listener = handshake(server), handshake(server)
    one(server, channel="/meta/subscribe", clientId=listener.id, subscription="/**")
    reply = one(server, channel="/service/echo", clientId=publisher.id, data=1, id="q")
    assert reply == {"channel": "/service/echo", "id": "q", "successful": True}
    assert not listener.queue


def test_enqueue_wakes_waiter_once_per_batch(server: BayeuxServer) -> None:
    publisher, subscriber = handshake(server), handshake(server)
    one(server, channel="/meta/subscribe", clientId=subscriber.id, subscription="/a")
    waiter = RecordingWaiter()
    subscriber.attach(waiter)
    handle(server, [{"channel": "/a", "clientId": publisher.id, "data": i} for i in range(5)])
    assert waiter.events == ["wake"]
    assert [d.message["data"] for d in subscriber.drain()] == [0, 1, 2, 3, 4]


def test_server_side_publish_and_deliver(server: BayeuxServer) -> None:
    subscriber, other = handshake(server), handshake(server)
    one(server, channel="/meta/subscribe", clientId=subscriber.id, subscription="/news/*")
    assert server.publish("/news/today", {"h": 1}) == 1
    server.deliver(other, "/private", {"p": 1})
    assert subscriber.queue[0].message == {"channel": "/news/today", "data": {"h": 1}}
    assert other.queue[0].message == {"channel": "/private", "data": {"p": 1}}
    with pytest.raises(ValueError):
        server.publish("/news/*", 1)
    with pytest.raises(ValueError):
        server.publish("/meta/connect", 1)


# -------------------------------------------------------------------------- input shape


@pytest.mark.parametrize("value", [1, "x", None, [1], [{"data": 1}], [{"channel": 5}], [[]]])
def test_batch_from_rejects_non_bayeux(value: object) -> None:
    with pytest.raises(ProtocolError):
        batch_from(value, 1000)


def test_batch_from_accepts_object_or_array() -> None:
    assert batch_from({"channel": "/a"}, 1000) == [{"channel": "/a"}]
    assert batch_from([{"channel": "/a"}, {"channel": "/b"}], 1000) == [
        {"channel": "/a"},
        {"channel": "/b"},
    ]
    assert batch_from([], 1000) == []


def test_a_session_moves_only_forward_through_its_states(server: BayeuxServer) -> None:
    session = handshake(server)
    states = [session.state]
    assert not session.connected
    first = held(connect(server, session))
    assert first.timeout == 0  # the first connect is answered at once
    states.append(session.state)
    assert held(connect(server, session)).timeout > 0
    reply = one(server, channel="/meta/disconnect", clientId=session.id)
    assert reply["successful"] is True and session.ended is Ended.DISCONNECTED
    states.append(session.state)
    assert session.connected_once() is False
    states.append(session.state)
    assert states == [
        SessionState.HANDSHAKEN,
        SessionState.CONNECTED,
        SessionState.ENDED,
        SessionState.ENDED,
    ]


def test_a_session_that_ends_before_its_first_connect_was_never_connected(
    server: BayeuxServer,
) -> None:
    # What a process hands over when the session moves before connecting: the next process
    # must answer its first connect at once.
    session = handshake(server)
    server.let_go(session.id)
    assert session.state is SessionState.ENDED and session.connected is False
