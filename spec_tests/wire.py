"""Wire clients for the conformance suite: they speak one transport each, to any server, and check
every message the server sends against the Bayeux JSON Schemas."""

from __future__ import annotations

import asyncio
import itertools
import json
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import urlencode

import tornado.httpclient
import tornado.websocket

from bayeux.schema import server_message_errors

Message = dict[str, Any]
TRANSPORTS = ("long-polling", "callback-polling", "websocket")
# The longest callback-polling URL the suite sends: CometD's JavaScript client keeps its URLs
# within this (maxURILength), and servers refuse longer request lines (aiohttp and Jetty past
# 8,190 bytes), so a rule must not need more of a server than CometD's clients do.
MAX_URL_LENGTH = 2000
_ids = itertools.count(1)
_JSONP_RE = re.compile(r"^\s*(?:/\*\*/)?\s*([A-Za-z_$][\w$.]*)\s*\((.*)\)\s*;?\s*$", re.S)


class SchemaViolation(AssertionError):
    """A server sent a message that breaks the Bayeux JSON Schemas."""

    def __init__(self, message: Any, errors: list[str]) -> None:
        super().__init__(f"schema violation in {json.dumps(message)[:500]}: {'; '.join(errors)}")
        self.message = message
        self.errors = errors


class WireError(AssertionError):
    """The server's answer could not be read as Bayeux at all (HTTP error, bad framing)."""

    def __init__(self, text: str, *, status: int | None = None) -> None:
        super().__init__(text)
        self.status = status  # the HTTP status, when that was the problem


class UrlTooLong(AssertionError):
    """A message cannot be sent over callback-polling: alone in its URL, it passes
    MAX_URL_LENGTH. The suite refuses to send it (as CometD's client does) rather than cut it."""


def next_id() -> str:
    return str(next(_ids))


def is_delivery(message: Message) -> bool:
    return (
        "data" in message
        and "successful" not in message
        and not message.get("channel", "").startswith("/meta/")
    )


def validated(messages: Any) -> list[Message]:
    if not isinstance(messages, list):
        raise WireError(f"expected a JSON array of messages, got {json.dumps(messages)[:300]}")
    for message in messages:
        errors = server_message_errors(message)
        if errors:
            raise SchemaViolation(message, errors)
    return messages


@dataclass
class Transport(ABC):
    """One connection's worth of exchanges with the server at `url`."""

    url: str
    name: ClassVar[str] = ""
    timeout: float = 30.0
    inbox: list[Message] = field(default_factory=list)  # deliveries not yet consumed
    # Cookies the server set, sent back as any HTTP client with a cookie jar would.
    cookies: dict[str, str] = field(default_factory=dict)
    send_cookies: bool = True

    def __post_init__(self) -> None:  # noqa: B027 - optional hook: WebSocket sets up its reader
        pass

    def _cookie_headers(self) -> dict[str, str]:
        if not self.send_cookies or not self.cookies:
            return {}
        return {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}

    def _keep_cookies(self, response: tornado.httpclient.HTTPResponse) -> None:
        for header in response.headers.get_list("Set-Cookie"):
            name, _, rest = header.partition("=")
            self.cookies[name.strip()] = rest.split(";", 1)[0].strip()

    @abstractmethod
    async def exchange(self, messages: list[Message]) -> list[Message]:
        """Sends a batch; returns every message received for it (replies, and deliveries that came
        in the same response). Deliveries are also appended to `inbox`."""

    async def close(self) -> None:  # noqa: B027 - HTTP transports hold nothing open
        pass

    def _sort(self, received: list[Message]) -> list[Message]:
        self.inbox.extend(m for m in received if is_delivery(m))
        return received


class LongPolling(Transport):
    name = "long-polling"

    async def post(
        self,
        body: bytes | str,
        *,
        path: str = "",
        headers: dict[str, str] | None = None,
        method: str = "POST",
    ) -> tornado.httpclient.HTTPResponse:
        client = tornado.httpclient.AsyncHTTPClient()
        request = tornado.httpclient.HTTPRequest(
            self.url + path,
            method=method,
            body=body if method == "POST" else None,
            headers={
                "Content-Type": "application/json;charset=UTF-8",
                **self._cookie_headers(),
                **(headers or {}),
            },
            request_timeout=self.timeout,
            allow_nonstandard_methods=True,
        )
        response = await client.fetch(request, raise_error=False)
        self._keep_cookies(response)
        return response

    async def exchange(self, messages: list[Message]) -> list[Message]:
        response = await self.post(json.dumps(messages))
        if response.code != 200:
            raise WireError(
                f"HTTP {response.code} for {json.dumps(messages)[:300]}: "
                f"{(response.body or b'')[:300]!r}",
                status=response.code,
            )
        content_type = response.headers.get("Content-Type", "")
        if not content_type.startswith("application/json"):
            raise WireError(f"Content-Type {content_type!r} is not application/json")
        try:
            received = json.loads(response.body)
        except ValueError:
            raise WireError(f"reply is not JSON: {response.body[:300]!r}") from None
        return self._sort(validated(received))


