"""HTTP transports: `long-polling` (POST of JSON) and `callback-polling` (JSONP over GET).

Both accept any sub-path below the mount (the CometD JS client appends `/handshake`,
`/connect`, ... to the URL) and hold a `/meta/connect` on a future, not a thread.
"""

from __future__ import annotations

import re
import secrets
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import tornado.http1connection
import tornado.web

from .. import codec
from ..core.limits import Peer
from ..core.message import ProtocolError, batch_from
from .http_common import CORS_REQUEST_HEADERS, allow_origin, origin_refused, redact_for_logs
from .waiting import FutureWaiter, Wakeup, complete, wait_for_messages

if TYPE_CHECKING:
    from ..endpoint import Endpoint

JSON_TYPE = "application/json;charset=utf-8"
JAVASCRIPT_TYPE = "text/javascript;charset=utf-8"
# A JavaScript identifier path such as `cb`, `jQuery123_456` or `window.cometd._jsonp3`.
_CALLBACK_RE = re.compile(r"^[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*$")
_MAX_CALLBACK = 128


class BadRequest(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@tornado.web.stream_request_body
class PollingHandler(tornado.web.RequestHandler):
    """POST: long-polling. GET: callback-polling. OPTIONS: CORS preflight."""

    def initialize(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self._chunks: list[bytes] = []
        self._size = 0
        self._waiter: FutureWaiter | None = None

    # -------------------------------------------------------------------- request body limit

    def prepare(self) -> None:
        self.endpoint.start()
        redact_for_logs(self.request)
        if origin_refused(self, self.endpoint):
            # Every method: a cross-origin form POST or JSONP script needs no preflight, so the
            # browser sends it whatever CORS says; it must not be served.
            self._refuse(403, "origin not allowed")
            return
        limit = self.endpoint.settings.max_message_size
        declared = self.request.headers.get("Content-Length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            self._refuse(413, f"request body larger than {limit} bytes")
            return
        if self.request.method in ("POST", "PUT"):
            # Tornado's own limit sits above ours so that data_received sees the excess first and
            # answers 413; Tornado's would close the connection with a bare 400.
            connection = self.request.connection
            if isinstance(connection, tornado.http1connection.HTTP1Connection):
                connection.set_max_body_size(2 * limit + 65536)

    def data_received(self, chunk: bytes) -> None:
        if self._finished:
            return
        self._size += len(chunk)
        if self._size > self.endpoint.settings.max_message_size:
            self._refuse(
                413, f"request body larger than {self.endpoint.settings.max_message_size} bytes"
            )
            return
        self._chunks.append(chunk)

    def _refuse(self, status: int, reason: str) -> None:
        self._cors()
        self.set_status(status)
        self.set_header("Content-Type", "text/plain;charset=utf-8")
        self.set_header("Connection", "close")
        self.finish(reason + "\n")

    # ------------------------------------------------------------------------------- CORS

    def _cors(self) -> None:
        allow_origin(self, self.endpoint)

    def options(self, *args: Any) -> None:
        self._cors()
        self.set_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
        self.set_header("Access-Control-Allow-Headers", CORS_REQUEST_HEADERS)
        self.set_header("Access-Control-Max-Age", "86400")
        self.set_status(204)
        self.finish()

    # ------------------------------------------------------------------------- transports

    async def post(self, *args: Any) -> None:
        try:
            messages = self._messages_from_body()
        except BadRequest as exc:
            self._refuse(exc.status, exc.reason)
            return
        body = await self._exchange(messages)
        if body is None:
            return
        self._cors()
        self.set_header("Content-Type", JSON_TYPE)
        self.set_header("Cache-Control", "no-cache, no-store")
        self.finish(body)

    async def get(self, *args: Any) -> None:
        raw = self.get_query_argument("message", None)
        if raw is None:
            self._refuse(
                400,
                "expected a POST of Bayeux messages, or a GET with a 'message'"
                " parameter (callback-polling)",
            )
            return
        # The spec's default callback name when the request names none.
        callback = self.get_query_argument(self.endpoint.settings.jsonp_parameter, "jsonpcallback")
        if len(callback) > _MAX_CALLBACK or not _CALLBACK_RE.match(callback):
            self._refuse(400, "invalid JSONP callback name")
            return
        try:
            messages = _decode(raw.encode())
        except BadRequest as exc:
            self._refuse(exc.status, exc.reason)
            return
        body = await self._exchange(messages)
        if body is None:
            return
        self.set_header("Content-Type", JAVASCRIPT_TYPE)
        self.set_header("Cache-Control", "no-cache, no-store")
        self.set_header("X-Content-Type-Options", "nosniff")
        # `/**/` keeps the reply from starting with attacker-chosen bytes (Rosetta Flash).
        self.finish(b"/**/" + callback.encode() + b"(" + body + b");")

    def _messages_from_body(self) -> list:
        body = b"".join(self._chunks)
        content_type = self.request.headers.get("Content-Type", "").split(";")[0].strip().lower()
        # Faye's cross-origin transport posts `message=<urlencoded JSON>` as text/plain (a type
        # that needs no CORS preflight), so a form body is recognised by its content too.
        if content_type == "application/x-www-form-urlencoded" or (
            content_type != "application/json" and body.lstrip().startswith(b"message=")
        ):
            fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
            values = fields.get("message")
            if not values:
                raise BadRequest(400, "form body without a 'message' field")
            # The field may repeat, each value one message or an array of them.
            return [m for value in values for m in _decode(value.encode())]
        return _decode(body)

    async def _exchange(self, messages: list) -> bytes | None:
        """Runs the batch through the core, holding its connect if any. None when the client
        went away while the connect was held."""
        server = self.endpoint.server
        browser = self._browser_id()
        outcome = await server.handle(messages, Peer(address=self.request.remote_ip))
        items = [codec.dumps(reply) for reply in outcome.replies]
        hold = outcome.connect
        if hold is not None:
            if hold.timeout > 0 and not self.endpoint.browser_may_hold(browser):
                # Another long-poll of this browser is already held: with HTTP's connection
                # budget, tell this client to poll instead (Bayeux's multiple-clients advice).
                deliveries, reply = server.finish_connect(hold, multiple_clients=True)
            else:
                self._waiter = FutureWaiter()
                self.endpoint.browser_holding(browser, +1)
                self.endpoint.stream_opened(self)
                try:
                    why = await wait_for_messages(server, hold, self._waiter)
                finally:
                    self.endpoint.stream_closed(self)
                    self.endpoint.browser_holding(browser, -1)
                deliveries, reply = complete(server, hold, why)
                if why is Wakeup.GONE:
                    return None
            if deliveries:
                server.stats.observe_latency(time.monotonic() - deliveries[0].born)
            items.extend(d.json for d in deliveries)
            items.append(codec.dumps(reply))
        return codec.join_array(items)

    def _browser_id(self) -> str | None:
        """The browser's id cookie (set on first contact), when browser tracking is on."""
        name = self.endpoint.settings.browser_cookie
        if not name:
            return None
        browser = self.get_cookie(name)
        if browser is None or not browser.isalnum() or len(browser) > 64:
            browser = secrets.token_hex(16)
            self.set_cookie(name, browser, path="/", httponly=True)
        return browser

    def finish_draining(self) -> None:
        """A held connect is answered by the server's shutdown itself (it wakes every waiter);
        the drain only waits for this request to end."""

    def on_connection_close(self) -> None:
        # The client dropped a held connect: free it now rather than at timeout.
        if self._waiter is not None:
            self._waiter.gone()


def _decode(body: bytes) -> list:
    if not body.strip():
        raise BadRequest(400, "empty request body")
    try:
        value = codec.loads(body)
    except codec.DecodeError:
        raise BadRequest(400, "request body is not valid JSON") from None
    try:
        return batch_from(value)
    except ProtocolError as exc:
        raise BadRequest(400, f"not Bayeux messages: {exc}") from None
