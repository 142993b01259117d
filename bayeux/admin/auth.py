"""Who may use the admin page: the bearer of its token, or whoever the application's own
check lets in when the page is embedded.

The token travels in the `Authorization: Bearer` header of the page's API requests only: a
query string is never read (it ends up in logs and in the browser's history), and no cookie
is ever set, so another site's form or link carries nothing that authenticates it. Tokens are
compared through their SHA-256 digests with `hmac.compare_digest`: the time it takes says
nothing of how much of a guess was right, or of the token's length.
"""

from __future__ import annotations

import hashlib
import hmac
import inspect
import re
from collections.abc import Awaitable, Callable
from enum import Enum

from ..core.context import RequestContext
from ..transports.http import HttpRequest

AdminAuthorizer = Callable[[RequestContext], bool | Awaitable[bool]]
"""The application's own check of an admin request (`Endpoint.admin(authorize=...)`): a
function of the request's `RequestContext` (its cookies, its headers) returning True to let it
in and anything else to refuse it (403), or a coroutine function (a session store to look the
request's cookie up in). It is asked only of requests that carry the page's header
`X-Bayeux-Admin: 1` and no token; if it raises, nobody gets in (403).

Added in version 0.3.0."""

MIN_TOKEN = 16
MAX_TOKEN = 256
_TOKEN = re.compile(r"^[\x21-\x7e]+$")
# A header the page sends with every request and that another site's page cannot make a
# browser send without the CORS permission the admin API never gives: what makes a request
# authenticated by the application's cookies safe from cross-site forgery.
PAGE_HEADER = "x-bayeux-admin"


def check_token(token: str) -> str:
    """`token` if it may be the admin token: 16 to 256 printable ASCII characters without
    spaces (it travels in a header); else ValueError saying why."""
    if not isinstance(token, str) or not MIN_TOKEN <= len(token) <= MAX_TOKEN:
        raise ValueError(f"the admin token must be {MIN_TOKEN} to {MAX_TOKEN} characters")
    if not _TOKEN.match(token):
        raise ValueError("the admin token must be printable ASCII without spaces")
    return token


class Verdict(Enum):
    """What the page's authentication says of a request."""

    ALLOWED = "allowed"
    MISSING = "missing"  # no credentials: 401
    WRONG = "wrong"  # a token that is not the one: 401, invalid_token
    REFUSED = "refused"  # the application's check said no: 403


class AdminAuth:
    """The token (its digest) and the application's check; at least one of them."""

    def __init__(self, token: str | None, authorize: AdminAuthorizer | None) -> None:
        if token is None and authorize is None:
            raise ValueError("the admin page needs a token or an authorize function")
        self._digest = _digest(check_token(token)) if token is not None else None
        self._authorize = authorize

    async def verdict(self, request: HttpRequest) -> Verdict:
        given = _bearer(request.headers.get("authorization", ""))
        if given is not None:
            # A token given is the token, or nothing: the application's check is not asked.
            if self._digest is not None and hmac.compare_digest(_digest(given), self._digest):
                return Verdict.ALLOWED
            return Verdict.WRONG
        if self._authorize is None or request.headers.get(PAGE_HEADER) != "1":
            return Verdict.MISSING
        allowed = self._authorize(request.context("admin"))
        if inspect.isawaitable(allowed):
            allowed = await allowed
        return Verdict.ALLOWED if allowed is True else Verdict.REFUSED


def _bearer(header: str) -> str | None:
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    value = value.strip()
    return value or None


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()
