"""The endpoint inside a FastAPI application, with the application's own login deciding who may
handshake (a signed cookie of its own, read by the security policy from the request context).

Run it:   .venv/bin/python -m uvicorn examples.fastapi.app:app --port 8080
          (pip install 'bayeux-server[asgi]' fastapi)
Then:     curl -c jar -X POST 'http://127.0.0.1:8080/login?user=alice'
          curl -b jar -H 'Content-Type: application/json' http://127.0.0.1:8080/cometd -d \\
            '[{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["websocket"]}]'
          curl -X POST 'http://127.0.0.1:8080/notify/alice?text=hello'   # to alice's sessions
"""

from __future__ import annotations

import hashlib
import hmac
import os
from contextlib import asynccontextmanager

from fastapi import FastAPI, HTTPException, Response

from bayeux import Endpoint, RequestContext
from examples.user_channels import UserChannels

SECRET = os.environ.get("APP_SECRET", "change-me").encode()
COOKIE = "app_login"


def sign(user: str) -> str:
    return user + "." + hmac.new(SECRET, user.encode(), hashlib.sha256).hexdigest()


def user_of(request: RequestContext | None) -> str | None:
    """The user a request's login cookie names, if the signature holds."""
    value = request.cookie(COOKIE) if request is not None else None
    if value is None or "." not in value:
        return None
    user = value.rsplit(".", 1)[0]
    return user if hmac.compare_digest(value, sign(user)) else None


endpoint = Endpoint()
endpoint.server.policy = UserChannels(endpoint.server, user_of)


@asynccontextmanager
async def lifespan(app: FastAPI):  # type: ignore[no-untyped-def]
    yield
    await endpoint.shutdown()  # a mount gets no lifespan events of its own: drain it here


app = FastAPI(lifespan=lifespan)
app.router.routes.extend(endpoint.asgi().routes("/cometd"))


@app.post("/login")
def login(user: str, response: Response) -> dict[str, str]:
    # A real application checks a password here.
    response.set_cookie(COOKIE, sign(user), httponly=True, samesite="lax")
    return {"logged_in": user}


@app.post("/notify/{user}")
async def notify(user: str, text: str) -> dict[str, int]:
    reached = await endpoint.server.deliver_to_user(user, f"/user/{user}", {"text": text})
    if not reached:
        raise HTTPException(404, f"{user} is not online")
    return {"reached": reached}