class CallbackPolling(Transport):
    name = "callback-polling"
    callback = "bayeuxSpec_cb"

    def url_for(self, query: dict[str, str]) -> str:
        """The GET URL carrying `query`; raises UrlTooLong past MAX_URL_LENGTH."""
        url = self.url + "?" + urlencode(query)
        if len(url) > MAX_URL_LENGTH:
            raise UrlTooLong(
                f"a callback-polling URL of {len(url)} characters passes the suite's limit of "
                f"{MAX_URL_LENGTH} (CometD's maxURILength): {url[:200]}..."
            )
        return url

    async def get(self, query: dict[str, str]) -> tornado.httpclient.HTTPResponse:
        client = tornado.httpclient.AsyncHTTPClient()
        request = tornado.httpclient.HTTPRequest(
            self.url_for(query),
            method="GET",
            request_timeout=self.timeout,
            headers=self._cookie_headers(),
        )
        response = await client.fetch(request, raise_error=False)
        self._keep_cookies(response)
        return response

    def split(self, messages: list[Message]) -> list[list[Message]]:
        """`messages` cut, in order, into batches whose URLs fit within MAX_URL_LENGTH, each as
        long as fits: what CometD's CallbackPollingTransport does. Raises UrlTooLong for a
        message that does not fit alone."""
        batches: list[list[Message]] = []
        current: list[Message] = []
        for message in messages:
            if self._fits([*current, message]):
                current.append(message)
                continue
            if current:
                batches.append(current)
            current = [message]
            self.url_for(self._query([message]))  # raises: too long even alone
        if current or not batches:
            batches.append(current)
        return batches

    def _query(self, messages: list[Message]) -> dict[str, str]:
        return {"jsonp": self.callback, "message": json.dumps(messages)}

    def _fits(self, messages: list[Message]) -> bool:
        return len(self.url + "?" + urlencode(self._query(messages))) <= MAX_URL_LENGTH

    async def exchange(self, messages: list[Message]) -> list[Message]:
        # One request after another, so that the server sees the messages in their order.
        received: list[Message] = []
        for batch in self.split(messages):
            received += await self._exchange_one(batch)
        return received

    async def _exchange_one(self, messages: list[Message]) -> list[Message]:
        response = await self.get(self._query(messages))
        if response.code != 200:
            raise WireError(
                f"HTTP {response.code}: {(response.body or b'')[:300]!r}", status=response.code
            )
        text = response.body.decode()
        match = _JSONP_RE.match(text)
        if match is None or match.group(1) != self.callback:
            raise WireError(f"reply does not call {self.callback}(...): {text[:300]!r}")
        try:
            received = json.loads(match.group(2))
        except ValueError:
            raise WireError(f"callback argument is not JSON: {text[:300]!r}") from None
        return self._sort(validated(received))


class WebSocket(Transport):
    name = "websocket"

    def __post_init__(self) -> None:
        self._socket: tornado.websocket.WebSocketClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._replies: dict[str, Message] = {}
        self._arrived = asyncio.Event()
        self.close_code: int | None = None
        self.failure: BaseException | None = None

    async def connect(self) -> tornado.websocket.WebSocketClientConnection:
        if self._socket is not None and self._reader is not None and self._reader.done():
            # The server closed the socket (some do after /meta/disconnect): open a new one, as
            # clients do.
            self._socket = None
            self.failure = None
        if self._socket is None:
            ws_url = re.sub(r"^http", "ws", self.url)
            request = tornado.httpclient.HTTPRequest(
                ws_url, headers=self._cookie_headers(), connect_timeout=self.timeout
            )
            self._socket = await tornado.websocket.websocket_connect(request)
            self._reader = asyncio.ensure_future(self._read())
        return self._socket

    async def _read(self) -> None:
        assert self._socket is not None
        try:
            while True:
                frame = await self._socket.read_message()
                if frame is None:
                    self.close_code = self._socket.close_code
                    return
                received = validated(json.loads(frame))
                for message in received:
                    if is_delivery(message):
                        self.inbox.append(message)
                    elif "id" in message:
                        self._replies[str(message["id"])] = message
                    else:
                        self.inbox.append(message)
        except BaseException as exc:  # reported to the waiting exchange
            self.failure = exc
        finally:
            self._arrived.set()

    async def send_raw(self, frame: str | bytes) -> None:
        socket = await self.connect()
        await socket.write_message(frame, binary=isinstance(frame, bytes))

    async def exchange(self, messages: list[Message]) -> list[Message]:
        for message in messages:
            message.setdefault("id", next_id())
        ids = [str(m["id"]) for m in messages]
        await self.send_raw(json.dumps(messages))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        while not all(i in self._replies for i in ids):
            if self.failure is not None:
                raise WireError(f"WebSocket failed: {self.failure!r}")
            if self._reader is not None and self._reader.done():
                raise WireError(
                    f"WebSocket closed (code {self.close_code}) before replies to {ids}"
                )
            self._arrived.clear()
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise WireError(f"no reply to {ids} within {self.timeout}s")
            try:
                await asyncio.wait_for(self._arrived.wait(), min(remaining, 0.05))
            except TimeoutError:
                pass
        return [self._replies.pop(i) for i in ids]

    def take_replies(self) -> list[Message]:
        """Every reply received but not yet claimed by an exchange (for batches whose replies
        may legitimately be missing)."""
        replies = list(self._replies.values())
        self._replies.clear()
        return replies

    async def wait_closed(self, timeout: float) -> int | None:
        if self._reader is not None:
            await asyncio.wait_for(asyncio.shield(self._reader), timeout)
        return self.close_code

    async def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
        if self._reader is not None:
            try:
                await asyncio.wait_for(self._reader, 2)
            except (TimeoutError, Exception):
                self._reader.cancel()


def transport_for(name: str, url: str, timeout: float = 30.0) -> Transport:
    classes: dict[str, type[LongPolling | CallbackPolling | WebSocket]] = {
        "long-polling": LongPolling,
        "callback-polling": CallbackPolling,
        "websocket": WebSocket,
    }
    if name not in classes:
        raise ValueError(f"unknown transport {name!r}; one of {', '.join(classes)}")
    return classes[name](url, timeout=timeout)
