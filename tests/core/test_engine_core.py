"""The core's side of the engine (core/engine.py), without Redis: a session taken over at any
position of the log, from its record and the entries after it, gets exactly what a session
that had followed the whole log would have got after that position."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bayeux.core import channel as ch
from bayeux.core.engine import (
    Claimed,
    LogEntry,
    LoggedDelivery,
    LoggedMessage,
    LoggedSubscription,
    SessionRecord,
)
from bayeux.core.message import Delivery
from bayeux.core.server import BayeuxServer
from bayeux.testing import ManualClock

CLIENT = "a" * 40
OTHER = "b" * 40
CHANNELS = ["/a", "/b", "/c/x", "/c/y"]
PATTERNS = ["/a", "/b", "/c/*", "/**"]

event = st.one_of(
    st.tuples(st.just("publish"), st.sampled_from(CHANNELS)),
    st.tuples(st.sampled_from(["subscribe", "unsubscribe"]), st.sampled_from(PATTERNS)),
    st.tuples(st.just("other-subscribe"), st.sampled_from(PATTERNS)),
    st.tuples(st.just("to-client"), st.just("")),
)


def build_log(events: list[tuple[str, str]]) -> tuple[list[LogEntry], set[str]]:
    """The log entries these events make (subscription entries carry only what they changed,
    as scripts.SUBSCRIBE writes them), and the session's subscriptions at the end."""
    subscriptions: set[str] = set()
    log: list[LogEntry] = []
    for position, (kind, value) in enumerate(events, start=1):
        if kind == "publish":
            delivery = Delivery({"channel": value, "data": position})
            delivery.position = position
            log.append(LoggedMessage(position, delivery, None))
        elif kind == "to-client":
            delivery = Delivery({"channel": "/service/reply", "data": position})
            delivery.position = position
            log.append(LoggedDelivery(position, CLIENT, delivery))
        elif kind == "other-subscribe":
            log.append(LoggedSubscription(position, OTHER, [value], True))
        else:
            subscribe = kind == "subscribe"
            changed = (value not in subscriptions) if subscribe else (value in subscriptions)
            if subscribe:
                subscriptions.add(value)
            else:
                subscriptions.discard(value)
            log.append(LoggedSubscription(position, CLIENT, [value] if changed else [], subscribe))
    return log, subscriptions


def followed_throughout(log: list[LogEntry]) -> list[int]:
    """What a session served by one process from the start gets: the data of its queue."""
    server = BayeuxServer(clock=ManualClock())
    session = server.create_session()
    server.sessions[CLIENT] = server.sessions.pop(session.id)
    session.id = CLIENT
    server.apply_log(log)
    return [d.message["data"] for d in session.drain()]


@settings(max_examples=300, deadline=None)
@given(st.lists(event, max_size=40), st.data())
def test_a_session_taken_over_anywhere_gets_what_it_would_have_got(events, data) -> None:
    log, final = build_log(events)
    expected = followed_throughout(log)
    position = data.draw(st.integers(min_value=0, max_value=len(log)), label="taken at")
    # Everything up to `position` was written to the client by the process it left (the
    # data of every entry is its position).
    claimer = BayeuxServer(clock=ManualClock())
    # The record: subscriptions as they are now; the backlog: what the engine reads after the
    # position (entries of other sessions filtered out, as log.decode(only=...) does).
    backlog = [
        e for e in log if e.position > position and getattr(e, "client_id", CLIENT) == CLIENT
    ]
    record = SessionRecord(CLIENT, sorted(final), position, connected=True)
    session = claimer._adopt(Claimed(record, backlog, len(log)), None)
    got = [d.message["data"] for d in session.drain()]
    assert got == [x for x in expected if x > position]
    assert session.subscriptions == final
    # The reader may hand over again entries the backlog had (it was behind): none twice.
    claimer.apply_log(log)
    assert session.drain() == []
    # And the claimer applies what comes next in the log, as the reader hands it over.
    later = Delivery({"channel": "/c/x", "data": "later"})
    later.position = len(log) + 1
    claimer.apply_log([LoggedMessage(len(log) + 1, later, None)])
    wanted = any(ch.matches(p, "/c/x") for p in final)
    assert [d.message["data"] for d in session.drain()] == (["later"] if wanted else [])


def test_sessions_served_all_along_get_what_the_reader_hands_over_after_a_takeover() -> None:
    # A takeover reads the log ahead of the reader; until the reader passes that point, the
    # broadcasts it hands over are checked against each session's position. A session served
    # here all along (its position not moved by every broadcast) still gets each of them once.
    server = BayeuxServer(clock=ManualClock())
    resident = server.create_session()
    server.subscribe(resident, "/a")

    def broadcast(position: int) -> LoggedMessage:
        delivery = Delivery({"channel": "/a", "data": position})
        delivery.position = position
        return LoggedMessage(position, delivery, None)

    server.apply_log([broadcast(1), broadcast(2)])
    record = SessionRecord(CLIENT, ["/a"], 2, connected=True)
    moved_in = server._adopt(Claimed(record, [broadcast(3), broadcast(4)], 4), None)
    server.apply_log([broadcast(p) for p in range(3, 7)])
    assert [d.message["data"] for d in resident.drain()] == [1, 2, 3, 4, 5, 6]
    assert [d.message["data"] for d in moved_in.drain()] == [3, 4, 5, 6]


def test_a_process_alone_has_the_local_engine_which_shares_nothing() -> None:
    from bayeux.core.engine import LocalEngine
    from bayeux.core.server import BayeuxServer

    server = BayeuxServer()
    assert isinstance(server.engine, LocalEngine) and server.engine.shared is False
    subscriber = server.create_session()
    server.subscribe(subscriber, "/news")
    # Delivered here at once: nothing is appended anywhere (LocalEngine.append raises).
    assert server.publish("/news", {"n": 1}) == 1
    assert [d.message["data"] for d in subscriber.drain()] == [{"n": 1}]
