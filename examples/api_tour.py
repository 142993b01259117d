"""A runnable tour of the server-side API: `.venv/bin/python examples/api_tour.py`.

Clients here are LocalSessions (clients living in the server), so the tour needs no network;
remote clients go through exactly the same policy, authorizers, listeners and services.
tests/test_examples.py runs it and checks what it prints.
"""

from __future__ import annotations

import asyncio

from bayeux import (
    Authorization,
    BayeuxServer,
    Extension,
    LocalSession,
    SecurityPolicy,
    ServiceError,
    Settings,
)

USERS = {"t-alice": "alice", "t-bob": "bob"}  # stands for your user store


class TokenPolicy(SecurityPolicy):  # every hook may be sync or async
    async def can_handshake(self, session, message):  # type: ignore[no-untyped-def]
        await asyncio.sleep(0)  # e.g. a database look-up
        user = USERS.get((message.get("ext") or {}).get("token"))
        if user is None:
            return False
        session.attributes["user"] = user
        return True


def members_only(operation, channel, session, message):  # type: ignore[no-untyped-def]
    # Every authorizer in scope is asked: any DENY denies, it takes one GRANT to allow.
    if channel.startswith("/chat/admin") and session.attributes.get("user") != "alice":
        return Authorization.DENY
    return Authorization.GRANT


def stamp_sender(session, channel, message):  # type: ignore[no-untyped-def]
    # Message listeners may rewrite a message before delivery; returning False drops it.
    message["data"] = {"user": session.attributes["user"], "text": message["data"]["text"]}


class CountBroadcasts(Extension):
    def __init__(self) -> None:
        self.count = 0

    def outgoing(self, session, message):  # type: ignore[no-untyped-def]
        if session is None and "data" in message:  # a broadcast, seen once for all subscribers
            self.count += 1
        return True


async def main() -> None:
    server = BayeuxServer(Settings(), policy=TokenPolicy())
    server.add_authorizer("/chat/**", members_only)
    server.add_message_listener("/chat/*", stamp_sender)
    broadcasts = CountBroadcasts()
    server.add_extension(broadcasts)

    def members(request):  # type: ignore[no-untyped-def]
        if request.data == "fail":
            raise ServiceError("Asked to fail", data={"reason": "demo"})
        return sorted(s.attributes["user"] for s in server.sessions.values() if s.attributes)

    server.add_service("/service/members", members)
    server.on_session_removed(
        lambda s, ended: print(f"removed {s.attributes['user']}: {ended.value}")
    )

    try:
        await LocalSession.connect(server, ext={"token": "wrong"})
    except PermissionError as refused:
        print(f"refused: {refused}")

    alice = await LocalSession.connect(server, ext={"token": "t-alice"})
    bob = await LocalSession.connect(server, ext={"token": "t-bob"})
    await alice.subscribe("/chat/*", lambda m: print(f"alice got {m['data']}"))
    await alice.subscribe("/service/members", lambda m: print(f"members: {m}"))
    denied = await bob.subscribe("/chat/admin", lambda m: None)
    print(f"bob subscribing to /chat/admin: {denied['error']}")

    await bob.publish("/chat/room", {"text": "hi"})  # stamped with bob's name by the listener
    server.publish("/chat/room", {"user": "server", "text": "server-side publish"})
    await alice.publish("/service/members", None)  # answered to alice only
    await alice.publish("/service/members", "fail")
    await asyncio.sleep(0.01)
    print(f"broadcasts seen by the extension: {broadcasts.count}")
    await bob.disconnect()


if __name__ == "__main__":
    asyncio.run(main())
