"""Replay with --redis, against a real redis-server: events outlive the process that published
them, and every process of a deployment can replay what any of them published."""

from __future__ import annotations

import time

import pytest

from bayeux.testing import start_cli, stop_process

from ...helpers.http import handshake, post_json

pytestmark = pytest.mark.redis

CHANNEL = "/event/Shipment__e"


def serve(redis_url: str):
    return start_cli("--redis", redis_url, "--replay-channels", "/event/**")


def subscribe(url: str, client_id: str, replay_id: int) -> dict:
    (reply,) = post_json(
        url,
        [
            {
                "channel": "/meta/subscribe",
                "clientId": client_id,
                "subscription": CHANNEL,
                "ext": {"replay": {CHANNEL: replay_id}},
            }
        ],
    ).json()
    return reply


def events(url: str, client_id: str) -> list[dict]:
    """What is queued for the client (a connect answered at once)."""
    replies = post_json(
        url,
        [
            {
                "channel": "/meta/connect",
                "clientId": client_id,
                "connectionType": "long-polling",
                "advice": {"timeout": 0},
            }
        ],
    ).json()
    return [m for m in replies if m.get("channel") == CHANNEL]


def publish(url: str, *payloads: object) -> None:
    publisher = handshake(url)
    for payload in payloads:
        (ack,) = post_json(
            url, [{"channel": CHANNEL, "clientId": publisher, "data": payload}]
        ).json()
        assert ack["successful"] is True, ack


def replayed(url: str, replay_id: int, *, within: float = 10) -> list[object]:
    """The payloads a new client gets when it subscribes from `replay_id`."""
    deadline = time.monotonic() + within
    while True:
        client = handshake(url)
        events(url, client)  # the first connect
        reply = subscribe(url, client, replay_id)
        if reply["successful"] or time.monotonic() > deadline:
            assert reply["successful"] is True, reply
            return [e["data"]["payload"] for e in events(url, client)]
        time.sleep(0.2)  # the process may still be loading the history from Redis


def test_a_client_back_after_a_restart_gets_exactly_what_it_missed(redis_server) -> None:
    first, url = serve(redis_server.url)
    try:
        client = handshake(url)
        events(url, client)
        assert subscribe(url, client, -1)["successful"] is True
        publish(url, {"n": 1})
        (seen,) = events(url, client)
        last_id = seen["data"]["event"]["replayId"]
        publish(url, {"n": 2}, {"n": 3})  # published while the client is away
    finally:
        assert stop_process(first) == 0
    second, url = serve(redis_server.url)
    try:
        assert replayed(url, last_id) == [{"n": 2}, {"n": 3}]
        assert replayed(url, -2) == [{"n": 1}, {"n": 2}, {"n": 3}]
        # Ids keep growing across the restart.
        publish(url, {"n": 4})
        assert replayed(url, last_id) == [{"n": 2}, {"n": 3}, {"n": 4}]
    finally:
        assert stop_process(second) == 0


def test_any_process_replays_what_another_published(redis_server) -> None:
    one, url_one = serve(redis_server.url)
    two, url_two = serve(redis_server.url)
    try:
        time.sleep(1.0)  # both subscribed to the bus
        publish(url_one, {"n": 1}, {"n": 2})
        deadline = time.monotonic() + 10
        got: list[object] = []
        while got != [{"n": 1}, {"n": 2}] and time.monotonic() < deadline:
            got = replayed(url_two, -2)
            time.sleep(0.1)
        assert got == [{"n": 1}, {"n": 2}]
    finally:
        stop_process(one)
        stop_process(two)
