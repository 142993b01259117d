"""The core's bounds and fault isolation, driven directly with an injected clock."""

from __future__ import annotations

import asyncio
import gc
import logging

import pytest

from bayeux import BayeuxServer, Ended, Extension, SecurityPolicy, Settings
from bayeux.core.limits import AddressWindow, address_key
from bayeux.core.message import DELIVERY_OVERHEAD
from bayeux.core.peer import Peer

from ..helpers.core import HS, client, held

# Every case runs over the standalone connection layer and over Tornado embedding.
pytestmark = pytest.mark.usefixtures("both_layers")


async def one(server: BayeuxServer, peer: Peer | None = None, **message: object) -> dict:
    (reply,) = (await server.handle([message], peer)).replies
    return reply


# ------------------------------------------------------------------------------ queue bytes

PAYLOAD = "x" * 1000  # each delivery is ~1030 bytes of JSON, charged with its overhead
# Room for three such deliveries, not four.
ROOM = 3 * (1030 + DELIVERY_OVERHEAD) + 100


@pytest.mark.parametrize(
    ("policy", "expected", "alive"),
    [("drop-oldest", [2, 3, 4], True), ("drop-newest", [0, 1, 2], True), ("disconnect", [], False)],
)
def test_queue_bytes_limit_applies_the_queue_full_policy(
    policy: str, expected: list, alive: bool
) -> None:
    async def scenario() -> None:
        server = BayeuxServer(Settings(max_queue_bytes=ROOM, queue_full_policy=policy))
        sub, pub = await client(server), await client(server)
        session = server.sessions[sub]
        await one(server, channel="/meta/subscribe", clientId=sub, subscription="/q")
        for i in range(5):
            await one(server, channel="/q", clientId=pub, data={"i": i, "p": PAYLOAD})
        assert [d.message["data"]["i"] for d in session.queue] == expected
        assert session.queue_bytes == sum(d.size for d in session.queue) <= ROOM
        assert (sub in server.sessions) is alive
        assert sum(server.stats.dropped.values()) == 2 if alive else 1

    asyncio.run(scenario())


def test_unacknowledged_batches_count_against_the_queue_bytes() -> None:
    async def scenario() -> None:
        server = BayeuxServer(Settings(max_queue_bytes=ROOM, queue_full_policy="drop-newest"))
        reply = await one(server, **HS, ext={"ack": True})
        cid = reply["clientId"]
        session = server.sessions[cid]
        pub = await client(server)
        await one(server, channel="/meta/subscribe", clientId=cid, subscription="/a")
        connect = {"channel": "/meta/connect", "clientId": cid, "connectionType": "long-polling"}
        outcome = await server.handle([dict(connect, ext={"ack": 0})])
        server.finish_connect(held(outcome))  # the first connect
        for i in range(2):
            await one(server, channel="/a", clientId=pub, data={"i": i, "p": PAYLOAD})
        outcome = await server.handle([dict(connect, ext={"ack": 1})])
        deliveries, _ = server.finish_connect(held(outcome))
        assert len(deliveries) == 2 and not session.queue
        # Two messages are out but not acknowledged: only one more fits.
        for i in range(2, 5):
            await one(server, channel="/a", clientId=pub, data={"i": i, "p": PAYLOAD})
        assert [d.message["data"]["i"] for d in session.queue] == [2]
        assert session.queued_bytes() <= ROOM
        # The reply was lost: acknowledging batch 1 again puts 0 and 1 back before 2.
        outcome = await server.handle([dict(connect, ext={"ack": 1})])
        deliveries, _ = server.finish_connect(held(outcome))
        assert [d.message["data"]["i"] for d in deliveries] == [0, 1, 2]

    asyncio.run(scenario())


# ---------------------------------------------------------------------- services, handshakes


def test_service_calls_in_progress_per_session_are_bounded() -> None:
    async def scenario() -> None:
        server = BayeuxServer(Settings(max_service_calls=2))
        release = asyncio.Event()

        async def slow(request):
            await release.wait()
            return "done"

        server.add_service("/service/slow", slow)
        cid = await client(server)
        for i in range(4):
            await one(server, channel="/service/slow", clientId=cid, data=i, id=str(i))
        session = server.sessions[cid]
        refused = {d.message["id"]: d.message for d in session.drain()}
        assert set(refused) == {"2", "3"}
        assert refused["2"]["error"] == "429:/service/slow:Too many service calls"
        release.set()
        await asyncio.sleep(0.01)
        assert [d.message["data"] for d in session.drain()] == ["done", "done"]
        assert session.service_calls == 0

    asyncio.run(scenario())


def test_address_window_counts_per_address_and_ipv6_prefix() -> None:
    window = AddressWindow(2, 10.0)
    assert window.admit("10.0.0.1", 0) == window.admit("10.0.0.1", 1) == 0
    assert window.admit("10.0.0.1", 2) == pytest.approx(8.0)
    assert window.admit("10.0.0.2", 2) == 0  # another address
    # Addresses in one IPv6 /64 count together; an IPv4-mapped address counts as IPv4.
    assert address_key("2001:db8::1") == address_key("2001:db8::ffff:2") == "2001:db8::/64"
    assert address_key("::ffff:10.0.0.1") == "10.0.0.1"
    assert window.admit("::ffff:10.0.0.1", 3) > 0
    assert window.admit("10.0.0.1", 10) == 0  # a new window


