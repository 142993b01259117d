"""The timestamp extension (--timestamp-extension): every message the server sends carries a
`timestamp` in CometD's format, a broadcast stamped once when it is published and encoded once
for all its subscribers; off by default."""

from __future__ import annotations

import re
import time

import pytest

from bayeux import BayeuxServer, ServiceRequest, Settings, TimestampExtension
from bayeux.__main__ import build_parser, settings_from
from bayeux.core.ext.timestamp import cometd_timestamp
from bayeux.testing import ManualClock

from ..helpers.core import HS, client, held, one, run

# Java's `EEE MMM dd HH:mm:ss zzz yyyy` in English.
COMETD_FORMAT = re.compile(
    r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
    r" [0-3]\d [0-2]\d:[0-5]\d:[0-6]\d \S+ \d{4}"
)


def stamping(wall: ManualClock | None = None) -> BayeuxServer:
    return BayeuxServer(Settings(timestamp_extension=True), wall_clock=wall or time.time)


def test_off_by_default_and_on_with_its_option() -> None:
    assert Settings().timestamp_extension is False
    assert not any(isinstance(e, TimestampExtension) for e in BayeuxServer().extensions)
    args = build_parser().parse_args(["--timestamp-extension"])
    server = BayeuxServer(settings_from(args))
    assert [type(e) for e in server.extensions] == [TimestampExtension]

    async def scenario() -> None:
        assert "timestamp" not in await one(BayeuxServer(), **HS)

    run(scenario())


def test_the_format_is_cometds() -> None:
    assert cometd_timestamp(0, utc=True) == "Thu Jan 01 00:00:00 UTC 1970"
    assert cometd_timestamp(1_709_647_402, utc=True) == "Tue Mar 05 14:03:22 UTC 2024"
    # The server's zone by default, with its abbreviation, as Java's `zzz` writes it.
    local = time.localtime(1_709_647_402)
    assert cometd_timestamp(1_709_647_402).split()[4] == local.tm_zone
    assert COMETD_FORMAT.fullmatch(cometd_timestamp(time.time()))


def test_every_reply_and_delivery_is_stamped() -> None:
    async def scenario() -> None:
        wall = ManualClock(1_709_647_402.5)
        server = stamping(wall)
        server.add_service("/service/echo", lambda request: request.data)
        expected = cometd_timestamp(1_709_647_402)
        stamps = []
        handshake = await one(server, **HS)
        stamps.append(handshake["timestamp"])
        cid = handshake["clientId"]
        connect = {"channel": "/meta/connect", "clientId": cid, "connectionType": "long-polling"}
        outcome = await server.handle([connect])
        stamps.append(server.finish_connect(held(outcome))[1]["timestamp"])
        for message in (
            {"channel": "/meta/subscribe", "subscription": "/news"},
            {"channel": "/news", "data": "published"},
            {"channel": "/service/echo", "data": "called", "id": "7"},
        ):
            stamps.append((await one(server, clientId=cid, **message))["timestamp"])
        session = server.sessions[cid]
        server.publish("/news", "from the server")
        server.deliver(session, "/direct", "to one session")
        outcome = await server.handle([connect])
        deliveries, reply = server.finish_connect(held(outcome))
        stamps.append(reply["timestamp"])
        sent = [d.message for d in deliveries]
        assert [m.get("data") for m in sent] == [
            "published",
            "called",
            "from the server",
            "to one session",
        ]
        stamps.extend(m["timestamp"] for m in sent)
        assert stamps == [expected] * len(stamps)

    run(scenario())


def test_a_broadcast_is_stamped_once_when_published_and_encoded_once() -> None:
    async def scenario() -> None:
        wall = ManualClock(1_000_000_000.0)
        server = stamping(wall)
        sessions = [server.create_session() for _ in range(50)]
        for session in sessions:
            server.subscribe(session, "/prices")
        assert server.publish("/prices", 1.5) == 50
        wall.now += 3600  # read an hour later
        first = sessions[0].queue[0]
        # One Delivery (one encoding) in every queue, stamped at the publish.
        assert all(s.queue[0] is first for s in sessions)
        assert first.message["timestamp"] == cometd_timestamp(1_000_000_000)

    run(scenario())


def test_a_clients_own_timestamp_is_replaced_by_the_servers() -> None:
    """CometD's JavaScript TimeStampExtension stamps what a client sends; subscribers get the
    server's stamp (as from CometD's server)."""

    async def scenario() -> None:
        wall = ManualClock(0.0)
        server = stamping(wall)
        publisher, subscriber = await client(server), await client(server)
        await one(server, channel="/meta/subscribe", clientId=subscriber, subscription="/a")
        client_stamp = "Thu, 01 Jan 1970 00:00:00 GMT"  # JavaScript's toUTCString()
        reply = await one(server, channel="/a", clientId=publisher, data=1, timestamp=client_stamp)
        assert reply["successful"] is True
        (delivery,) = server.sessions[subscriber].queue
        assert delivery.message["timestamp"] == cometd_timestamp(0)

    run(scenario())


@pytest.mark.parametrize("seconds", [0.0, 0.999, 59.5])
def test_the_text_is_made_once_a_second(seconds: float) -> None:
    wall = ManualClock(seconds)
    stamp = TimestampExtension(wall, utc=True)
    first: dict = {"channel": "/a"}
    stamp.outgoing(None, first)
    second: dict = {"channel": "/b"}
    stamp.outgoing(None, second)
    assert first["timestamp"] is second["timestamp"]  # the same str object: made once
    wall.now = seconds + 1
    third: dict = {"channel": "/c"}
    stamp.outgoing(None, third)
    assert third["timestamp"] == cometd_timestamp(int(seconds) + 1, utc=True)


def test_a_service_request_sees_no_stamp_of_its_own() -> None:
    """Only what the server sends is stamped: what the application receives is the client's."""

    async def scenario() -> None:
        server = stamping()
        seen: list[ServiceRequest] = []
        server.add_service("/service/x", lambda request: seen.append(request))
        cid = await client(server)
        await one(server, channel="/service/x", clientId=cid, data=1)
        assert "timestamp" not in seen[0].message

    run(scenario())


@pytest.mark.parametrize("ending", ["disconnect", "kicked", "removed"])
def test_the_reply_to_a_connect_held_when_its_session_ends_is_stamped(ending: str) -> None:
    """The held connect a session's end answers (its client disconnected, the server kicked or
    removed it) is a message the server sends like any other."""

    async def scenario() -> None:
        server = stamping()
        cid = await client(server)
        connect = {"channel": "/meta/connect", "clientId": cid, "connectionType": "long-polling"}
        server.finish_connect(held(await server.handle([connect])))  # the first: at once
        hold = held(await server.handle([connect]))
        session = server.sessions[cid]
        if ending == "disconnect":
            await one(server, channel="/meta/disconnect", clientId=cid)
        elif ending == "kicked":
            server.disconnect(session)
        else:
            server.remove_session(session)
        _, reply = server.finish_connect(hold)
        assert COMETD_FORMAT.fullmatch(reply["timestamp"])

    run(scenario())
