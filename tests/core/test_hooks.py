"""The server-side API: policy, authorizers, listeners, services, extensions, local sessions."""

from __future__ import annotations

import asyncio

import pytest

from bayeux import (
    Authorization,
    BayeuxServer,
    Ended,
    Extension,
    LocalSession,
    Operation,
    SecurityPolicy,
    ServerSession,
    ServiceError,
    Settings,
)
from bayeux.testing import ManualClock as Clock

from ..helpers.core import HS, client, one, run

# ------------------------------------------------------------------------ security policy


class Policy(SecurityPolicy):
    def __init__(self) -> None:
        self.created: list[str] = []

    async def can_handshake(self, session, message):
        await asyncio.sleep(0)  # an awaiting check, like a token look-up
        return (message.get("ext") or {}).get("token") == "secret"

    def can_create(self, session, channel, message):
        self.created.append(channel)
        return not channel.startswith("/nocreate")

    def can_subscribe(self, session, channel, message):
        return not channel.startswith("/private")

    async def can_publish(self, session, channel, message):
        return channel != "/readonly"


def test_policy_denies_handshake_subscribe_publish_create() -> None:
    async def scenario() -> None:
        policy = Policy()
        server = BayeuxServer(policy=policy)
        added: list[ServerSession] = []
        server.on_session_added(added.append)
        denied = await one(server, **HS)
        assert denied["successful"] is False
        assert denied["error"] == "403::Handshake denied"
        assert denied["advice"]["reconnect"] == "none"
        assert not server.sessions and not added
        cid = await client(server, ext={"token": "secret"})
        assert [s.id for s in added] == [cid]

        reply = await one(
            server, channel="/meta/subscribe", clientId=cid, subscription="/private/x"
        )
        assert reply["error"] == "403:/private/x:Subscription denied"
        reply = await one(
            server, channel="/meta/subscribe", clientId=cid, subscription="/nocreate/x"
        )
        assert reply["error"] == "403:/nocreate/x:Subscription denied"
        reply = await one(server, channel="/readonly", clientId=cid, data=1)
        assert reply == {
            "channel": "/readonly",
            "successful": False,
            "error": "403:/readonly:Publish denied",
        }
        reply = await one(server, channel="/meta/subscribe", clientId=cid, subscription="/ok")
        assert reply["successful"] is True
        # can_create is asked only for channels nobody uses yet.
        policy.created.clear()
        other = await client(server, ext={"token": "secret"})
        await one(server, channel="/meta/subscribe", clientId=other, subscription="/ok")
        await one(server, channel="/ok", clientId=other, data=1)
        assert policy.created == []

    run(scenario())


def test_authorizers_with_wildcard_scope() -> None:
    async def scenario() -> None:
        server = BayeuxServer()
        calls = []

        def members_only(operation, channel, session, message):
            calls.append((operation, channel))
            if session.attributes.get("member"):
                return Authorization.GRANT
            return Authorization.IGNORE

        async def no_publish_to_announce(operation, channel, session, message):
            if operation is Operation.PUBLISH and channel == "/rooms/announce":
                return Authorization.DENY
            return Authorization.IGNORE

        server.add_authorizer("/rooms/**", members_only)
        server.add_authorizer("/rooms/announce", no_publish_to_announce)
        cid = await client(server)
        session = server.sessions[cid]
        reply = await one(server, channel="/meta/subscribe", clientId=cid, subscription="/rooms/a")
        assert reply["successful"] is False  # nobody granted
        assert (Operation.CREATE, "/rooms/a") in calls
        session.attributes["member"] = True
        reply = await one(server, channel="/meta/subscribe", clientId=cid, subscription="/rooms/a")
        assert reply["successful"] is True
        assert (await one(server, channel="/rooms/a", clientId=cid, data=1))["successful"] is True
        reply = await one(server, channel="/rooms/announce", clientId=cid, data=1)
        assert reply["error"] == "403:/rooms/announce:Publish denied"  # a DENY beats a GRANT
        # Channels outside every authorizer's scope need no grant.
        assert (await one(server, channel="/elsewhere", clientId=cid, data=1))["successful"] is True

    run(scenario())


# ------------------------------------------------------------------------------ listeners


