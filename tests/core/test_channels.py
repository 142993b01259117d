"""Channels as objects (core/channels.py): what a channel owns (flags, hooks, attributes), its
subscribers, its life (initializers, added and removed events), publishing as a session, per-
message lazy, and batches."""

from __future__ import annotations

import asyncio

import pytest

from bayeux import Authorization, BayeuxServer, Settings
from bayeux.core.session import ServerSession

from ..helpers.core import client, one, run, watched


def channels(session: ServerSession) -> list[str]:
    return [d.channel for d in session.queue]


# ------------------------------------------------------------------------------ objects


def test_a_channel_is_one_object_made_once_and_initialized_once() -> None:
    server = BayeuxServer()
    calls: list[str] = []
    server.add_channel_initializer("/rooms/*", lambda c: calls.append("pattern " + c.name))
    first = server.channel("/rooms/a", lambda c: calls.append("own " + c.name))
    again = server.channel("/rooms/a", lambda c: calls.append("never"))
    assert first is again and server.find_channel("/rooms/a") is first
    assert calls == ["pattern /rooms/a", "own /rooms/a"]
    assert server.find_channel("/rooms/b") is None


@pytest.mark.parametrize("name", ["", "rooms", "/a//b", "/a/*/b", "/a/{x}", "/a/b\n"])
def test_invalid_names_are_refused(name: str) -> None:
    with pytest.raises(ValueError):
        BayeuxServer().channel(name)


def test_a_failing_initializer_or_listener_is_logged_not_raised(caplog) -> None:
    server = BayeuxServer()
    server.add_channel_initializer("/x/*", lambda c: 1 / 0)
    server.on_channel_added(lambda c: 1 / 0)
    channel = server.channel("/x/y")
    assert channel.name == "/x/y"
    assert caplog.text.count("ZeroDivisionError") == 2


def test_subscriptions_make_objects_only_while_watched_and_drop_them_when_empty() -> None:
    server = BayeuxServer()
    session = server.create_session()
    server.subscribe(session, "/quiet")
    assert server.find_channel("/quiet") is None  # nobody watches: no object made
    events: list[str] = []
    server.on_channel_added(lambda c: events.append("+" + c.name))
    server.on_channel_removed(lambda c: events.append("-" + c.name))
    server.add_channel_initializer("/kept/*", lambda c: setattr(c, "persistent", True))
    server.subscribe(session, "/loud")
    server.subscribe(session, "/kept/one")
    other = server.create_session()
    server.subscribe(other, "/loud")
    assert events == ["+/loud", "+/kept/one"]  # once each, at the first subscriber
    server.unsubscribe(session, "/loud")
    assert events == ["+/loud", "+/kept/one"]
    server.remove_session(other)
    server.unsubscribe(session, "/kept/one")
    assert events == ["+/loud", "+/kept/one", "-/loud"]  # the persistent one stays
    assert server.find_channel("/kept/one") is not None
    assert server.find_channel("/loud") is None


def test_a_channel_the_application_asked_for_keeps_its_settings() -> None:
    server = BayeuxServer()
    server.on_channel_removed(lambda c: None)
    news = server.channel("/news")
    news.lazy_timeout = 0.25
    news.attributes["owner"] = "desk"
    session = server.create_session()
    server.subscribe(session, "/news")
    server.unsubscribe(session, "/news")
    assert server.find_channel("/news") is news
    assert (news.lazy, news.lazy_timeout, news.attributes) == (True, 0.25, {"owner": "desk"})


def test_remove_unsubscribes_everyone_and_forgets_the_channel() -> None:
    server = BayeuxServer()
    removed: list[str] = []
    server.on_channel_removed(lambda c: removed.append(c.name))
    told: list[tuple[str, str]] = []
    server.on_unsubscribed(lambda s, c: told.append((s.id, c)))
    sessions = [server.create_session() for _ in range(3)]
    for session in sessions:
        server.subscribe(session, "/old")
    server.channel("/old").remove()
    assert removed == ["/old"] and server.find_channel("/old") is None
    assert all("/old" not in s.subscriptions for s in sessions)
    assert sorted(told) == sorted((s.id, "/old") for s in sessions)
    assert server.publish("/old", 1) == 0


@pytest.mark.parametrize("seconds", [-1, 3601, float("nan")])
def test_a_lazy_timeout_out_of_range_is_refused(seconds: float) -> None:
    channel = BayeuxServer().channel("/x")
    with pytest.raises(ValueError):
        channel.lazy_timeout = seconds
    assert channel.lazy_timeout is None and not channel.lazy


# ------------------------------------------------------------------------- subscribers