def test_address_window_is_bounded_and_fails_open() -> None:
    window = AddressWindow(1, 10.0, max_addresses=3)
    for i in range(3):
        window.admit(f"10.0.0.{i}", 0)
    assert window.admit("10.0.0.9", 1) == 0  # let through, uncounted
    assert len(window) == 3
    assert window.admit("10.0.0.9", 11) == 0  # old windows forgotten: now it is counted
    assert window.admit("10.0.0.9", 12) > 0


def test_peer_counts_only_live_sessions() -> None:
    async def scenario() -> None:
        server = BayeuxServer(Settings(max_sessions_per_connection=1))
        peer = Peer(persistent=True)
        cid = (await one(server, peer, **HS))["clientId"]
        assert (await one(server, peer, **HS))["successful"] is False
        await one(server, peer, channel="/meta/disconnect", clientId=cid)
        assert (await one(server, peer, **HS))["successful"] is True

    asyncio.run(scenario())


# -------------------------------------------------------------------------- fault isolation


class Exploding(Extension):
    def __init__(self, incoming_on: str = "", outgoing_on: str = "") -> None:
        self.incoming_on = incoming_on
        self.outgoing_on = outgoing_on

    def incoming(self, session, message):
        if message["channel"] == self.incoming_on:
            raise RuntimeError("bug in an extension")
        return True

    def outgoing(self, session, message):
        if message["channel"] == self.outgoing_on:
            raise RuntimeError("bug in an extension")
        return True


def test_a_failing_extension_costs_one_message() -> None:
    async def scenario() -> None:
        server = BayeuxServer()
        server.add_extension(Exploding(incoming_on="/bad", outgoing_on="/quiet"))
        cid = await client(server)
        await one(server, channel="/meta/subscribe", clientId=cid, subscription="/**")
        outcome = await server.handle(
            [
                {"channel": "/bad", "clientId": cid, "data": 1, "id": "1"},
                {"channel": "/good", "clientId": cid, "data": 2, "id": "2"},
                {"channel": "/quiet", "clientId": cid, "data": 3, "id": "3"},
            ]
        )
        replies = {r["id"]: r for r in outcome.replies}
        assert replies["1"]["error"] == "500:/bad:Extension failed"
        assert replies["2"]["successful"] is True
        # The outgoing failure drops what it fails on (the broadcast and its publish reply),
        # and the batch goes on.
        assert "3" not in replies
        assert [d.message["channel"] for d in server.sessions[cid].drain()] == ["/good"]
        assert server.stats.errors["extension"] == 3

    asyncio.run(scenario())


class BrokenPolicy(SecurityPolicy):
    def can_subscribe(self, session, channel, message):
        raise RuntimeError("policy bug")

    async def can_handshake(self, session, message):
        if (message.get("ext") or {}).get("explode"):
            raise RuntimeError("policy bug")
        return True


def test_a_failing_policy_or_authorizer_denies() -> None:
    async def scenario() -> None:
        server = BayeuxServer(policy=BrokenPolicy())
        reply = await one(server, **HS, ext={"explode": True})
        assert reply["error"] == "403::Handshake denied"
        cid = await client(server)
        reply = await one(server, channel="/meta/subscribe", clientId=cid, subscription="/a")
        assert reply["error"] == "403:/a:Subscription denied"

        def authorizer(operation, channel, session, message):
            raise KeyError("authorizer bug")

        plain = BayeuxServer()
        plain.add_authorizer("/**", authorizer)
        cid = await client(plain)
        reply = await one(plain, channel="/x", clientId=cid, data=1)
        assert reply["error"] == "403:/x:Publish denied"

    asyncio.run(scenario())


def test_an_internal_error_costs_one_message(monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario() -> None:
        server = BayeuxServer()
        cid = await client(server)

        async def broken(*args):
            raise AttributeError("a bug in the server")

        monkeypatch.setattr(server, "_subscribe", broken)
        outcome = await server.handle(
            [
                {"channel": "/meta/subscribe", "clientId": cid, "subscription": "/a", "id": "1"},
                {"channel": "/b", "clientId": cid, "data": 1, "id": "2"},
            ]
        )
        assert [r.get("error") for r in outcome.replies] == ["500::Internal error", None]
        assert server.stats.errors["handle"] == 1

    asyncio.run(scenario())


def test_async_listeners_are_kept_until_done_and_their_failures_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario() -> None:
        server = BayeuxServer()
        done = []

        async def listener(session):
            await asyncio.sleep(0.01)
            gc.collect()  # a task held only weakly would be collected here
            done.append(session.id)
            raise ValueError("listener bug")

        server.on_session_added(listener)
        cid = await client(server)
        await asyncio.sleep(0.05)
        assert done == [cid]

    with caplog.at_level(logging.ERROR):
        asyncio.run(scenario())
    assert any("listener task failed" in r.getMessage() for r in caplog.records)


def test_sessions_removed_for_a_full_queue_are_counted() -> None:
    async def scenario() -> None:
        server = BayeuxServer(Settings(max_queue=1))
        removed: list = []
        server.on_session_removed(lambda s, why: removed.append(why))
        sub, pub = await client(server), await client(server)
        await one(server, channel="/meta/subscribe", clientId=sub, subscription="/q")
        for i in range(2):
            await one(server, channel="/q", clientId=pub, data=i)
        assert removed == [Ended.QUEUE_FULL]
        assert server.stats.dropped["queue-full-disconnect"] == 1

    asyncio.run(scenario())
