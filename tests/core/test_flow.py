"""Flow control per session (core/flow.py): queued, queue-full and dequeue listeners, connect
held and released, session removed, and conflation on a channel."""

from __future__ import annotations

import asyncio
import logging

import pytest

from bayeux import BayeuxServer, Delivery, Ended, Overflow, Settings
from bayeux.core import message as message_module
from bayeux.core.session import ServerSession

from ..helpers.core import client, held, one, run


def data(session: ServerSession) -> list[object]:
    return [d.message["data"] for d in session.queue]


def accounted(session: ServerSession) -> None:
    """The session's counters match what its queue holds."""
    assert session.queue_bytes == sum(d.size for d in session.queue)
    assert session.queue_share == sum(d.share for d in session.queue)


# ------------------------------------------------------------------------------ queued


def test_a_queued_listener_vetoes_and_one_that_raises_drops(caplog) -> None:
    server = BayeuxServer()
    session = server.create_session()
    server.subscribe(session, "/feed/*")
    session.on_queued(lambda s, d: d.message["data"] != "secret")
    server.publish("/feed/a", "public")
    server.publish("/feed/a", "secret")
    assert data(session) == ["public"]
    session.on_queued(lambda s, d: 1 / 0)
    with caplog.at_level(logging.ERROR):
        server.publish("/feed/a", "anything")
    assert data(session) == ["public"] and "ZeroDivisionError" in caplog.text
    assert server.stats.dropped["listener"] == 2


def test_other_sessions_are_not_touched_by_one_sessions_listeners() -> None:
    server = BayeuxServer()
    picky, plain = server.create_session(), server.create_session()
    for session in (picky, plain):
        server.subscribe(session, "/feed")
    picky.on_queued(lambda s, d: False)
    server.publish("/feed", 1)
    assert data(picky) == [] and data(plain) == [1]


# -------------------------------------------------------------------------- queue full


@pytest.mark.parametrize("policy", ["drop-newest", "drop-oldest"])
def test_a_queue_full_listener_decides_before_the_policy(policy: str) -> None:
    server = BayeuxServer(Settings(max_queue=2, queue_full_policy=policy))
    session = server.create_session()
    server.subscribe(session, "/q")

    def decide(session: ServerSession, delivery: Delivery) -> Overflow | None:
        value = delivery.message["data"]
        if value == "urgent":
            session.drop_oldest()
            return Overflow.QUEUE
        if value == "junk":
            return Overflow.DROP
        if value == "lazy listener":
            return Overflow.QUEUE  # makes no room: the policy applies, no loop
        return None

    session.on_queue_full(decide)
    for value in (1, 2, "urgent", "junk", 3, "lazy listener"):
        server.publish("/q", value)
    if policy == "drop-newest":
        assert data(session) == [2, "urgent"]
    else:
        assert data(session) == [3, "lazy listener"]
    accounted(session)


# ----------------------------------------------------------------------------- dequeue


def test_a_dequeue_listener_shapes_the_batch_and_positions_still_move() -> None:
    server = BayeuxServer()
    session = server.create_session()

    @session.on_dequeue
    def latest(session: ServerSession, deliveries: list[Delivery]) -> list[Delivery]:
        newest = {d.channel: d for d in deliveries}
        return sorted(newest.values(), key=deliveries.index)

    for n in range(3):
        session.deliver("/a", n)
        session.deliver("/b", n)
    for position, delivery in enumerate(session.queue, start=1):
        delivery.position = position  # as from the engine's log
    sent = session.drain()
    assert [(d.channel, d.message["data"]) for d in sent] == [("/a", 2), ("/b", 2)]
    assert session.written == 6  # past the ones left out too
    accounted(session)


def test_a_dequeue_listener_cannot_add_messages(caplog) -> None:
    server = BayeuxServer()
    session = server.create_session()
    stranger = Delivery({"channel": "/x", "data": "not queued"})
    session.on_dequeue(lambda s, deliveries: [*deliveries, stranger])
    session.deliver("/a", 1)
    with caplog.at_level(logging.ERROR):
        assert [d.message["data"] for d in session.drain()] == [1]
    assert "returned what was not in its batch" in caplog.text


