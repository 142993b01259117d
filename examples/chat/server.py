"""A chat room on bayeux, using the server-side API the way an application would:

- a security policy: a handshake must carry `ext.user` (a name of 1-32 characters), and the
  session becomes one of that user's (`associate`);
- an authorizer: only members may publish on /chat/**, and nobody may publish on /chat/system;
- a message listener: stamps each chat message with its sender's name (clients cannot forge it)
  and trims the text;
- a service channel: /service/members answers the CometD JS `remoteCall("members")`;
- presence: a user's first session (tab) is announced as a join on /chat/system, and its
  last one's end as a leave, once however many tabs; /service/members lists who is online.

Run it:   .venv/bin/python examples/chat/server.py --port 8080   then open http://127.0.0.1:8080/
The page loads the npm `cometd` client from interop/node_modules (`./run-tests` installs it, or
`cd interop && npm ci`).
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

import tornado.web

from bayeux import (
    Authorization,
    BayeuxServer,
    Endpoint,
    Operation,
    SecurityPolicy,
    Settings,
)

HERE = Path(__file__).parent
COMETD_JS = HERE.parent.parent / "interop" / "node_modules" / "cometd"
MAX_TEXT = 500


class NamedUsers(SecurityPolicy):
    def __init__(self, server: BayeuxServer) -> None:
        self.server = server

    async def can_handshake(self, session, message):  # type: ignore[no-untyped-def]
        user = (message.get("ext") or {}).get("user")
        if not isinstance(user, str) or not 1 <= len(user.strip()) <= 32:
            return False
        session.attributes["user"] = user.strip()
        await self.server.associate(user.strip(), session)
        return True


def members_publish(operation, channel, session, message):  # type: ignore[no-untyped-def]
    if operation is Operation.PUBLISH and channel == "/chat/system":
        return Authorization.DENY  # only the server announces
    if "user" in session.attributes:
        return Authorization.GRANT
    return Authorization.IGNORE


def stamp_sender(session, channel, message):  # type: ignore[no-untyped-def]
    data = message.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("text"), str):
        return False  # not a chat message: dropped, and the publisher is told
    text = data["text"].strip()[:MAX_TEXT]
    if not text:
        return False
    message["data"] = {"user": session.attributes.get("user", "?"), "text": text}
    return True


def build_server() -> BayeuxServer:
    server = BayeuxServer(Settings())
    server.policy = NamedUsers(server)
    server.add_authorizer("/chat/**", members_publish)
    server.add_message_listener("/chat/room", stamp_sender)

    async def members(request):  # type: ignore[no-untyped-def]
        return sorted(await server.online_users(limit=100))

    server.add_service("/service/members", members)

    def presence(user: str, online: bool) -> None:
        server.publish("/chat/system", {"text": f"{user} {'joined' if online else 'left'}"})

    server.on_presence(presence)
    return server


def make_app(endpoint: Endpoint) -> tornado.web.Application:
    static = tornado.web.StaticFileHandler
    return tornado.web.Application(
        endpoint.routes("/cometd")
        + [
            (r"/cometd-js/(.*)", static, {"path": str(COMETD_JS)}),
            (r"/()", static, {"path": str(HERE), "default_filename": "index.html"}),
        ]
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description="bayeux chat demo")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    if not (COMETD_JS / "cometd.js").exists():
        raise SystemExit(f"{COMETD_JS} is missing: run `cd interop && npm ci` first")
    endpoint = Endpoint(server=build_server())
    make_app(endpoint).listen(args.port, args.host)
    print(f"chat on http://{args.host}:{args.port}/")
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
