"""The endpoint inside a Starlette application, with Starlette's own session (SessionMiddleware)
deciding who may handshake: the policy reads the session the middleware put in the ASGI scope,
which the request context carries as its `handler`.

Run it:   .venv/bin/python -m uvicorn examples.starlette.app:app --port 8080
          (pip install 'bayeux-server[asgi]' starlette itsdangerous)
Then:     curl -c jar -X POST 'http://127.0.0.1:8080/login?user=alice'
          curl -b jar -H 'Content-Type: application/json' http://127.0.0.1:8080/cometd -d \\
            '[{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["websocket"]}]'
          curl -X POST 'http://127.0.0.1:8080/notify/alice?text=hello'   # to alice's sessions
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from bayeux import Endpoint, RequestContext
from examples.user_channels import UserChannels


def user_of(request: RequestContext | None) -> str | None:
    """The user of the Starlette session the request carries (its scope's "session")."""
    scope = request.handler if request is not None else None
    session = scope.get("session") if isinstance(scope, Mapping) else None
    user = session.get("user") if isinstance(session, Mapping) else None
    return user if isinstance(user, str) else None


endpoint = Endpoint()
endpoint.server.policy = UserChannels(endpoint.server, user_of)


async def login(request: Request) -> Response:
    user = request.query_params.get("user", "")
    # A real application checks a password here.
    request.session["user"] = user
    return JSONResponse({"logged_in": user})


async def notify(request: Request) -> Response:
    user = request.path_params["user"]
    data = {"text": request.query_params.get("text", "")}
    reached = await endpoint.server.deliver_to_user(user, f"/user/{user}", data)
    if not reached:
        return PlainTextResponse(f"{user} is not online", status_code=404)
    return JSONResponse({"reached": reached})


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    yield
    await endpoint.shutdown()  # the endpoint's routes get no lifespan events: drain it here


secret = os.environ.get("APP_SECRET", "change-me")
app = Starlette(
    routes=[
        Route("/login", login, methods=["POST"]),
        Route("/notify/{user}", notify, methods=["POST"]),
        *endpoint.asgi().routes("/cometd"),
    ],
    # Wraps every route, the endpoint's too: its WebSockets and polls see the session.
    middleware=[Middleware(SessionMiddleware, secret_key=secret, https_only=False)],
    lifespan=lifespan,
)
