"""Users in one process: sessions associated with an application's user id, messages to every
session of a user, presence told once when the first session appears and the last one ends."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bayeux import BayeuxServer, SecurityPolicy, ServerSession, Settings

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
