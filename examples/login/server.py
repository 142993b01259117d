"""Your application's own login deciding who may use the push channel.

A Tornado application with a login form at /login (users alice / alice-pw and bob / bob-pw) that
sets a signed cookie of its own. The page at / runs the CometD JS client against /cometd and
subscribes to /user/<name>. The security policy reads that cookie from the request behind the
handshake (`current_request()`):

- a handshake without a valid login cookie is refused (403::Handshake denied);
- a user may subscribe to their own /user/<name> channel only, and clients may not publish;
- the server publishes: a note sent with the app's own POST /note reaches /user/<to>.

Run it:   .venv/bin/python examples/login/server.py --port 8080   then open http://127.0.0.1:8080/
The page loads the npm `cometd` client from interop/node_modules (`./run-tests` installs it, or
`cd interop && npm ci`). Cookies are HttpOnly and SameSite=Lax; behind TLS, add Secure.
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import secrets
from pathlib import Path

import tornado.web

from bayeux import (
    BayeuxServer,
    Endpoint,
    RequestContext,
    SecurityPolicy,
    ServerSession,
    Settings,
    current_request,
)

HERE = Path(__file__).parent
COMETD_JS = HERE.parent.parent / "interop" / "node_modules" / "cometd"
USERS = {"alice": "alice-pw", "bob": "bob-pw"}
LOGIN_COOKIE = "login"
MAX_NOTE = 200


def user_of(request: RequestContext | None, secret: str) -> str | None:
    """The user a request's signed login cookie names, or None (no cookie, forged, expired)."""
    if request is None:
        return None
    value = request.cookie(LOGIN_COOKIE)
    if value is None:
        return None
    name = tornado.web.decode_signed_value(secret, LOGIN_COOKIE, value, max_age_days=1)
    user = name.decode() if name else None
    return user if user in USERS else None


class LoggedInUsers(SecurityPolicy):
    """Only logged-in users get a session; each may listen to its own channel only."""

    def __init__(self, secret: str) -> None:
        self.secret = secret

    def can_handshake(self, session: ServerSession, message: dict) -> bool:  # type: ignore[type-arg]
        user = user_of(current_request(), self.secret)
        if user is None:
            return False
        session.attributes["user"] = user
        return True

    def can_subscribe(self, session: ServerSession, channel: str, message: dict) -> bool:  # type: ignore[type-arg]
        return channel == f"/user/{session.attributes['user']}"

    def can_publish(self, session: ServerSession, channel: str, message: dict) -> bool:  # type: ignore[type-arg]
        return False  # only the server publishes here


class Page(tornado.web.RequestHandler):
    def get_current_user(self) -> str | None:
        name = self.get_signed_cookie(LOGIN_COOKIE, max_age_days=1)
        user = name.decode() if name else None
        return user if user in USERS else None


class Home(Page):
    @tornado.web.authenticated
    def get(self) -> None:
        others = [u for u in USERS if u != self.current_user]
        self.render("index.html", user=self.current_user, others=others)


class Login(Page):
    def get(self) -> None:
        self.render("login.html", error=None)

    def post(self) -> None:
        user = self.get_body_argument("username", "")
        password = self.get_body_argument("password", "")
        expected = USERS.get(user)
        if expected is None or not hmac.compare_digest(expected, password):
            self.set_status(403)
            self.render("login.html", error="Wrong user name or password")
            return
        self.set_signed_cookie(LOGIN_COOKIE, user, expires_days=1, httponly=True, samesite="Lax")
        self.redirect("/")


class Note(Page):
    """The application's own API: a logged-in user sends a note to another user's page."""

    def initialize(self, server: BayeuxServer) -> None:
        self.server = server

    @tornado.web.authenticated
    def post(self) -> None:
        to = self.get_body_argument("to", "")
        text = self.get_body_argument("text", "").strip()[:MAX_NOTE]
        if to not in USERS or not text:
            raise tornado.web.HTTPError(400)
        reached = self.server.publish(f"/user/{to}", {"from": self.current_user, "text": text})
        self.write({"reached": reached})


def make_app(secret: str | None = None) -> tornado.web.Application:
    secret = secret or secrets.token_hex(32)
    endpoint = Endpoint(server=BayeuxServer(Settings(), policy=LoggedInUsers(secret)))
    static = tornado.web.StaticFileHandler
    return tornado.web.Application(
        endpoint.routes("/cometd")
        + [
            (r"/", Home),
            (r"/login", Login),
            (r"/note", Note, {"server": endpoint.server}),
            (r"/cometd-js/(.*)", static, {"path": str(COMETD_JS)}),
        ],
        cookie_secret=secret,
        login_url="/login",
        template_path=str(HERE),
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description="bayeux behind an application's own login")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    if not (COMETD_JS / "cometd.js").exists():
        raise SystemExit(f"{COMETD_JS} is missing: run `cd interop && npm ci` first")
    make_app().listen(args.port, args.host)
    print(f"login example on http://{args.host}:{args.port}/", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
