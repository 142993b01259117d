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
from .errors import TransportError

log = logging.getLogger("bayeux.client")

Message = dict[str, Any]
Receive = Callable[[list[Message]], None]

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


def _messages(value: Any) -> list[Message]:
    """A response body's messages: a JSON array of objects (or one object)."""
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(m, dict) for m in value):
        raise TransportError("the server sent something other than Bayeux messages")
    return value


class LongPolling:
    """One POST a batch: `application/json` bodies, the response's messages received."""

    name = "long-polling"
    broken = False

    def __init__(self, http: aiohttp.ClientSession, url: str, receive: Receive) -> None:
        self.http = http
        self.url = url
        self.receive = receive

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
                body = await response.read()
                if response.status != 200:
                    raise TransportError(f"HTTP {response.status} from {self.url}")
        except (TimeoutError, aiohttp.ClientError, OSError) as error:
            raise TransportError(f"{type(error).__name__}: {error}") from error
        try:
            received = _messages(codec.loads(body))
        except ValueError as error:
            raise TransportError(f"a response that is not JSON: {error}") from error
        self.receive(received)

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
        max_message_size: int = 4 * 1024 * 1024,
        on_closed: Callable[[], None] = lambda: None,
    ) -> None:
        self.http = http
        self.url = "ws" + url[4:] if url.startswith("http") else url
        self.receive = receive
        self.msgpack = msgpack
        self.max_message_size = max_message_size
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
                max_msg_size=self.max_message_size,
                timeout=aiohttp.ClientWSTimeout(ws_close=5),
            )
        except (TimeoutError, aiohttp.ClientError, OSError) as error:
            raise TransportError(f"WebSocket upgrade failed: {error}") from error
        self.binary = self.socket.protocol == MSGPACK_SUBPROTOCOL
        self.reader = asyncio.ensure_future(self._read(self.socket))

    async def _read(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        try:
            async for frame in socket:
                if frame.type == aiohttp.WSMsgType.TEXT:
                    value = codec.loads(frame.data)
                elif frame.type == aiohttp.WSMsgType.BINARY:
                    value = codec.msgpack_loads(frame.data)
                else:
                    break  # an error or a close
                self.receive(_messages(value))
        except (ValueError, TransportError) as error:
            log.warning("closing a WebSocket that sent %s", error)
            await socket.close(code=1007)
        finally:
            self.on_closed()

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
