"""The endpoint in front of a Django application, with Django's own session deciding who may
handshake: the policy reads the handshake's session cookie with Django's session store.

A Django project does the same in its asgi.py:
    application = endpoint.asgi().in_front_of(get_asgi_application(), "/cometd")
This file is a whole project in one module (settings, views, URLs) to keep the example short.

Run it:   .venv/bin/python -m uvicorn examples.django.app:app --port 8080
          (pip install 'bayeux-server[asgi]' django)
Then:     curl -c jar -X POST 'http://127.0.0.1:8080/login?user=alice'
          curl -b jar -H 'Content-Type: application/json' http://127.0.0.1:8080/cometd -d \\
            '[{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["websocket"]}]'
          curl -X POST 'http://127.0.0.1:8080/notify/alice?text=hello'   # to alice's sessions
          curl -X POST 'http://127.0.0.1:8080/announce/alice?text=hi'    # the same, a sync view
"""

from __future__ import annotations

import os

import django
from django.conf import settings

settings.configure(
    SECRET_KEY=os.environ.get("APP_SECRET", "change-me"),
    ROOT_URLCONF=__name__,
    ALLOWED_HOSTS=["127.0.0.1", "localhost"],
    # A real project keeps CsrfViewMiddleware and its login forms; this one is two views.
    MIDDLEWARE=["django.contrib.sessions.middleware.SessionMiddleware"],
    # Sessions in a signed cookie: nothing to migrate for the example (a database-backed
    # store works the same way, through sync_to_async in an async policy).
    SESSION_ENGINE="django.contrib.sessions.backends.signed_cookies",
    SESSION_COOKIE_HTTPONLY=True,
)
django.setup()

from django.contrib.sessions.backends.signed_cookies import SessionStore  # noqa: E402
from django.core.asgi import get_asgi_application  # noqa: E402
from django.http import HttpRequest, HttpResponseNotFound, JsonResponse  # noqa: E402
from django.urls import path  # noqa: E402
from django.views.decorators.http import require_POST  # noqa: E402

from bayeux import Endpoint, RequestContext  # noqa: E402
from examples.user_channels import UserChannels  # noqa: E402


def user_of(request: RequestContext | None) -> str | None:
    """The user Django's session (the handshake's session cookie) has logged in."""
    key = request.cookie(settings.SESSION_COOKIE_NAME) if request is not None else None
    if key is None:
        return None
    user = SessionStore(session_key=key).get("user")  # None when the signature fails
    return user if isinstance(user, str) else None


endpoint = Endpoint()
endpoint.server.policy = UserChannels(endpoint.server, user_of)


@require_POST
def login(request: HttpRequest) -> JsonResponse:
    user = request.GET.get("user", "")
    # A real application checks a password here (django.contrib.auth).
    request.session["user"] = user
    return JsonResponse({"logged_in": user})


@require_POST
async def notify(request: HttpRequest, user: str) -> JsonResponse | HttpResponseNotFound:
    # An async view runs on the event loop the endpoint runs on.
    data = {"text": request.GET.get("text", "")}
    reached = await endpoint.server.deliver_to_user(user, f"/user/{user}", data)
    if not reached:
        return HttpResponseNotFound(f"{user} is not online")
    return JsonResponse({"reached": reached})


@require_POST
def announce(request: HttpRequest, user: str) -> JsonResponse:
    # A sync view runs in a thread of Django's: the endpoint's methods may be called from any
    # thread (the call runs on the endpoint's loop and returns once it has).
    reached = endpoint.publish(f"/user/{user}", {"text": request.GET.get("text", "")})
    return JsonResponse({"reached": reached})


urlpatterns = [
    path("login", login),
    path("notify/<str:user>", notify),
    path("announce/<str:user>", announce),
]

app = endpoint.asgi().in_front_of(get_asgi_application(), "/cometd")
