"""The HTTP request behind what the server is handling, as an application's hooks may see it.

Every hook that runs while a batch is handled (the security policy, authorizers, message
listeners, services, session listeners, extensions) can read it with `current_request()`; a
session keeps the last one that reached it (`ServerSession.context`), and a service request has
its own. It is built by the transport: for each HTTP request with long-polling and
callback-polling; once, from the upgrade request, for a WebSocket (every batch on that socket
sees it); once, from the stream's request, for an EventSource stream. Outside a request (a
session expiring, a server-side publish) there is none.

While a long-polling or callback-polling request is handled, hooks may also add headers and
cookies to its HTTP response (`RequestContext.response`): a handshake policy that logs a user
in can set the application's cookie. A WebSocket's or EventSource stream's response went out
when it opened, so there is none then.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from contextvars import ContextVar, Token
from typing import Any, Protocol
from urllib.parse import parse_qs


class RequestSource(Protocol):
    """What a transport's parsed request gives a context (transports.http.HttpRequest)."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    header_lines: tuple[tuple[str, str], ...]
    remote_ip: str | None
    local_ip: str | None
    scheme: str
    client_certificate: Mapping[str, Any] | None
    handler: object | None
    browser: str | None
    browser_sent: bool
    response_headers: ResponseHeaders | None


# RFC 9110 token (header and cookie names) and RFC 6265 cookie-octet.
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_COOKIE_VALUE = re.compile(r"[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*")
_HEADER_VALUE = re.compile(r"[\x20-\x7e\t]*")
# Headers the transport owns: framing, connection management, CORS, caching of Bayeux replies.
_RESERVED = frozenset(
    {
        "connection",
        "content-length",
        "content-type",
        "keep-alive",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "cache-control",
        "access-control-allow-origin",
        "access-control-allow-credentials",
        "access-control-allow-methods",
        "access-control-allow-headers",
        "access-control-max-age",
    }
)
SAME_SITE = ("Strict", "Lax", "None")