def test_session_and_subscription_listeners() -> None:
    async def scenario() -> None:
        clock = Clock()
        server = BayeuxServer(Settings(max_interval=1000), clock=clock)
        events: list[tuple[str, str, object]] = []
        server.on_session_removed(lambda s, why: events.append(("removed", s.id, why)))
        server.on_subscribed(lambda s, ch: events.append(("sub", s.id, ch)))
        server.on_unsubscribed(lambda s, ch: events.append(("unsub", s.id, ch)))
        a, b = await client(server), await client(server)
        await one(server, channel="/meta/subscribe", clientId=a, subscription="/x")
        await one(server, channel="/meta/unsubscribe", clientId=a, subscription="/x")
        await one(server, channel="/meta/subscribe", clientId=a, subscription="/y")
        await one(server, channel="/meta/disconnect", clientId=a)
        clock.now += 2
        server.sweep()
        assert events == [
            ("sub", a, "/x"),
            ("unsub", a, "/x"),
            ("sub", a, "/y"),
            ("unsub", a, "/y"),  # removal unsubscribes
            ("removed", a, Ended.DISCONNECTED),
            ("removed", b, Ended.EXPIRED),
        ]

    run(scenario())


def test_failing_listener_does_not_break_the_server() -> None:
    async def scenario() -> None:
        server = BayeuxServer()
        server.on_session_added(lambda s: 1 / 0)
        assert await client(server)

    run(scenario())


def test_message_listener_rewrites_drops_and_survives_errors() -> None:
    async def scenario() -> None:
        server = BayeuxServer()

        def censor(session, channel, message):
            message["data"] = {"text": message["data"]["text"].replace("darn", "****")}

        async def no_shouting(session, channel, message):
            return not message["data"]["text"].isupper()

        def broken(session, channel, message):
            if message["data"]["text"] == "boom":
                raise RuntimeError("listener bug")

        server.add_message_listener("/chat/*", censor)
        server.add_message_listener("/chat/**", no_shouting)
        server.add_message_listener("/chat/room", broken)
        sub, pub = await client(server), await client(server)
        await one(server, channel="/meta/subscribe", clientId=sub, subscription="/chat/room")
        reply = await one(server, channel="/chat/room", clientId=pub, data={"text": "oh darn"})
        assert reply["successful"] is True
        reply = await one(server, channel="/chat/room", clientId=pub, data={"text": "HEY"})
        assert reply == {
            "channel": "/chat/room",
            "successful": False,
            "error": "404:/chat/room:Message deleted",
        }
        reply = await one(server, channel="/chat/room", clientId=pub, data={"text": "boom"})
        assert reply["successful"] is False
        assert [d.message["data"] for d in server.sessions[sub].drain()] == [{"text": "oh ****"}]

    run(scenario())


# ------------------------------------------------------------------------------- services


def test_services_answer_the_requester_only() -> None:
    async def scenario() -> None:
        server = BayeuxServer()
        server.add_service("/service/echo", lambda request: {"echo": request.data})

        async def slow(request):
            await asyncio.sleep(0.01)
            return request.data * 2

        def fails(request):
            raise ServiceError("No such user", data={"user": request.data})

        def crashes(request):
            raise KeyError("bug")

        server.add_service("/service/slow", slow)
        server.add_service("/service/users/*", fails)
        server.add_service("/service/crash", crashes)
        asker, other = await client(server), await client(server)
        await one(server, channel="/meta/subscribe", clientId=other, subscription="/**")
        reply = await one(server, channel="/service/echo", clientId=asker, data="hi", id="7")
        assert reply == {"channel": "/service/echo", "id": "7", "successful": True}
        await one(server, channel="/service/slow", clientId=asker, data=21, id="8")
        await one(server, channel="/service/users/x", clientId=asker, data="bob", id="9")
        await one(server, channel="/service/crash", clientId=asker, data=0, id="10")
        await asyncio.sleep(0.05)
        answers = {d.message["id"]: d.message for d in server.sessions[asker].drain()}
        assert answers["7"] == {
            "channel": "/service/echo",
            "id": "7",
            "successful": True,
            "data": {"echo": "hi"},
        }
        assert answers["8"]["data"] == 42 and answers["8"]["successful"] is True
        assert answers["9"] == {
            "channel": "/service/users/x",
            "id": "9",
            "successful": False,
            "error": "400:/service/users/x:No such user",
            "data": {"user": "bob"},
        }
        assert answers["10"]["successful"] is False and answers["10"]["error"].startswith("500:")
        assert not server.sessions[other].queue

    run(scenario())


def test_add_service_rejects_non_service_channels() -> None:
    with pytest.raises(ValueError):
        BayeuxServer().add_service("/chat", lambda r: None)


