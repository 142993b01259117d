"""An application's hooks, installed with `python -m bayeux --app
tests.helpers.app_hooks:install` (or called on a server in the test's own process): the
handshake's `ext.user` is kept in the session's attributes, an authorizer reads it, and two
services read and change the attributes."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from bayeux import (
    Authorization,
    BayeuxServer,
    Extension,
    Operation,
    SecurityPolicy,
    ServerSession,
)


class UserFromHandshake(SecurityPolicy):
    def can_handshake(self, session: ServerSession, message: dict[str, Any]) -> bool:
        user = (message.get("ext") or {}).get("user")
        if isinstance(user, str):
            session.attributes["user"] = user
        return True


def alice_only(
    operation: Operation, channel: str, session: ServerSession, message: dict[str, Any]
) -> Authorization:
    return Authorization.GRANT if session.attributes.get("user") == "alice" else Authorization.DENY


class ProcessStamp(Extension):
    """Stamps every reply with the process that made it (ext.pid), so that a test can tell
    which worker answered."""

    def outgoing(self, session: ServerSession | None, message: dict[str, Any]) -> bool:
        if "successful" in message:
            message.setdefault("ext", {})["pid"] = os.getpid()
        return True


def install(server: BayeuxServer) -> None:
    server.policy = UserFromHandshake()
    server.add_extension(ProcessStamp())
    server.add_authorizer("/private/**", alice_only)
    server.add_service("/service/whoami", lambda request: dict(request.session.attributes))

    def remember(request: Any) -> str:
        request.session.attributes["color"] = request.data
        return "remembered"

    server.add_service("/service/remember", remember)


class UserFromExt(SecurityPolicy):
    """Associates the session with the handshake's `ext.user` (BayeuxServer.associate)."""

    def __init__(self, server: BayeuxServer) -> None:
        self.server = server

    async def can_handshake(self, session: ServerSession, message: dict[str, Any]) -> bool:
        user = (message.get("ext") or {}).get("user")
        if isinstance(user, str):
            await self.server.associate(user, session)
        return True


def install_users(server: BayeuxServer) -> None:
    server.policy = UserFromExt(server)


class SlowLookup(Extension):
    """An asynchronous incoming extension that looks something up for each publish (a
    database, say) and takes 0.2 s to: the documented pattern, and what lets batches pile up
    waiting on it."""

    async def incoming(self, session: ServerSession | None, message: dict[str, Any]) -> bool:
        if not message["channel"].startswith("/meta/"):
            await asyncio.sleep(0.2)
        return True


def slow_lookup(server: BayeuxServer) -> None:
    server.add_extension(SlowLookup())