class ResponseHeaders:
    """Headers and cookies hooks add to the HTTP response carrying their replies, checked as
    they are added (a ValueError names what is wrong): no header the transport owns, nothing
    that could split the response, at most `MAX_COUNT` lines of `MAX_BYTES` in all.

    Examples:
        A hook reaches the response of its request as `current_request().response`
        (`RequestContext.response`); here, one on its own:

        >>> headers = ResponseHeaders(https=True)
        >>> headers.add("X-Served-By", "bayeux")
        >>> headers.set_cookie("app_login", "alice", max_age=3600)
        >>> headers.lines
        [('X-Served-By', 'bayeux'),
         ('Set-Cookie', 'app_login=alice; Path=/; Max-Age=3600; Secure; HttpOnly; SameSite=Lax')]

    Added in version 0.3.0."""

    MAX_COUNT = 32
    MAX_BYTES = 8192

    __slots__ = ("lines", "_bytes", "_https")

    def __init__(self, https: bool) -> None:
        self.lines: list[tuple[str, str]] = []
        self._bytes = 0
        self._https = https

    def add(self, name: str, value: str) -> None:
        """Adds header `name: value` (several lines of one name are kept).

        Examples:
            >>> headers = ResponseHeaders(https=False)
            >>> headers.add("X-Request-Id", "42")
            >>> headers.add("Content-Length", "0")
            Traceback (most recent call last):
            ...
            ValueError: the transport sets Content-Length
        """
        if not isinstance(name, str) or not _TOKEN.fullmatch(name):
            raise ValueError(f"not a header name: {name!r}")
        if name.lower() in _RESERVED:
            raise ValueError(f"the transport sets {name}")
        if not isinstance(value, str) or not _HEADER_VALUE.fullmatch(value):
            raise ValueError(f"header {name}: only printable ASCII may be sent")
        size = len(name) + len(value) + 4
        if len(self.lines) >= self.MAX_COUNT or self._bytes + size > self.MAX_BYTES:
            raise ValueError(
                f"at most {self.MAX_COUNT} headers of {self.MAX_BYTES} bytes may be added"
            )
        self.lines.append((name, value))
        self._bytes += size

    def set_cookie(
        self,
        name: str,
        value: str,
        *,
        path: str | None = "/",
        domain: str | None = None,
        max_age: int | None = None,
        secure: bool | None = None,
        http_only: bool = True,
        same_site: str | None = "Lax",
        partitioned: bool = False,
    ) -> None:
        """Adds a Set-Cookie header. `secure` None: Secure when the request came over HTTPS
        (or a trusted proxy says so, with --xheaders); `max_age` 0 removes the cookie.

        Examples:
            >>> headers = ResponseHeaders(https=False)
            >>> headers.set_cookie("app_login", "", max_age=0)  # logs out
            >>> headers.lines
            [('Set-Cookie', 'app_login=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax')]
        """
        if not isinstance(name, str) or not _TOKEN.fullmatch(name):
            raise ValueError(f"not a cookie name: {name!r}")
        if not isinstance(value, str) or not _COOKIE_VALUE.fullmatch(value):
            raise ValueError(f"cookie {name}: not a cookie value (quote or encode it first)")
        parts = [f"{name}={value}"]
        for attribute, given in (("Path", path), ("Domain", domain)):
            if given is None:
                continue
            if not _HEADER_VALUE.fullmatch(given) or ";" in given:
                raise ValueError(f"cookie {name}: not a {attribute}: {given!r}")
            parts.append(f"{attribute}={given}")
        if max_age is not None:
            if isinstance(max_age, bool) or not isinstance(max_age, int) or max_age < 0:
                raise ValueError(f"cookie {name}: max_age must be an int >= 0")
            parts.append(f"Max-Age={max_age}")
        if secure or (secure is None and self._https) or partitioned or same_site == "None":
            parts.append("Secure")  # browsers refuse SameSite=None and Partitioned without it
        if http_only:
            parts.append("HttpOnly")
        if same_site is not None:
            if same_site not in SAME_SITE:
                raise ValueError(f"cookie {name}: same_site must be one of {SAME_SITE} or None")
            parts.append(f"SameSite={same_site}")
        if partitioned:
            parts.append("Partitioned")
        self.add("Set-Cookie", "; ".join(parts))


