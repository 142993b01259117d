"""The policy the framework examples share (examples/fastapi, starlette, django): a handshake
needs the application's own login, the session becomes that user's, and a user listens to its
own channel, /user/<name>, only; clients publish nothing. Each example passes `user_of`, how
its framework's login names the user of a request."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bayeux import BayeuxServer, RequestContext, SecurityPolicy, ServerSession, current_request


class UserChannels(SecurityPolicy):
    def __init__(
        self, server: BayeuxServer, user_of: Callable[[RequestContext | None], str | None]
    ) -> None:
        self.server = server
        self.user_of = user_of

    async def can_handshake(self, session: ServerSession, message: dict[str, Any]) -> bool:
        user = self.user_of(current_request())
        if user is None:
            return False
        await self.server.associate(user, session)
        return True

    def can_subscribe(self, session: ServerSession, channel: str, message: dict[str, Any]) -> bool:
        return channel == f"/user/{session.user}"

    def can_publish(self, session: ServerSession, channel: str, message: dict[str, Any]) -> bool:
        return False