def test_subscribers_are_counted_and_listed_within_the_limit() -> None:
    server = BayeuxServer()
    sessions = [server.create_session() for _ in range(5)]
    for session in sessions:
        server.subscribe(session, "/room")
    server.subscribe(sessions[0], "/room/*")  # a pattern is a channel of its own
    room = server.channel("/room")
    assert room.subscriber_count == 5
    assert len(room.subscribers(limit=2)) == 2
    assert set(room.subscribers()) == set(sessions)
    assert room.subscribers(limit=-3) == []
    assert server.channel("/room/*").subscriber_count == 1
    listing = asyncio.run(room.deployment_subscribers(limit=3))
    assert listing.count == 5 and len(listing.client_ids) == 3
    assert set(listing.client_ids) <= {s.id for s in sessions}


# ------------------------------------------------------------------------------- hooks


def test_a_channels_listener_and_authorizer_apply_to_client_publishes() -> None:
    async def main() -> None:
        server = BayeuxServer()
        room = server.channel("/chat/*")

        @room.add_listener
        def no_caps(session, channel, message):
            return not str(message["data"]).isupper()

        def not_secret(operation, channel, session, message):
            return Authorization.DENY if channel == "/chat/secret" else Authorization.GRANT

        guard = room.add_authorizer(not_secret)
        cid = await client(server)
        ok = await one(server, channel="/chat/a", clientId=cid, data="hello")
        shout = await one(server, channel="/chat/a", clientId=cid, data="HELLO")
        secret = await one(server, channel="/chat/secret", clientId=cid, data="x")
        assert ok["successful"] is True
        assert shout["error"] == "404:/chat/a:Message deleted"
        assert secret["successful"] is False and secret["error"].startswith("403")
        room.remove_listener(no_caps)
        room.remove_authorizer(guard)
        assert (await one(server, channel="/chat/a", clientId=cid, data="HI"))["successful"]
        assert (await one(server, channel="/chat/secret", clientId=cid, data="x"))["successful"]
        assert server.batches_may_wait() is False  # nothing installed any more

    run(main())


# -------------------------------------------------------------------------------- lazy


def test_a_channels_own_lazy_timeout_is_used_and_a_patterns_applies_to_its_channels() -> None:
    server = BayeuxServer(Settings(max_lazy_timeout=3000))
    server.channel("/ticks/fast").lazy_timeout = 0.2
    server.channel("/ticks/*").lazy = True
    _, fast = watched(server, "/ticks/fast")
    _, slow = watched(server, "/ticks/slow")
    _, plain = watched(server, "/plain")
    server.publish("/ticks/fast", 1)
    server.publish("/ticks/slow", 1)
    server.publish("/plain", 1)
    assert fast.events == [("wake_after", 0.2)]  # its own timeout before the pattern's
    assert slow.events == [("wake_after", 3.0)]
    assert plain.events == [("wake", None)]


def test_a_concrete_channels_timeout_comes_first_whatever_the_order_made() -> None:
    server = BayeuxServer(Settings(max_lazy_timeout=3000))
    server.channel("/ticks/*").lazy = True  # the pattern first
    server.channel("/ticks/fast").lazy_timeout = 0.2
    _, fast = watched(server, "/ticks/fast")
    server.publish("/ticks/fast", 1)
    assert fast.events == [("wake_after", 0.2)]


def test_a_lazy_publish_waits_the_channels_own_timeout_even_if_not_lazy() -> None:
    server = BayeuxServer(Settings(max_lazy_timeout=3000))
    quick = server.channel("/quick")
    quick.lazy_timeout = 0.3
    quick.lazy = False
    _, waiter = watched(server, "/quick")
    server.publish("/quick", "prompt")
    quick.publish("later", lazy=True)
    assert waiter.events == [("wake", None)]
    _, other = watched(server, "/quick")
    quick.publish("later", lazy=True)
    assert other.events == [("wake_after", 0.3)]


def test_a_message_published_lazily_waits_like_a_lazy_channels() -> None:
    server = BayeuxServer(Settings(max_lazy_timeout=1500))
    server.channel("/quick").lazy_timeout = 0.05
    _, waiter = watched(server, "/news")
    _, quick = watched(server, "/quick")
    server.publish("/news", "later", lazy=True)
    server.channel("/quick").publish("soon", lazy=True)
    server.publish("/news", "now")  # a prompt message wakes it at once
    assert waiter.events == [("wake_after", 1.5), ("wake", None)]
    assert quick.events == [("wake_after", 0.05)]


# ------------------------------------------------------------- broadcast to publisher