class RequestContext:
    """One HTTP request, read-only. Header names are lower case; a header sent on several
    lines keeps each value (`header_values`).

    A view over the transport's parsed request, made for every long-polling request: it only
    keeps that request and reads it when a hook asks (copying its fields into a frozen object
    cost a long-polling request a few percent more: benchmarks/exchange.py).

    Examples:
        A hook gets the request it runs for from `current_request()`. The examples of the
        members read `request`, what this handshake policy kept:

        >>> from bayeux.client import SyncClient
        >>> from bayeux.testing import ServerThread
        >>> class Keep(SecurityPolicy):
        ...     def can_handshake(self, session, message):
        ...         global request
        ...         request = current_request()
        ...         return True
        >>> server.policy = Keep()
        >>> with ServerThread(endpoint=Endpoint(server=server)) as running:
        ...     with SyncClient(
        ...         running.url + "?room=lobby",
        ...         transports=["long-polling"],
        ...         headers={"X-App": "demo"},
        ...         cookies={"app_login": "alice"},
        ...     ):
        ...         print(request)
        RequestContext(POST /cometd, long-polling)

    Added in version 0.3.0."""

    __slots__ = ("_source", "_connection_type", "_answered")

    def __init__(self, source: RequestSource, connection_type: str, answered: bool = False) -> None:
        self._source = source
        self._connection_type = connection_type
        # Whether this request's HTTP response carries the replies (polling), so that hooks
        # may add to it.
        self._answered = answered

    @property
    def response(self) -> ResponseHeaders | None:
        """Headers and cookies to add to this request's HTTP response, with long-polling and
        callback-polling; None when the response already went out (a WebSocket, an
        EventSource stream) or there is none.

        Examples:
            >>> import json
            >>> from urllib.request import Request, urlopen
            >>> from bayeux.testing import ServerThread
            >>> class LogIn(SecurityPolicy):
            ...     def can_handshake(self, session, message):
            ...         current_request().response.set_cookie("app_login", "alice")
            ...         return True
            >>> server.policy = LogIn()
            >>> handshake = json.dumps([{"channel": "/meta/handshake", "version": "1.0",
            ...                          "supportedConnectionTypes": ["long-polling"]}]).encode()
            >>> with ServerThread(endpoint=Endpoint(server=server)) as running:
            ...     sent = Request(running.url, handshake, {"Content-Type": "application/json"})
            ...     with urlopen(sent) as answer:  # a long-polling handshake, by hand
            ...         answer.headers.get_all("Set-Cookie")[-1]
            'app_login=alice; Path=/; HttpOnly; SameSite=Lax'
        """
        if not self._answered:
            return None
        source = self._source
        if source.response_headers is None:
            source.response_headers = ResponseHeaders(https=source.scheme == "https")
        return source.response_headers

    @property
    def method(self) -> str:
        """The HTTP method (`GET`, `POST`; `GET` for a WebSocket upgrade).

        Examples:
            >>> request.method
            'POST'
        """
        return self._source.method

    @property
    def path(self) -> str:
        """The request's path, without the query.

        Examples:
            >>> request.path
            '/cometd'
        """
        return self._source.path

    @property
    def query(self) -> str:
        """The query string, undecoded (empty when there is none).

        Examples:
            >>> request.query
            'room=lobby'
        """
        return self._source.query

    @property
    def headers(self) -> tuple[tuple[str, str], ...]:
        """Every header line, (lower-case name, value), in the order received.

        Examples:
            >>> request.headers[:2]
            (('host', '127.0.0.1:...'), ('x-app', 'demo'))
        """
        source = self._source
        return source.header_lines or tuple(source.headers.items())

    @property
    def remote_address(self) -> str | None:
        """The client's address (the one a trusted proxy names, with --xheaders).

        Examples:
            >>> request.remote_address
            '127.0.0.1'
        """
        return self._source.remote_ip

    @property
    def local_address(self) -> str | None:
        """The server's address the request reached, when the host reports it.

        Examples:
            >>> request.local_address
            '127.0.0.1'
        """
        return self._source.local_ip

    @property
    def scheme(self) -> str:
        """ "https" over TLS (or as a trusted proxy says, with --xheaders), else "http".

        Examples:
            >>> request.scheme
            'http'
        """
        return self._source.scheme

    @property
    def connection_type(self) -> str:
        """ "long-polling", "callback-polling", "websocket" or "eventsource".

        Examples:
            >>> request.connection_type
            'long-polling'
        """
        return self._connection_type

    @property
    def browser(self) -> str | None:
        """The browser the request came from: its browser cookie (--browser-cookie), or the
        one its response gives it (`browser_sent` False then); None without browser cookies.

        Examples:
            >>> len(request.browser), request.browser_sent  # its first request: no cookie yet
            (32, False)
        """
        return self._source.browser

    @property
    def browser_sent(self) -> bool:
        """Whether the request carried its browser cookie.

        Examples:
            >>> request.browser_sent  # the client's first request: it had none yet
            False
        """
        return self._source.browser_sent

    @property
    def client_certificate(self) -> Mapping[str, Any] | None:
        """The client's TLS certificate when the server asks for one (--ca-file), as
        ssl.SSLSocket.getpeercert() gives it.

        Examples:
            >>> print(request.client_certificate)  # plain HTTP: none
            None
        """
        return self._source.client_certificate

    @property
    def handler(self) -> object | None:
        """Embedded in Tornado: the RequestHandler or WebSocketHandler serving the request, so
        that the application's own get_current_user() and secure cookies work. Under ASGI: the
        request's scope, with what the host's middleware put there (scope["session"],
        scope["user"]).

        Examples:
            >>> print(request.handler)  # the standalone server has neither
            None
        """
        return self._source.handler

    def __repr__(self) -> str:
        return f"RequestContext({self.method} {self.path}, {self._connection_type})"

    @property
    def host(self) -> str | None:
        """The Host header, if any.

        Examples:
            >>> request.host
            '127.0.0.1:...'
        """
        return self.header("host")

    def header(self, name: str) -> str | None:
        """The first value of header `name` (any case), or None.

        Examples:
            >>> request.header("X-App")
            'demo'
            >>> print(request.header("Authorization"))
            None
        """
        wanted = name.lower()
        return next((value for key, value in self.headers if key == wanted), None)

    def header_values(self, name: str) -> list[str]:
        """Every value of header `name`, one per line it was sent on.

        Examples:
            >>> request.header_values("x-app")
            ['demo']
        """
        wanted = name.lower()
        return [value for key, value in self.headers if key == wanted]

    @property
    def cookies(self) -> dict[str, str]:
        """The request's cookies; for a name sent twice, the first (the most specific path,
        RFC 6265 5.4).

        Examples:
            >>> request.cookies
            {'app_login': 'alice'}
        """
        return cookies_in(self.header_values("cookie"))

    def cookie(self, name: str) -> str | None:
        """The value of the cookie `name`, None when the request has none.

        Examples:
            >>> request.cookie("app_login")
            'alice'
        """
        return self.cookies.get(name)

    def parameters(self, name: str) -> list[str]:
        """Every value of query parameter `name`.

        Examples:
            >>> request.parameters("room")
            ['lobby']
        """
        return parse_qs(self.query, keep_blank_values=True).get(name, [])

    def parameter(self, name: str) -> str | None:
        """The last value of query parameter `name`.

        Examples:
            >>> request.parameter("room")
            'lobby'
            >>> print(request.parameter("page"))
            None
        """
        values = self.parameters(name)
        return values[-1] if values else None


