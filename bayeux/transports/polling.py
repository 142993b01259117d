"""HTTP transports: `long-polling` (POST of JSON) and `callback-polling` (JSONP over GET).

Both accept any sub-path below the mount (the CometD JS client appends `/handshake`,
`/connect`, ... to the URL) and hold a `/meta/connect` on a future, not a thread. One
`PollingExchange` takes one request to its response; the standalone connection layer and the
Tornado adapter both drive it, so the semantics live here once.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Coroutine
from typing import Any
from urllib.parse import parse_qs, unquote_to_bytes

from ..core import codec
from ..core.context import RequestContext
from ..core.message import Message, ProtocolError, TooManyMessages, batch_from, decoded_cost
from ..core.peer import Peer
from ..core.session import Wakeup, reply_ready
from .context import Context
from .http import (
    CORS_REQUEST_HEADERS,
    JSON_TYPE,
    Headers,
    HttpRequest,
    HttpResponse,
    cors_headers,
    origin_refused,
    refusal,
)
from .waiting import FutureWaiter, answered_at_once

JAVASCRIPT_TYPE = "text/javascript;charset=utf-8"
# A JavaScript identifier path such as `cb`, `jQuery123_456` or `window.cometd._jsonp3`.
_CALLBACK_RE = re.compile(r"^[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*$")
_MAX_CALLBACK = 128
_NO_CACHE = ("Cache-Control", "no-cache, no-store")


class BadRequest(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class PollingExchange:
    """POST: long-polling. GET: callback-polling. OPTIONS: CORS preflight.

    The connection calls `early_refusal()` once the headers are in (before reading the body),
    then `respond()` with the whole request, and `connection_lost()` if the client disconnects
    meanwhile.
    """

    __slots__ = ("context", "request", "peer", "_waiter", "_set_cookie")

    def __init__(self, context: Context, request: HttpRequest, peer: Peer | None = None) -> None:
        self.context = context
        self.request = request
        # The connection's, when the caller keeps one per connection (one fewer object a request).
        self.peer = peer
        self._waiter: FutureWaiter | None = None
        # Whether the response gives the client the browser id made for it (`_browser_id`).
        self._set_cookie = False

    def early_refusal(self, declared_length: int | None) -> HttpResponse | None:
        """What to answer without reading the body, if anything: other origins (every method:
        a cross-origin form POST or JSONP script needs no preflight, so the browser sends it
        whatever CORS says; it must not be served) and bodies declared too large."""
        self.context.start()
        if origin_refused(self.request, self.context):
            return refusal(403, "origin not allowed", self._cors())
        settings = self.context.server.settings
        if declared_length is not None and declared_length > settings.max_message_size:
            return self.too_large()
        if (
            declared_length is not None
            and declared_length > EARLY_CHECKED_BODY
            and self.context.server.batches_may_wait()
            and self.context.server.budgets.busy(
                self.request.remote_ip, 2 * declared_length, settings.max_extension_backlog
            )
        ):
            # Its batch would be refused once read and decoded (BayeuxServer.handle): it is
            # refused before its body is read (tests/system/test_hook_backlog.py).
            self.context.server.stats.refused["batch-waiting"] += 1
            return refusal(503, "too many messages waiting for this address", self._cors())
        return None

    def too_large(self) -> HttpResponse:
        limit = self.context.settings.max_message_size
        return refusal(413, f"request body larger than {limit} bytes", self._cors())

    def connection_lost(self) -> None:
        """The client closed its connection: a held connect is freed now, not at its timeout."""
        if self._waiter is not None:
            self._waiter.gone()

    def _cors(self) -> Headers:
        return cors_headers(self.request, self.context)

    def respond(self) -> Coroutine[Any, Any, HttpResponse | None]:
        """The response, or None when the client went away while its connect was held: a
        coroutine to await. Call `early_refusal()` first: what it refuses is not checked again
        here.

        A long-polling request is checked and decoded in this call, and the coroutine returned
        is the one that handles it: a coroutine of its own here would cost every request, and
        stay in memory for as long as its connect is held (benchmarks/exchange.py,
        benchmarks/memory.py)."""
        request = self.request
        raw = request.body
        server = self.context.server
        settings = server.settings
        if len(raw) > settings.max_message_size:
            return _answered(self.too_large())
        method = request.method
        if method == "GET":
            return self._callback_polling()
        if method == "OPTIONS":
            return _answered(self._preflight())
        if method != "POST" and method != "PUT":
            return _answered(refusal(405, "method not allowed", self._cors()))
        cost = 0
        if server.batches_may_wait():
            # The body and what it decodes into, both held while the batch is handled; a form
            # body (Faye's `message=%5B...`) is costed as the JSON it carries, and its copies.
            if b"%" in raw:
                cost = 3 * len(raw) + decoded_cost(unquote_to_bytes(raw))
            else:
                cost = len(raw) + decoded_cost(raw)
        if (
            cost
            and len(raw) > EARLY_CHECKED_BODY
            and server.budgets.busy(request.remote_ip, cost, settings.max_extension_backlog)
        ):
            # Refused before it is decoded: a flood of large batches from a busy address
            # costs no decoding.
            server.stats.refused["batch-waiting"] += 1
            return _answered(
                refusal(503, "too many messages waiting for this address", self._cors())
            )
        try:
            messages = messages_from_body(request, settings.max_batch_messages)
        except BadRequest as exc:
            return _answered(refusal(exc.status, exc.reason, self._cors()))
        return self._exchange(messages, "long-polling", cost, None)

    def _preflight(self) -> HttpResponse:
        headers = [
            *self._cors(),
            ("Access-Control-Allow-Methods", "GET, POST, OPTIONS"),
            ("Access-Control-Allow-Headers", CORS_REQUEST_HEADERS),
            ("Access-Control-Max-Age", "86400"),
        ]
        return HttpResponse(204, headers)

    async def _callback_polling(self) -> HttpResponse | None:
        request = self.request
        raw = request.argument("message")
        if raw is None:
            return refusal(
                400,
                "expected a POST of Bayeux messages, or a GET with a 'message'"
                " parameter (callback-polling)",
                self._cors(),
            )
        if origin_refused(request, self.context, readable=True):
            return refusal(403, "origin not allowed: a script request must name its page")
        # The spec's default callback name when the request names none.
        callback = request.argument(self.context.settings.jsonp_parameter) or "jsonpcallback"
        if len(callback) > _MAX_CALLBACK or not _CALLBACK_RE.match(callback):
            return refusal(400, "invalid JSONP callback name", self._cors())
        try:
            encoded = raw.encode()
            messages = decode_batch(encoded, self.context.settings.max_batch_messages)
        except BadRequest as exc:
            return refusal(exc.status, exc.reason, self._cors())
        # The query's text and its bytes, and what they decode into.
        waits = self.context.server.batches_may_wait()
        cost = 2 * len(encoded) + decoded_cost(encoded) if waits else 0
        return await self._exchange(messages, "callback-polling", cost, callback)

    def _headers(self, *headers: tuple[str, str]) -> Headers:
        out = [*headers, _NO_CACHE]
        request = self.request
        if self._set_cookie and request.browser is not None:
            # Written out only now: not kept while a connect is held (benchmarks/memory.py).
            cookie = request.browser_cookie(request.browser, self.context.server.settings)
            out.append(("Set-Cookie", cookie))
        added = request.response_headers
        if added is not None:
            out.extend(added.lines)
        return out

    async def _exchange(
        self, messages: list[Message], connection_type: str, cost: int, callback: str | None
    ) -> HttpResponse | None:
        """Runs the batch through the core, holding its connect if any (`cost`: what the
        decoded batch holds in memory meanwhile), and answers it: with JSON, or with a script
        calling `callback` (callback-polling). None when the client went away while the
        connect was held."""
        context = self.context
        server = context.server
        browser = self._browser_id()
        request = self.request
        outcome = await server.handle(
            messages,
            self.peer or Peer(request.remote_ip),
            # Made here, positionally: a keyword argument to a class costs a dict per request
            # (benchmarks/exchange.py).
            RequestContext(request, connection_type, True),
            cost=cost,
        )
        items = [codec.dumps_transient(reply) for reply in outcome.replies]
        hold = outcome.connect
        # The batch is handled: neither it nor its outcome is kept while the connect is held
        # (benchmarks/memory.py).
        messages.clear()
        del outcome
        if hold is not None:
            if hold.timeout > 0 and not context.browser_may_hold(browser):
                # Another long-poll of this browser is already held: with HTTP's connection
                # budget, tell this client to poll instead (Bayeux's multiple-clients advice).
                deliveries, reply = server.finish_connect(hold, Wakeup.BROWSER_BUSY)
            else:
                why = answered_at_once(server, hold)
                if why is None:
                    # A browser id made for this request is this request's alone: no other
                    # request can hold a long-poll under it, so it is not counted.
                    counted = browser if request.browser_sent else None
                    waiter = self._waiter = FutureWaiter()
                    context.browser_holding(counted, +1)
                    context.stream_opened(self)
                    future = waiter.park(hold)
                    try:
                        why = await future
                    finally:
                        waiter.unpark(hold)
                        context.stream_closed(self)
                        context.browser_holding(counted, -1)
                        self._waiter = None
                deliveries, reply = server.finish_connect(hold, why)
                if why is Wakeup.GONE:
                    return None
            if hold.pending is not None:
                await reply_ready(hold)
            if deliveries:
                server.stats.observe_latency(time.monotonic() - deliveries[0].born)
            items += [d.json for d in deliveries]
            items.append(codec.dumps_transient(reply))
        body = codec.join_array(items)
        if callback is not None:
            headers = self._headers(
                ("Content-Type", JAVASCRIPT_TYPE), ("X-Content-Type-Options", "nosniff")
            )
            # `/**/` keeps the reply from starting with attacker-chosen bytes (Rosetta Flash).
            return HttpResponse(200, headers, b"/**/" + callback.encode() + b"(" + body + b");")
        # CORS headers only for a request that names an origin (an allowed one: early_refusal).
        cors = self._cors() if "origin" in request.headers else ()
        return HttpResponse(200, self._headers(("Content-Type", JSON_TYPE), *cors), body)

    def _browser_id(self) -> str | None:
        """The browser's id cookie (set on first contact), when browser tracking is on."""
        settings = self.context.server.settings
        if not settings.browser_cookie:
            return None
        browser = self.request.identify_browser(settings.browser_cookie)
        if browser is None:
            browser = self.request.browser = secrets.token_hex(16)
            self._set_cookie = True
        return browser

    def finish_draining(self) -> None:
        """A held connect is answered by the server's shutdown itself (it wakes every waiter);
        the drain only waits for this request to end."""