def test_the_ack_extension_numbers_what_the_dequeue_listener_sent() -> None:
    async def main() -> None:
        server = BayeuxServer()
        cid = await client(server, ext={"ack": True})
        session = server.sessions[cid]
        session.on_dequeue(lambda s, deliveries: deliveries[-1:])
        connect = {"channel": "/meta/connect", "clientId": cid, "connectionType": "long-polling"}
        server.finish_connect(held(await server.handle([dict(connect)])))
        hold = held(await server.handle([dict(connect)]))
        for n in range(3):
            session.deliver("/a", n)
        deliveries, reply = server.finish_connect(hold)
        assert [d.message["data"] for d in deliveries] == [2]
        batch = reply["ext"]["ack"]
        assert session.ack is not None
        assert session.ack.pending_bytes == deliveries[0].size
        assert batch >= 1

    run(main())


# ------------------------------------------------------------------------------ events


def test_held_released_and_removed_are_told_sync_and_async() -> None:
    async def main() -> None:
        server = BayeuxServer()
        cid = await client(server)
        session = server.sessions[cid]
        events: list[str] = []
        session.on_held(lambda s: events.append("held"))

        async def released(s: ServerSession) -> None:
            events.append("released")

        session.on_released(released)
        session.on_removed(lambda s, reason: events.append(f"removed {reason.value}"))
        connect = {"channel": "/meta/connect", "clientId": cid, "connectionType": "long-polling"}
        first = await server.handle([dict(connect)])
        server.finish_connect(held(first))  # the first connect is answered at once: no hold
        assert events == []
        second = await server.handle([dict(connect)])
        assert events == ["held"]
        server.finish_connect(held(second))
        await asyncio.sleep(0)
        assert events == ["held", "released"]
        await one(server, channel="/meta/disconnect", clientId=cid)
        assert events == ["held", "released", f"removed {Ended.DISCONNECTED.value}"]

    run(main())


# -------------------------------------------------------------------------- conflation


def test_a_slow_session_gets_the_latest_value_per_key_a_fast_one_everything() -> None:
    server = BayeuxServer()
    server.channel("/prices/*").conflate(key=lambda m: m["data"]["symbol"], backlog=4, after=0)
    slow, fast = server.create_session(), server.create_session()
    for session in (slow, fast):
        server.subscribe(session, "/prices/*")
    got_fast: list[object] = []
    symbols = [f"S{n}" for n in range(10)]
    for tick in range(50):
        for symbol in symbols:
            server.publish(f"/prices/{symbol}", {"symbol": symbol, "tick": tick})
        got_fast += [d.message["data"]["tick"] for d in fast.drain()]
        assert len(slow.queue) <= 2 * len(symbols) + 4  # bounded by the keys, not the ticks
        accounted(slow)
    assert got_fast == [tick for tick in range(50) for _ in symbols]
    taken = [d.message["data"] for d in slow.drain()]  # conflated as it is taken
    assert taken == [{"symbol": symbol, "tick": 49} for symbol in symbols]
    # Every message queued for the slow one is either taken or counted as conflated.
    assert server.stats.dropped["conflated"] == 50 * len(symbols) - len(symbols)


def test_the_newest_value_keeps_its_own_place_and_unkeyed_messages_stay() -> None:
    server = BayeuxServer()
    server.channel("/p").conflate(key=lambda m: m["data"]["k"], backlog=0, after=0)
    session = server.create_session()
    server.subscribe(session, "/p")
    for n, k in enumerate("abab"):
        server.publish("/p", {"k": k, "n": n})
    session.deliver("/other", "not conflated")
    server.publish("/p", {"k": "c", "n": 4})
    server.publish("/p", {"k": "a", "n": 5})
    taken = [m.message["data"] for m in session.drain()]
    assert [d if isinstance(d, str) else (d["k"], d["n"]) for d in taken] == [
        ("b", 3),
        "not conflated",
        ("c", 4),
        ("a", 5),
    ]


def test_partial_takes_conflate_what_they_take_once_past_the_backlog() -> None:
    server = BayeuxServer()
    channel = server.channel("/p")
    channel.conflate(key=lambda m: m["data"]["k"], backlog=64, after=0)
    session = server.create_session()
    server.subscribe(session, "/p")
    for n in range(10):  # under the backlog: not conflated, queued or taken
        server.publish("/p", {"k": "ab"[n % 2], "n": n})
    taken = session.take(session.queue[0].size)  # a slow WebSocket's frame: the head only
    assert [d.message["data"]["n"] for d in taken] == [0]
    assert len(session.queue) == 9
    session.drain()
    channel.conflate(key=lambda m: m["data"]["k"], backlog=4, after=0)
    for n in range(3):  # under this backlog too: nothing conflated as it is queued
        server.publish("/p", {"k": "ab"[n % 2], "n": n})
    server.publish("/p", {"k": "c", "n": 3})
    server.publish("/p", {"k": "a", "n": 4})  # five queued: past the backlog when taken
    taken = session.take(session.queue[0].size)
    assert [d.message["data"]["n"] for d in taken] == [1]  # a0 and a2 merged into a4
    assert [d["n"] for d in data(session)] == [3, 4]  # type: ignore[index]
    accounted(session)