# ----------------------------------------------------------------------------- extensions


class Stamp(Extension):
    def __init__(self) -> None:
        self.broadcasts = 0

    def incoming(self, session, message):
        return message.get("data") != "forbidden"

    def outgoing(self, session, message):
        if session is None and "data" in message:
            self.broadcasts += 1
            message.setdefault("ext", {})["stamped"] = True
        if message["channel"] == "/meta/handshake":
            message.setdefault("ext", {})["server"] = "bayeux"
        return True


class Private(Extension):
    def outgoing(self, session, message):
        if "data" in message:
            message["ext"] = {**message.get("ext", {}), "for": session.id}
        return message.get("data") != "hide-from-me"


def test_server_and_session_extensions() -> None:
    async def scenario() -> None:
        server = BayeuxServer()
        stamp = Stamp()
        server.add_extension(stamp)
        reply = await one(server, **HS)
        assert reply["ext"]["server"] == "bayeux"
        plain, special, pub = reply["clientId"], await client(server), await client(server)
        server.sessions[special].add_extension(Private())
        for cid in (plain, special):
            await one(server, channel="/meta/subscribe", clientId=cid, subscription="/n")
        reply = await one(server, channel="/n", clientId=pub, data="forbidden")
        assert reply["error"] == "404:/n:Message deleted"
        await one(server, channel="/n", clientId=pub, data="x")
        await one(server, channel="/n", clientId=pub, data="hide-from-me")
        assert stamp.broadcasts == 2  # once per message, not per subscriber
        plain_got = server.sessions[plain].drain()
        special_got = server.sessions[special].drain()
        assert [d.message["ext"] for d in plain_got] == [{"stamped": True}] * 2
        assert [d.message["ext"] for d in special_got] == [{"stamped": True, "for": special}]
        # The plain subscriber's copy is the shared one; the special one got a private copy.
        assert "for" not in plain_got[0].message["ext"]

    run(scenario())


# ---------------------------------------------------------------------------- local session


def test_local_session_subscribes_and_publishes() -> None:
    async def scenario() -> None:
        server = BayeuxServer()
        local = await LocalSession.connect(server)
        got: list[dict[str, object]] = []
        assert (await local.subscribe("/chat/*", got.append))["successful"] is True
        remote = await client(server)
        await one(server, channel="/meta/subscribe", clientId=remote, subscription="/chat/room")
        await one(server, channel="/chat/room", clientId=remote, data="from remote")
        assert (await local.publish("/chat/room", "from local"))["successful"] is True
        await asyncio.sleep(0)
        assert [m["data"] for m in got] == ["from remote", "from local"]
        assert [d.message["data"] for d in server.sessions[remote].drain()] == [
            "from remote",
            "from local",
        ]
        # A remote connect cannot take a local session over.
        reply = await one(
            server, channel="/meta/connect", clientId=local.id, connectionType="long-polling"
        )
        assert reply["error"] == "402::Unknown client"
        server.sweep()
        assert local.id in server.sessions

    run(scenario())


def test_outgoing_extensions_run_in_reverse_and_session_ones_first() -> None:
    """CometD's order (and add_extension's docstring): incoming in the order added, outgoing
    in reverse; a session's own extensions after the server's in, before them out."""
    from bayeux import Extension

    seen: list[str] = []

    class Named(Extension):
        def __init__(self, name: str) -> None:
            self.name = name

        def incoming(self, session, message):
            seen.append(f"in {self.name}")
            return True

        def outgoing(self, session, message):
            if message.get("channel") == "/news":
                seen.append(f"out {self.name}")
            return True

    async def main() -> None:
        server = BayeuxServer()
        server.add_extension(Named("A"))
        server.add_extension(Named("B"))
        cid = await client(server)
        session = server.sessions[cid]
        session.add_extension(Named("s1"))
        session.add_extension(Named("s2"))
        seen.clear()
        await one(server, channel="/news", clientId=cid, data=1)
        assert seen[:4] == ["in A", "in B", "in s1", "in s2"]
        seen.clear()
        server.deliver(session, "/news", 2)
        assert seen == ["out s2", "out s1", "out B", "out A"]
        seen.clear()
        server.subscribe(session, "/news")
        server.publish("/news", 3)  # the server's see a broadcast once, then the session's
        assert seen == ["out B", "out A", "out s2", "out s1"]

    run(main())
