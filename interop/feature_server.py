"""The server the feature interop runs use: every hook of the server-side API configured the way
an application would, plus one test-only fault: a long-polling handler that loses the next connect
reply carrying /interop/ack/** messages for a session that asked for it (by calling
/service/test/lose-next-reply), as a dropped network connection would; and a service closing the
requester's WebSocket (/service/test/drop-socket); and one disconnecting the requester from the
server side (/service/test/kick-me)."""

from __future__ import annotations

import asyncio
from typing import Any

from bayeux import (
    Authorization,
    BayeuxServer,
    Endpoint,
    Operation,
    SecurityPolicy,
    ServiceError,
    Settings,
)
from bayeux.adapters.polling import PollingHandler
from bayeux.testing import ServerThread
from bayeux.transports.http import HttpResponse
from bayeux.transports.polling import PollingExchange

LOSE_NEXT_REPLY: set[str] = set()


class TokenPolicy(SecurityPolicy):
    async def can_handshake(self, session, message):
        await asyncio.sleep(0)  # stands for a token look-up
        return (message.get("ext") or {}).get("token") != "bad"


def secret_authorizer(operation, channel, session, message):
    return Authorization.DENY if operation is Operation.SUBSCRIBE else Authorization.GRANT


def censor(session, channel, message):
    if isinstance(message.get("data"), dict) and isinstance(message["data"].get("text"), str):
        message["data"]["text"] = message["data"]["text"].replace("darn", "****")


def echo(request):
    return {"echo": request.data}


def fail(request):
    raise ServiceError("Refused on purpose", data={"reason": "test"})


async def slow(request):
    await asyncio.sleep(3)
    return "late"


def lose_next_reply(request):
    LOSE_NEXT_REPLY.add(request.session.id)
    return "armed"


def drop_socket(request):
    """Closes the requester's WebSocket shortly after answering, as a network drop would."""
    link = request.session.waiter
    socket = getattr(link, "socket", None)
    if socket is None:
        raise ServiceError("not on a WebSocket")
    asyncio.get_running_loop().call_later(0.2, socket.abort)
    return "dropping"


SERVER: list[BayeuxServer] = []


def kick_me(request):
    """Disconnects the requester from the server side shortly after answering (its connect is
    held again by then), as an application kicking a user would."""
    server = SERVER[0]
    asyncio.get_running_loop().call_later(0.3, server.disconnect, request.session)
    return "kicking"


class LossyExchange(PollingExchange):
    lost = False

    async def _exchange(
        self, messages: list, connection_type: str, cost: int, callback: str | None
    ) -> HttpResponse | None:
        # Read first: the exchange lets go of its batch once handled (benchmarks/memory.py).
        client_id = next(
            (m.get("clientId") for m in messages if m.get("channel") == "/meta/connect"), None
        )
        response = await super()._exchange(messages, connection_type, cost, callback)
        lose = client_id in LOSE_NEXT_REPLY
        if response is not None and lose and b'"/interop/ack/' in response.body:
            LOSE_NEXT_REPLY.discard(client_id)
            self.lost = True
            return None
        return response


class LossyPollingHandler(PollingHandler):
    exchange_class = LossyExchange

    async def _respond(self, *args) -> None:
        await super()._respond(*args)
        if getattr(self._exchange, "lost", False):
            connection: Any = self.request.connection
            connection.stream.close()  # the reply never reaches the client

    get = post = _respond


class LossyEndpoint(Endpoint):
    """The endpoint with LossyPollingHandler in place of the long-polling handler."""

    def routes(self, path: str = "/cometd"):
        rules = super().routes(path)
        for rule in rules:
            if rule.target is PollingHandler:
                rule.target = LossyPollingHandler
        return rules


def feature_server() -> ServerThread:
    server = BayeuxServer(Settings(timeout=5000), policy=TokenPolicy())
    server.add_authorizer("/interop/secret/**", secret_authorizer)
    server.add_message_listener("/interop/censored", censor)
    server.add_service("/service/echo", echo)
    server.add_service("/service/fail", fail)
    server.add_service("/service/slow", slow)
    server.add_service("/service/test/lose-next-reply", lose_next_reply)
    server.add_service("/service/test/drop-socket", drop_socket)
    server.add_service("/service/test/kick-me", kick_me)
    SERVER[:] = [server]
    return ServerThread(endpoint=LossyEndpoint(server=server), embedded=True)
