"""Durable replay (core/replay.py) in the sans-I/O core: shapes, replay ids, retention, the seam
between replayed and live events, and the errors Salesforce clients depend on."""

from __future__ import annotations

import asyncio
import json

import pytest

from bayeux.core.engine import LoggedMessage
from bayeux.core.message import Delivery
from bayeux.core.replay import invalid_replay_id
from bayeux.core.server import BayeuxServer
from bayeux.core.session import ServerSession
from bayeux.core.settings import Settings
from bayeux.testing import ManualClock

CHANNEL = "/event/Order__e"


def handle(server: BayeuxServer, *messages: dict) -> list[dict]:
    return asyncio.run(server.handle(list(messages))).replies


def make(wall: ManualClock, **settings: object) -> BayeuxServer:
    base: dict = dict(replay_channels=("/event/**",))
    base.update(settings)
    return BayeuxServer(Settings(**base), clock=ManualClock(), wall_clock=wall)


@pytest.fixture
def wall() -> ManualClock:
    return ManualClock(1_764_000_000.0)


@pytest.fixture
def server(wall: ManualClock) -> BayeuxServer:
    return make(wall)


def handshake(server: BayeuxServer, **ext: object) -> tuple[ServerSession, dict]:
    message: dict = {
        "channel": "/meta/handshake",
        "version": "1.0",
        "supportedConnectionTypes": ["long-polling"],
    }
    if ext:
        message["ext"] = ext
    (reply,) = handle(server, message)
    return server.sessions[reply["clientId"]], reply


def subscribe(server: BayeuxServer, session: ServerSession, replay: object = None) -> dict:
    message: dict = {"channel": "/meta/subscribe", "clientId": session.id, "subscription": CHANNEL}
    if replay is not None:
        message["ext"] = {"replay": {CHANNEL: replay}}
    (reply,) = handle(server, message)
    return reply


def publish(server: BayeuxServer, publisher: ServerSession, data: object) -> dict:
    (reply,) = handle(server, {"channel": CHANNEL, "clientId": publisher.id, "data": data})
    return reply


def received(session: ServerSession) -> list[dict]:
    return [json.loads(d.json) for d in session.drain()]


def test_the_handshake_says_replay_when_asked_and_offered(server: BayeuxServer) -> None:
    assert handshake(server, replay=True)[1]["ext"] == {"replay": True}
    assert "ext" not in handshake(server)[1]
    plain = BayeuxServer(Settings())
    (reply,) = handle(
        plain,
        {
            "channel": "/meta/handshake",
            "version": "1.0",
            "supportedConnectionTypes": ["long-polling"],
            "ext": {"replay": True},
        },
    )
    assert "replay" not in reply.get("ext", {})


def test_events_are_shaped_as_salesforce_shapes_them(
    server: BayeuxServer, wall: ManualClock
) -> None:
    subscriber, _ = handshake(server)
    publisher, _ = handshake(server)
    assert subscribe(server, subscriber)["successful"] is True
    assert publish(server, publisher, {"Amount__c": 12})["successful"] is True
    (event,) = received(subscriber)
    assert event["channel"] == CHANNEL
    assert event["data"]["payload"] == {"Amount__c": 12}
    assert event["data"]["event"]["replayId"] == int(wall.now * 1000)
    assert event["data"]["event"]["createdDate"] == "2025-11-24T16:00:00.000Z"


def test_replay_ids_increase_even_within_one_millisecond(server: BayeuxServer) -> None:
    publisher, _ = handshake(server)
    for n in range(5):
        publish(server, publisher, n)
    ids = [e.replay_id for e in server.replay.events(CHANNEL)]  # type: ignore[union-attr]
    assert ids == sorted(set(ids)) and len(ids) == 5