# Content-Type values of JSON bodies as the usual clients send them, taken without parsing
# (benchmarks/exchange.py).
_JSON_TYPES = frozenset(
    ("application/json", "application/json;charset=utf-8", "application/json; charset=utf-8")
)


async def _answered(response: HttpResponse) -> HttpResponse:
    return response


def messages_from_body(request: HttpRequest, max_messages: int) -> list[Message]:
    body = request.body
    given = request.headers.get("content-type", "")
    if given in _JSON_TYPES:
        return decode_batch(body, max_messages)
    content_type = given.split(";")[0].strip().lower()
    # Faye's cross-origin transport posts `message=<urlencoded JSON>` as text/plain (a type
    # that needs no CORS preflight), so a form body is recognised by its content too.
    if content_type == "application/x-www-form-urlencoded" or (
        content_type != "application/json" and body.lstrip().startswith(b"message=")
    ):
        try:
            fields = parse_qs(
                body.decode("utf-8", "replace"),
                keep_blank_values=True,
                max_num_fields=max_messages + 16,  # the messages, and a few other fields
            )
        except ValueError:
            raise _too_many(max_messages) from None
        values = fields.get("message")
        if not values:
            raise BadRequest(400, "form body without a 'message' field")
        # The field may repeat, each value one message or an array of them.
        messages: list[Message] = []
        for value in values:
            messages.extend(decode_batch(value.encode(), max_messages))
            if len(messages) > max_messages:
                raise _too_many(max_messages)
        return messages
    return decode_batch(body, max_messages)


def _too_many(max_messages: int) -> BadRequest:
    return BadRequest(413, f"more than {max_messages} messages in one request")


# Bodies above this size are refused before they are read when their address is busy: the
# check costs a look-up of the address, which small requests do without.
EARLY_CHECKED_BODY = 64 * 1024


def decode_batch(body: bytes, max_messages: int) -> list[Message]:
    try:
        value = codec.loads_batch(body)
    except codec.BatchDecodeError:
        # Told apart only once refused: a body of nothing but blanks is not JSON either.
        if not body.strip():
            raise BadRequest(400, "empty request body") from None
        raise BadRequest(400, "request body is not valid JSON") from None
    try:
        return batch_from(value, max_messages)
    except TooManyMessages:
        raise _too_many(max_messages) from None
    except ProtocolError as exc:
        raise BadRequest(400, f"not Bayeux messages: {exc}") from None