def cookies_in(lines: list[str]) -> dict[str, str]:
    """The cookies of Cookie header lines; for a name sent twice, the first (the most specific
    path, RFC 6265 5.4), without surrounding quotes."""
    found: dict[str, str] = {}
    for line in lines:
        for pair in line.split(";"):
            key, equals, value = pair.partition("=")
            key, value = key.strip(), value.strip()
            if not equals or not key or key in found:
                continue
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            found[key] = value
    return found


_current: ContextVar[RequestContext | None] = ContextVar("bayeux_request", default=None)


def current_request() -> RequestContext | None:
    """The request being handled, for hooks; None outside one.

    Examples:
        >>> from bayeux.client import SyncClient
        >>> from bayeux.testing import ServerThread
        >>> class AppOnly(SecurityPolicy):
        ...     def can_handshake(self, session, message):
        ...         request = current_request()
        ...         return request is not None and request.header("X-App") == "demo"
        >>> server.policy = AppOnly()
        >>> with ServerThread(endpoint=Endpoint(server=server)) as running:
        ...     with SyncClient(running.url, headers={"X-App": "demo"}) as client:
        ...         print(client.state)
        connected
        >>> print(current_request())  # outside a hook
        None

    Added in version 0.3.0."""
    return _current.get()


# entering(request) makes `request` the current one and returns what leaving(token) needs to
# restore the previous: the contextvar's own methods, with no call of ours around them, as every
# batch makes its request current (benchmarks/exchange.py).
entering: Callable[[RequestContext | None], Token[RequestContext | None]] = _current.set
leaving: Callable[[Token[RequestContext | None]], None] = _current.reset