@pytest.mark.parametrize(
    ("server_flag", "channel_flag", "session_flag", "echoed"),
    [
        (True, None, None, True),
        (False, None, None, False),
        (True, False, None, False),
        (False, True, None, True),
        (True, None, False, False),
        (True, True, False, False),
        (False, True, True, True),
        (False, None, True, False),  # the channel (the server's) does not allow it
    ],
)
def test_broadcast_to_publisher_needs_the_channel_and_the_session(
    server_flag: bool, channel_flag: bool | None, session_flag: bool | None, echoed: bool
) -> None:
    async def main() -> None:
        server = BayeuxServer(Settings(broadcast_to_publisher=server_flag))
        if channel_flag is not None:
            server.channel("/chat/*").broadcast_to_publisher = channel_flag
        cid = await client(server)
        await one(server, channel="/meta/subscribe", clientId=cid, subscription="/chat/a")
        publisher = server.sessions[cid]
        publisher.broadcast_to_publisher = session_flag
        listener = server.create_session()
        server.subscribe(listener, "/chat/a")
        reply = await one(server, channel="/chat/a", clientId=cid, data="from the client")
        assert reply["successful"] is True
        reached = server.publish("/chat/a", "on its behalf", sender=publisher)
        server.deliver(publisher, "/chat/a", "delivered", sender=publisher)
        server.deliver(publisher, "/service/x", "a service reply always goes", sender=publisher)
        expected = ["from the client", "on its behalf", "delivered"] if echoed else []
        got = [d.message["data"] for d in publisher.queue]
        assert got == [*expected, "a service reply always goes"]
        assert [d.message["data"] for d in listener.queue] == ["from the client", "on its behalf"]
        assert reached == (2 if echoed else 1)

    run(main())


def test_a_concrete_channels_flag_comes_before_a_patterns() -> None:
    server = BayeuxServer()
    server.channel("/chat/*").broadcast_to_publisher = False
    server.channel("/chat/echo").broadcast_to_publisher = True
    session = server.create_session()
    for name in ("/chat/echo", "/chat/quiet"):
        server.subscribe(session, name)
        server.publish(name, name, sender=session)
    assert channels(session) == ["/chat/echo"]


def test_session_deliver_goes_through_its_server() -> None:
    server = BayeuxServer()
    session = server.create_session()
    session.deliver("/alerts", {"n": 1})
    assert [d.message for d in session.queue] == [{"channel": "/alerts", "data": {"n": 1}}]
    with pytest.raises(ValueError):
        session.deliver("/meta/connect", 1)
    with pytest.raises(RuntimeError):
        ServerSession("x" * 40, 0.0).deliver("/alerts", 1)


# ----------------------------------------------------------------------------- batches


def test_a_server_batch_wakes_each_session_once_when_it_closes() -> None:
    server = BayeuxServer()
    first, one_waiter = watched(server, "/a/*")
    second, two_waiter = watched(server, "/a/*")
    with server.batch():
        for n in range(3):
            server.publish(f"/a/{n}", n)
        server.deliver(first, "/direct", "x")
        assert one_waiter.events == [] and two_waiter.events == []
        with server.batch():  # nested: only the outermost sends
            server.publish("/a/3", 3)
        assert one_waiter.events == []
    assert one_waiter.events == [("wake", None)] and two_waiter.events == [("wake", None)]
    assert channels(first) == ["/a/0", "/a/1", "/a/2", "/direct", "/a/3"]
    server.publish("/a/4", 4)  # after the batch: as usual (the queue was not drained)
    assert one_waiter.events == [("wake", None)]


def test_a_session_batch_holds_that_session_only() -> None:
    server = BayeuxServer()
    held, held_waiter = watched(server, "/a")
    free, free_waiter = watched(server, "/a")
    with held.batch():
        server.publish("/a", 1)
        assert held_waiter.events == [] and free_waiter.events == [("wake", None)]
        with server.batch():
            server.publish("/a", 2)
        assert held_waiter.events == []  # its own batch is still open
    assert held_waiter.events == [("wake", None)]
    assert len(held.queue) == 2 and len(free.queue) == 2


def test_a_batch_spans_awaits_and_closes_on_an_exception() -> None:
    async def main() -> None:
        server = BayeuxServer()
        session, waiter = watched(server, "/a")
        with pytest.raises(RuntimeError), server.batch():
            server.publish("/a", 1)
            await asyncio.sleep(0)
            server.publish("/a", 2)
            raise RuntimeError("the body failed")
        assert waiter.events == [("wake", None)] and len(session.queue) == 2
        assert server.batched is None  # nothing left open

    run(main())


def test_a_batch_skips_sessions_that_ended_meanwhile() -> None:
    server = BayeuxServer()
    session, waiter = watched(server, "/a")
    with server.batch():
        server.publish("/a", 1)
        server.remove_session(session)
    assert ("wake", None) not in waiter.events


def test_a_publish_reaching_a_local_session_without_a_running_loop_keeps_it_queued() -> None:
    from bayeux import LocalSession

    server = BayeuxServer()
    received: list[object] = []

    async def subscribed() -> LocalSession:
        local = await LocalSession.connect(server)
        await local.subscribe("/news", lambda message: received.append(message["data"]))
        return local

    local = asyncio.run(subscribed())
    assert server.publish("/news", "while no loop runs") == 1  # no RuntimeError
    assert [d.message["data"] for d in local.session.queue] == ["while no loop runs"]

    async def later() -> None:
        local.wake()
        await asyncio.sleep(0)

    asyncio.run(later())
    assert received == ["while no loop runs"]
