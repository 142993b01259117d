"""The activity extension (--activity-max-inactivity, --activity-mode): a session whose client
only heartbeats (or, in client-server mode, that the server sends nothing either) is
disconnected at its first /meta/connect past the limit, told `reconnect: none`; activity keeps
it; the sweeper does none of this work; off by default."""

from __future__ import annotations

from typing import Any

import pytest

from bayeux import Activity, ActivityExtension, BayeuxServer, Ended, Settings
from bayeux.__main__ import build_parser, settings_from
from bayeux.testing import ManualClock

from ..helpers.core import client, held, one, run

LIMIT_MS = 60_000


def idle_server(mode: str = "client", clock: ManualClock | None = None) -> BayeuxServer:
    settings = Settings(activity_max_inactivity=LIMIT_MS, activity_mode=mode)
    return BayeuxServer(settings, clock=clock or ManualClock())


async def heartbeat(server: BayeuxServer, cid: str) -> dict[str, Any]:
    """One /meta/connect, answered: its reply (the messages it carried in `carried`)."""
    message = {"channel": "/meta/connect", "clientId": cid, "connectionType": "long-polling"}
    outcome = await server.handle([message])
    if outcome.connect is None:
        (reply,) = outcome.replies
        return reply
    deliveries, reply = server.finish_connect(held(outcome))
    return {**reply, "carried": [d.message for d in deliveries]}


def removals(server: BayeuxServer) -> list[Ended]:
    seen: list[Ended] = []
    server.on_session_removed(lambda session, ended: seen.append(ended))
    return seen


def test_off_by_default_and_on_with_its_options() -> None:
    assert Settings().activity_max_inactivity == 0
    assert BayeuxServer().extensions == []
    args = build_parser().parse_args(
        ["--activity-max-inactivity", "90000", "--activity-mode", "client-server"]
    )
    (activity,) = BayeuxServer(settings_from(args)).extensions
    assert isinstance(activity, ActivityExtension)
    assert activity.max_inactivity == 90 and activity.activity is Activity.CLIENT_SERVER
    for bad in ({"activity_max_inactivity": -1}, {"activity_mode": "server"}):
        with pytest.raises(ValueError):
            Settings(**bad)


def test_a_client_that_only_heartbeats_is_disconnected_past_the_limit() -> None:
    async def scenario() -> None:
        clock = ManualClock()
        server = idle_server(clock=clock)
        ended = removals(server)
        cid = await client(server)
        for _ in range(2):  # 50 s of heartbeats: not yet
            clock.now += 25
            assert (await heartbeat(server, cid))["advice"]["reconnect"] == "retry"
        clock.now += 11  # 61 s since the handshake
        reply = await heartbeat(server, cid)
        assert reply["successful"] is True
        assert reply["advice"] == {"reconnect": "none", "interval": 0}
        assert cid not in server.sessions and ended == [Ended.KICKED]
        # Its client is told to stop again should it connect once more.
        again = await heartbeat(server, cid)
        assert again["successful"] is False and again["advice"]["reconnect"] == "none"

    run(scenario())


@pytest.mark.parametrize(
    "activity",
    [
        {"channel": "/chat/room", "data": "hello"},
        {"channel": "/meta/subscribe", "subscription": "/chat/room"},
        {"channel": "/meta/unsubscribe", "subscription": "/chat/room"},
        {"channel": "/service/anything", "data": None},
    ],
)
def test_what_the_client_sends_besides_heartbeats_keeps_it(activity: dict[str, Any]) -> None:
    async def scenario() -> None:
        clock = ManualClock()
        server = idle_server(clock=clock)
        cid = await client(server)
        for _ in range(20):  # 20 minutes
            clock.now += 30
            await one(server, clientId=cid, **activity)
            clock.now += 30
            assert (await heartbeat(server, cid))["advice"]["reconnect"] == "retry"
        assert cid in server.sessions

    run(scenario())


@pytest.mark.parametrize(("mode", "kept"), [("client", False), ("client-server", True)])
def test_what_the_server_sends_counts_in_client_server_mode(mode: str, kept: bool) -> None:
    async def scenario() -> None:
        clock = ManualClock()
        server = idle_server(mode, clock)
        cid = await client(server)
        await one(server, channel="/meta/subscribe", clientId=cid, subscription="/ticks")
        for minute in range(3):
            clock.now += 40
            server.publish("/ticks", minute)
            reply = await heartbeat(server, cid)
            if cid not in server.sessions:
                break
            assert reply["carried"] == [{"channel": "/ticks", "data": minute}]
        assert (cid in server.sessions) is kept

    run(scenario())


def test_client_server_mode_ends_a_session_when_neither_side_sends() -> None:
    async def scenario() -> None:
        clock = ManualClock()
        server = idle_server("client-server", clock)
        cid = await client(server)
        await one(server, channel="/meta/subscribe", clientId=cid, subscription="/quiet")
        for _ in range(3):
            clock.now += 25
            reply = await heartbeat(server, cid)
        assert reply["advice"]["reconnect"] == "none"
        assert cid not in server.sessions

    run(scenario())


def test_sessions_it_keeps_a_time_for_are_forgotten_when_they_end() -> None:
    async def scenario() -> None:
        server = idle_server("client-server")
        (activity,) = server.extensions
        assert isinstance(activity, ActivityExtension)
        ids = [await client(server) for _ in range(20)]
        assert activity.tracked == 20
        for cid in ids[:10]:
            await one(server, channel="/meta/disconnect", clientId=cid)
        server.clock.now += 3600  # type: ignore[attr-defined]
        server.sweep()  # the other ten expire
        assert server.sessions == {} and activity.tracked == 0

    run(scenario())


def test_the_sweeper_does_none_of_its_work() -> None:
    """Idle sessions are found at their own heartbeats: a sweep over many sessions asks the
    extension nothing (CometD's design: no per-tick scan)."""

    async def scenario() -> None:
        clock = ManualClock()
        server = idle_server(clock=clock)
        (activity,) = server.extensions
        asked: list[float] = []

        def counting() -> float:
            asked.append(clock.now)
            return clock.now

        activity._clock = counting  # type: ignore[attr-defined]
        for _ in range(200):
            await client(server)
        asked.clear()
        clock.now += 5
        for _ in range(10):
            server.sweep()
        assert asked == [] and len(server.sessions) == 200

    run(scenario())


def test_server_side_and_local_sessions_are_left_alone() -> None:
    clock = ManualClock()
    activity = ActivityExtension(60, lambda s: pytest.fail("disconnected"), clock=clock)
    server = BayeuxServer()
    session = server.create_session()
    session.local = True
    assert activity.incoming(session, {"channel": "/meta/connect"})
    clock.now += 3600
    assert activity.incoming(session, {"channel": "/meta/connect"})
    assert activity.incoming(None, {"channel": "/meta/connect"})
    assert activity.tracked == 0


def test_its_limit_is_positive() -> None:
    with pytest.raises(ValueError, match="max_inactivity"):
        ActivityExtension(0, lambda s: None, clock=ManualClock())


def test_a_view_of_a_session_another_process_serves_is_not_tracked() -> None:
    """With --redis, a message reaching a process that does not serve its session uses a view
    made for that request: the serving process judges the session, and the view leaves
    nothing behind here."""
    clock = ManualClock()
    activity = ActivityExtension(60, lambda s: pytest.fail("disconnected"), clock=clock)
    view = BayeuxServer().create_session()
    view.remote = True
    for channel in ("/chat/room", "/meta/connect"):
        assert activity.incoming(view, {"channel": channel, "data": 1})
        clock.now += 3600
    assert activity.tracked == 0