def test_minus_two_replays_everything_retained_then_live_with_no_gap_or_duplicate(
    server: BayeuxServer, wall: ManualClock
) -> None:
    publisher, _ = handshake(server)
    for n in range(3):
        publish(server, publisher, n)
        wall.now += 0.001
    late, _ = handshake(server)
    assert subscribe(server, late, -2)["successful"] is True
    publish(server, publisher, 3)
    payloads = [e["data"]["payload"] for e in received(late)]
    assert payloads == [0, 1, 2, 3]


def test_an_id_replays_what_came_after_it_and_minus_one_only_new(server: BayeuxServer) -> None:
    publisher, _ = handshake(server)
    for n in range(4):
        publish(server, publisher, n)
    second = server.replay.events(CHANNEL)[1].replay_id  # type: ignore[union-attr]
    resumed, _ = handshake(server)
    assert subscribe(server, resumed, second)["successful"] is True
    assert [e["data"]["payload"] for e in received(resumed)] == [2, 3]
    fresh, _ = handshake(server)
    assert subscribe(server, fresh, -1)["successful"] is True
    publish(server, publisher, 4)
    assert [e["data"]["payload"] for e in received(fresh)] == [4]


def test_ids_outside_the_window_get_salesforces_400(
    server: BayeuxServer, wall: ManualClock
) -> None:
    small = make(wall, replay_max_events=2)
    publisher, _ = handshake(small)
    for n in range(4):
        publish(small, publisher, n)
    kept = small.replay.events(CHANNEL)  # type: ignore[union-attr]
    assert [e.message["data"]["payload"] for e in kept] == [2, 3]
    trimmed = kept[0].replay_id - 2  # the first event's: no longer retained
    for bad in (trimmed, kept[-1].replay_id + 1000, "abc", 1.5, 12):
        session, _ = handshake(small)
        reply = subscribe(small, session, bad)
        assert reply["successful"] is False
        assert reply["error"] == invalid_replay_id(bad)
        assert CHANNEL not in session.subscriptions
    assert invalid_replay_id(5) == (
        "400::The replayId {5} you provided was invalid. Please provide a valid ID, -2 to replay"
        " all events, or -1 to replay only new events."
    )


def test_events_older_than_the_retention_are_dropped(
    server: BayeuxServer, wall: ManualClock
) -> None:
    aging = make(wall, replay_retention=60_000)
    publisher, _ = handshake(aging)
    publish(aging, publisher, "old")
    wall.now += 61
    publish(aging, publisher, "new")
    assert [e.message["data"]["payload"] for e in aging.replay.events(CHANNEL)] == ["new"]  # type: ignore[union-attr]


def test_other_channels_are_untouched(server: BayeuxServer) -> None:
    subscriber, _ = handshake(server)
    publisher, _ = handshake(server)
    handle(
        server, {"channel": "/meta/subscribe", "clientId": subscriber.id, "subscription": "/chat"}
    )
    handle(server, {"channel": "/chat", "clientId": publisher.id, "data": {"text": "hi"}})
    assert received(subscriber)[0]["data"] == {"text": "hi"}


def test_server_side_publishes_are_kept_and_shaped(server: BayeuxServer) -> None:
    subscriber, _ = handshake(server)
    subscribe(server, subscriber)
    server.publish(CHANNEL, {"from": "server"})
    (event,) = received(subscriber)
    assert event["data"]["payload"] == {"from": "server"}
    assert server.replay.events(CHANNEL)[0].message == event  # type: ignore[union-attr]


def test_events_from_the_log_keep_their_replay_id(server: BayeuxServer) -> None:
    other = {
        "channel": CHANNEL,
        "data": {"event": {"replayId": 7, "createdDate": "x"}, "payload": 1},
    }
    logged = Delivery(other)
    logged.position = 1
    server.apply_log([LoggedMessage(1, logged, None)])
    assert server.replay.events(CHANNEL)[0].replay_id == 7  # type: ignore[union-attr]


def test_a_replay_channel_setting_must_be_a_broadcast_pattern() -> None:
    with pytest.raises(ValueError):
        Settings(replay_channels=("/meta/**",))
    with pytest.raises(ValueError):
        Settings(replay_channels=("event",))
