"""The --app hooks of benchmarks/users.py: each session is associated with the user its
handshake names in `ext.user` (BayeuxServer.associate)."""

from __future__ import annotations

from typing import Any

from bayeux import BayeuxServer, SecurityPolicy, ServerSession


class UserFromExt(SecurityPolicy):
    def __init__(self, server: BayeuxServer) -> None:
        self.server = server

    async def can_handshake(self, session: ServerSession, message: dict[str, Any]) -> bool:
        user = (message.get("ext") or {}).get("user")
        if isinstance(user, str):
            await self.server.associate(user, session)
        return True


def install(server: BayeuxServer) -> None:
    server.policy = UserFromExt(server)
