"""Users in one process: sessions associated with an application's user id, messages to every
session of a user, presence told once when the first session appears and the last one ends."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bayeux import BayeuxServer, SecurityPolicy, ServerSession, Settings, TooManySessions

from ..helpers.core import HS, client, one, run


def test_deliver_to_user_reaches_each_session_and_presence_is_told_once() -> None:
    async def scenario() -> None:
        server = BayeuxServer()
        presence: list[tuple[str, bool]] = []
        server.on_presence(lambda user, online: presence.append((user, online)))
        tab1, tab2, other = [server.sessions[await client(server)] for _ in range(3)]
        await server.associate("alice", tab1)
        await server.associate("alice", tab2)
        await server.associate("bob", other)
        assert presence == [("alice", True), ("bob", True)]
        assert sorted(await server.online_users()) == ["alice", "bob"]
        assert await server.deliver_to_user("alice", "/inbox", {"n": 1}) == 2
        assert [d.message for d in tab1.drain()] == [{"channel": "/inbox", "data": {"n": 1}}]
        assert len(tab2.drain()) == 1 and other.drain() == []
        await server.dissociate(tab1)  # alice still has tab2
        server.remove_session(tab2)  # her last session ends
        assert presence[2:] == [("alice", False)]
        assert await server.online_users(limit=5) == ["bob"]
        assert await server.deliver_to_user("alice", "/inbox", 2) == 0
        assert await server.deliver_to_client(other.id, "/direct", "hi") is True
        assert [d.message["data"] for d in other.drain()] == ["hi"]
        assert await server.deliver_to_client("0" * 40, "/direct", "hi") is False
        # Associating again moves a session to another user.
        await server.associate("carol", other)
        assert presence[3:] == [("bob", False), ("carol", True)]
        with pytest.raises(ValueError):
            await server.associate("", other)
        for limit in (0, -1, 10**6, True):
            with pytest.raises(ValueError):
                await server.online_users(limit)
        with pytest.raises(ValueError):
            await server.deliver_to_user("carol", "/meta/connect", 1)

    run(scenario())


def test_a_policy_associates_at_handshake_and_a_refusal_undoes_it() -> None:
    class LoginPolicy(SecurityPolicy):
        def __init__(self, server: BayeuxServer) -> None:
            self.server = server

        async def can_handshake(self, session: ServerSession, message: dict[str, Any]) -> bool:
            ext = message.get("ext") or {}
            await self.server.associate(ext["user"], session)
            return ext.get("allow", True)

    async def scenario() -> None:
        server = BayeuxServer(Settings())
        server.policy = LoginPolicy(server)
        presence: list[tuple[str, bool]] = []
        server.on_presence(lambda user, online: presence.append((user, online)))
        reply = await one(server, **HS, ext={"user": "dave", "allow": False})
        assert reply["successful"] is False
        assert presence == [("dave", True), ("dave", False)] and await server.online_users() == []
        reply = await one(server, **HS, ext={"user": "dave"})
        session = server.sessions[reply["clientId"]]
        assert session.user == "dave" and await server.online_users() == ["dave"]
        await one(server, channel="/meta/disconnect", clientId=session.id)
        await asyncio.sleep(0)
        assert presence[-1] == ("dave", False)

    run(scenario())


def test_a_user_past_max_sessions_per_user_is_refused_and_nothing_changes() -> None:
    async def scenario() -> None:
        server = BayeuxServer(Settings(max_sessions_per_user=2))
        presence: list[tuple[str, bool]] = []
        server.on_presence(lambda user, online: presence.append((user, online)))
        tab1, tab2, tab3, bobs = [server.sessions[await client(server)] for _ in range(4)]
        await server.associate("alice", tab1)
        await server.associate("alice", tab2)
        await server.associate("alice", tab2)  # already hers: not one more
        await server.associate("bob", bobs)
        with pytest.raises(TooManySessions) as refused:
            await server.associate("alice", tab3)
        assert isinstance(refused.value, ValueError)
        assert (refused.value.user, refused.value.limit) == ("alice", 2)
        assert tab3.user is None
        # Moving a session to a user who is full leaves it with the user it had.
        with pytest.raises(TooManySessions):
            await server.associate("alice", bobs)
        assert bobs.user == "bob"
        assert presence == [("alice", True), ("bob", True)]
        assert sorted(await server.online_users()) == ["alice", "bob"]
        assert await server.deliver_to_user("alice", "/inbox", 1) == 2
        assert await server.deliver_to_user("bob", "/inbox", 1) == 1
        # One of hers ends: there is room again.
        server.remove_session(tab1)
        await server.associate("alice", tab3)
        assert tab3.user == "alice"
        assert await server.deliver_to_user("alice", "/inbox", 2) == 2

    run(scenario())


def test_concurrent_associations_do_not_pass_the_limit_together() -> None:
    async def scenario() -> None:
        server = BayeuxServer(Settings(max_sessions_per_user=3))
        sessions = [server.sessions[await client(server)] for _ in range(8)]
        outcomes = await asyncio.gather(
            *(server.associate("carol", s) for s in sessions), return_exceptions=True
        )
        assert sum(o is None for o in outcomes) == 3
        assert all(isinstance(o, TooManySessions) for o in outcomes if o is not None)
        assert sum(s.user == "carol" for s in sessions) == 3

    run(scenario())


def test_max_sessions_per_user_defaults_to_100_and_minus_one_lifts_it() -> None:
    assert Settings().max_sessions_per_user == 100
    with pytest.raises(ValueError):
        Settings(max_sessions_per_user=0)

    async def scenario() -> None:
        server = BayeuxServer(Settings(max_sessions_per_user=-1))
        for _ in range(150):
            await server.associate("many", server.sessions[await client(server)])
        assert await server.deliver_to_user("many", "/inbox", 1) == 150
        default = BayeuxServer()
        for _ in range(100):
            await default.associate("many", default.sessions[await client(default)])
        with pytest.raises(TooManySessions):
            await default.associate("many", default.sessions[await client(default)])

    run(scenario())


def test_a_handshake_whose_policy_associates_past_the_limit_is_refused_with_403() -> None:
    class LoginPolicy(SecurityPolicy):
        def __init__(self, server: BayeuxServer) -> None:
            self.server = server

        async def can_handshake(self, session: ServerSession, message: dict[str, Any]) -> bool:
            await self.server.associate(message["ext"]["user"], session)
            return True

    async def scenario() -> None:
        server = BayeuxServer(Settings(max_sessions_per_user=1))
        server.policy = LoginPolicy(server)
        presence: list[tuple[str, bool]] = []
        server.on_presence(lambda user, online: presence.append((user, online)))
        first = await one(server, **HS, ext={"user": "erin"})
        assert first["successful"] is True
        second = await one(server, **HS, ext={"user": "erin"})
        assert second["successful"] is False
        assert second["error"] == "403::Too many sessions for this user"
        assert second["advice"]["reconnect"] == "none"
        assert "clientId" not in second
        assert list(server.sessions) == [first["clientId"]]
        assert server.stats.refused["sessions-per-user"] == 1
        assert server.stats.errors["policy"] == 0  # an answer, not a failing policy
        assert presence == [("erin", True)]
        assert await server.deliver_to_user("erin", "/inbox", 1) == 1

    run(scenario())
