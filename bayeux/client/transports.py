"""How the client carries message batches: long-polling (one HTTP POST a batch) and WebSocket
(JSON text frames, or binary frames in the `bayeux-msgpack` subprotocol when the server offers
it). Both run on one aiohttp ClientSession, so cookies (the server's browser cookie among them),
headers and TLS settings are the same on every request. What the server sends goes to
`receive(messages)`, replies and deliveries alike; the client matches them."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, Protocol

import aiohttp

from ..core import codec
from . import replies
from .errors import ProtocolError, ReplyTooLarge, TransportError

log = logging.getLogger("bayeux.client")

Message = dict[str, Any]
Receive = Callable[[list[Message]], None]
Closed = Callable[[TransportError | None], None]

MSGPACK_SUBPROTOCOL = "bayeux-msgpack"


class Transport(Protocol):
    name: str

    async def open(self) -> None:
        """Connects (WebSocket) or does nothing (long-polling); raises TransportError."""

    async def send(self, messages: list[Message], *, timeout: float) -> None:
        """Sends one batch. Long-polling returns once the response's messages went to
        `receive`; WebSocket once the frame is written. Raises TransportError."""

    @property
    def broken(self) -> bool:
        """A WebSocket that closed: whatever was sent and not answered is lost."""

    async def close(self) -> None: ...


class LongPolling:
    """One POST a batch: `application/json` bodies, the response's messages received. The
    response is refused unless it is 200 with a JSON content type, and read in chunks up to
    `bounds.max_size` bytes: a larger one fails as soon as it is seen to be larger (its
    Content-Length, or the chunk that crosses the bound), not once it is all in memory."""

    name = "long-polling"
    broken = False

    def __init__(
        self,
        http: aiohttp.ClientSession,
        url: str,
        receive: Receive,
        *,
        bounds: replies.Bounds = replies.DEFAULT_BOUNDS,
    ) -> None:
        self.http = http
        self.url = url
        self.receive = receive
        self.bounds = bounds

    async def open(self) -> None:
        pass

    async def send(self, messages: list[Message], *, timeout: float) -> None:
        try:
            async with self.http.post(
                self.url,
                data=codec.dumps(messages),
                headers={"Content-Type": "application/json;charset=UTF-8"},
                timeout=aiohttp.ClientTimeout(total=timeout),
            ) as response:
                if response.status != 200:
                    raise TransportError(f"HTTP {response.status} from {self.url}")
                body = await self._body(response)
        except (TimeoutError, aiohttp.ClientError, OSError) as error:
            raise TransportError(f"{type(error).__name__}: {error}") from error
        self.receive(replies.from_json(body, self.bounds))

    async def _body(self, response: aiohttp.ClientResponse) -> bytes:
        if "json" not in response.content_type:
            raise ProtocolError(f"a reply of content type {response.content_type!r}, not JSON")
        limit = self.bounds.max_size
        declared = response.content_length
        if declared is not None and declared > limit:
            raise ReplyTooLarge(f"a reply declaring {declared} bytes, over max_reply_size {limit}")
        body = bytearray()
        async for chunk in response.content.iter_chunked(64 * 1024):
            body += chunk
            if len(body) > limit:
                raise ReplyTooLarge(f"a reply of more than max_reply_size {limit} bytes")
        return bytes(body)

    async def close(self) -> None:
        pass


class WebSocket:
    """One WebSocket for every batch; frames read by a task of its own."""

    name = "websocket"

    def __init__(
        self,
        http: aiohttp.ClientSession,
        url: str,
        receive: Receive,
        *,
        msgpack: bool = True,
        bounds: replies.Bounds = replies.DEFAULT_BOUNDS,
        on_closed: Closed = lambda error: None,
    ) -> None:
        self.http = http
        self.url = "ws" + url[4:] if url.startswith("http") else url
        self.receive = receive
        self.msgpack = msgpack
        self.bounds = bounds
        self.on_closed = on_closed
        self.socket: aiohttp.ClientWebSocketResponse | None = None
        self.reader: asyncio.Task[None] | None = None
        self.binary = False

    @property
    def broken(self) -> bool:
        return self.socket is None or self.socket.closed

    async def open(self) -> None:
        protocols = (MSGPACK_SUBPROTOCOL,) if self.msgpack else ()
        try:
            self.socket = await self.http.ws_connect(
                self.url,
                protocols=protocols,
                max_msg_size=self.bounds.max_size,
                timeout=aiohttp.ClientWSTimeout(ws_close=5),
            )
        except (TimeoutError, aiohttp.ClientError, OSError) as error:
            raise TransportError(f"WebSocket upgrade failed: {error}") from error
        self.binary = self.socket.protocol == MSGPACK_SUBPROTOCOL
        self.reader = asyncio.ensure_future(self._read(self.socket))

    async def _read(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        failure: TransportError | None = None
        try:
            async for frame in socket:
                if frame.type == aiohttp.WSMsgType.TEXT:
                    received = replies.from_json(frame.data, self.bounds)
                elif frame.type == aiohttp.WSMsgType.BINARY:
                    received = replies.from_msgpack(frame.data, self.bounds)
                else:
                    failure = _frame_failure(frame, self.bounds.max_size)
                    break  # an error or a close
                self.receive(received)
        except ProtocolError as error:
            failure = error
            log.warning("closing a WebSocket that sent %s", error)
            await socket.close(code=1009 if isinstance(error, ReplyTooLarge) else 1007)
        finally:
            self.on_closed(failure)

    async def send(self, messages: list[Message], *, timeout: float) -> None:
        socket = self.socket
        if socket is None or socket.closed:
            raise TransportError("the WebSocket is closed")
        try:
            if self.binary:
                await asyncio.wait_for(socket.send_bytes(codec.msgpack_dumps(messages)), timeout)
            else:
                await asyncio.wait_for(socket.send_str(codec.dumps(messages).decode()), timeout)
        except (TimeoutError, aiohttp.ClientError, OSError) as error:
            raise TransportError(f"{type(error).__name__}: {error}") from error

    async def close(self) -> None:
        if self.socket is not None:
            await self.socket.close()
        if self.reader is not None:
            await asyncio.gather(self.reader, return_exceptions=True)


def _frame_failure(frame: aiohttp.WSMessage, limit: int) -> TransportError | None:
    """Why the reading stopped: a frame over the bound (aiohttp's reader refuses it once its
    header or its fragments cross `max_msg_size`), another error, or None for a close."""
    error = frame.data
    if frame.type == aiohttp.WSMsgType.ERROR and isinstance(error, aiohttp.WebSocketError):
        if error.code == aiohttp.WSCloseCode.MESSAGE_TOO_BIG:
            return ReplyTooLarge(f"a WebSocket message over max_reply_size {limit} bytes")
        return ProtocolError(f"a WebSocket error: {error}")
    if frame.type == aiohttp.WSMsgType.ERROR:
        return TransportError(f"the WebSocket failed: {error}")
    return None