def test_two_conflated_channels_never_merge_each_others_messages() -> None:
    server = BayeuxServer()
    for name in ("/prices/*", "/volumes/*"):
        server.channel(name).conflate(key=lambda m: m["data"]["symbol"], backlog=0, after=0)
    session = server.create_session()
    for name in ("/prices/*", "/volumes/*"):
        server.subscribe(session, name)
    for n in range(3):
        server.publish("/prices/ACME", {"symbol": "ACME", "n": n})
        server.publish("/volumes/ACME", {"symbol": "ACME", "n": n})  # the same key
    assert [(d.channel, d.message["data"]["n"]) for d in session.drain()] == [
        ("/prices/ACME", 2),
        ("/volumes/ACME", 2),
    ]


def test_a_failing_key_costs_the_merge_not_the_message(caplog) -> None:
    server = BayeuxServer()
    server.channel("/p").conflate(key=lambda m: m["data"]["missing"], backlog=0, after=0)
    session = server.create_session()
    server.subscribe(session, "/p")
    with caplog.at_level(logging.ERROR):
        server.publish("/p", {"k": 1})
        server.publish("/p", {"k": 2})
    assert len(session.queue) == 2 and "conflation key" in caplog.text


def test_conflation_can_be_turned_off_and_is_checked() -> None:
    server = BayeuxServer()
    channel = server.channel("/p")
    channel.conflate(key=lambda m: 1, backlog=0, after=0)
    assert channel.conflate(None) is None and channel.conflation is None
    session = server.create_session()
    server.subscribe(session, "/p")
    server.publish("/p", 1)
    server.publish("/p", 2)
    assert data(session) == [1, 2]
    with pytest.raises(TypeError):
        channel.conflate("symbol")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        channel.conflate(lambda m: 1, backlog=-1)
    kept = channel.conflate(lambda m: 1, backlog=3, after=0.5)
    for after in (-1, float("nan"), float("inf"), "1", True):
        with pytest.raises(ValueError):
            channel.conflate(lambda m: 2, after=after)  # type: ignore[arg-type]
    assert channel.conflation is kept  # a refused rule leaves the one in place
    assert kept is not None and (kept.backlog, kept.after) == (3, 0.5)


class _Clock:
    """What `Delivery.born` reads, moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


def test_a_burst_to_a_reader_that_keeps_up_is_not_merged_a_reader_left_behind_is(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = _Clock()
    monkeypatch.setattr(message_module, "time", clock)
    server = BayeuxServer()
    server.channel("/p/*").conflate(key=lambda m: m["channel"], backlog=4, after=0.1)
    fast, slow = server.create_session(), server.create_session()
    for session in (fast, slow):
        server.subscribe(session, "/p/*")
    for turn in range(5):
        for n in range(40):  # one turn of the loop: 40 updates of 2 keys, far past the backlog
            server.publish(f"/p/{n % 2}", {"turn": turn, "n": n})
        taken = fast.drain()  # the fast reader takes everything each turn: loses nothing
        assert [d.message["data"]["n"] for d in taken] == list(range(40))
        clock.now += 0.06  # a turn every 60 ms
        accounted(slow)
    # The slow one never took: its first two turns stayed whole (its oldest had waited less
    # than 0.1 s); from the third on, its queue was conflated as it grew.
    assert server.stats.dropped["conflated"] > 0
    assert len(slow.queue) <= 2 * 2 + 4
    assert [(d.channel, d.message["data"]) for d in slow.drain()] == [
        ("/p/0", {"turn": 4, "n": 38}),
        ("/p/1", {"turn": 4, "n": 39}),
    ]
    # Taking starts the wait again: a reader that emptied its queue is not behind.
    for n in range(10):
        server.publish("/p/0", {"turn": 6, "n": n})
    assert [d.message["data"]["n"] for d in slow.drain()] == list(range(10))
