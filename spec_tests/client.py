"""A minimal Bayeux client for writing conformance rules: one session over one transport, with
the protocol steps as methods and raw access when a rule needs to send something unusual."""

from __future__ import annotations

import asyncio
from typing import Any

from .wire import Message, Transport, next_id, transport_for


class SpecFailure(AssertionError):
    """The server broke the rule under test."""


def expect(condition: bool, what: str, evidence: Any = None) -> None:
    if not condition:
        raise SpecFailure(what + (f": {evidence!r}"[:600] if evidence is not None else ""))


HANDSHAKE_RETRIES = 3
# Seconds a request that no server holds (all but a connect) may take to be answered: a server
# that never answers (or answers without the request's id) fails fast, not at the rule's end.
QUICK_REPLY = 10.0


class Client:
    def __init__(self, url: str, transport: str, *, timeout: float = 30.0) -> None:
        self.url = url
        self.transport_name = transport
        self.wire: Transport = transport_for(transport, url, timeout)
        self.client_id: str | None = None
        self.advice: dict[str, Any] = {}
        self.handshake_reply: Message | None = None
        # The connect kept outstanding by deliveries().
        self._poll: asyncio.Future[Any] | None = None

    # -------------------------------------------------------------------------- raw access

    async def send(self, *messages: Message) -> list[Message]:
        """Sends messages in one batch; returns what came back for it."""
        return await self.wire.exchange(list(messages))

    async def request(self, message: Message, *, within: float | None = QUICK_REPLY) -> Message:
        """Sends one message (given an id if it has none) and returns its reply, which must come
        `within` seconds (None: the transport's own timeout, for connects a server may hold)."""
        message.setdefault("id", next_id())
        try:
            received = await asyncio.wait_for(self.send(message), within)
        except TimeoutError:
            raise SpecFailure(f"no reply within {within}s to {message}") from None
        for reply in received:
            if reply.get("id") == message["id"] and "successful" in reply:
                return reply
        raise SpecFailure(f"no reply with id {message['id']} to {message}: got {received}")

    # ----------------------------------------------------------------------- protocol steps

    def handshake_message(self, **fields: Any) -> Message:
        """A handshake request for this client's transport, with `fields` added or replaced."""
        return {
            "channel": "/meta/handshake",
            "version": "1.0",
            "minimumVersion": "1.0",
            "supportedConnectionTypes": [self.transport_name],
            **fields,
        }

    async def handshake(self, **fields: Any) -> Message:
        reply = await self.request(self.handshake_message(**fields))
        for _ in range(HANDSHAKE_RETRIES):
            # A server that sheds load (too many handshakes from this address, too many
            # sessions) advises handshaking again after an interval: do as real clients do.
            advice = reply.get("advice") or {}
            error = str(reply.get("error", ""))
            if reply.get("successful") or advice.get("reconnect") != "handshake":
                break
            if not error.startswith(("429:", "503:")):
                break
            await asyncio.sleep(min(float(advice.get("interval") or 0), 10_000) / 1000)
            reply = await self.request(self.handshake_message(**fields))
        self.handshake_reply = reply
        if reply.get("successful"):
            self.client_id = reply["clientId"]
            self.advice.update(reply.get("advice") or {})
        return reply

    async def connect(self, **fields: Any) -> Message:
        message = {
            "channel": "/meta/connect",
            "clientId": self.client_id,
            "connectionType": self.transport_name,
            **fields,
        }
        advice = fields.get("advice")
        immediate = isinstance(advice, dict) and advice.get("timeout") == 0
        reply = await self.request(message, within=QUICK_REPLY if immediate else None)
        self.advice.update(reply.get("advice") or {})
        return reply

    async def start(self) -> Message:
        """Handshake and the first connect; fails the rule if either fails."""
        reply = await self.handshake()
        expect(reply.get("successful") is True, "handshake failed", reply)
        first = await self.connect(advice={"timeout": 0})
        expect(first.get("successful") is True, "first connect failed", first)
        return reply

    async def subscribe(self, subscription: str | list[str], **fields: Any) -> Message:
        return await self.request(
            {
                "channel": "/meta/subscribe",
                "clientId": self.client_id,
                "subscription": subscription,
                **fields,
            }
        )

    async def unsubscribe(self, subscription: str | list[str], **fields: Any) -> Message:
        return await self.request(
            {
                "channel": "/meta/unsubscribe",
                "clientId": self.client_id,
                "subscription": subscription,
                **fields,
            }
        )

    async def publish(self, channel: str, data: Any, **fields: Any) -> Message:
        return await self.request(
            {"channel": channel, "clientId": self.client_id, "data": data, **fields}
        )

    async def disconnect(self) -> Message:
        return await self.request({"channel": "/meta/disconnect", "clientId": self.client_id})

    async def deliveries(self, count: int, within: float = 5.0) -> list[Message]:
        """Waits for `count` delivered messages, keeping a connect outstanding as every transport
        needs; returns them (fewer when `within` seconds pass first)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        inbox = self.wire.inbox
        while len(inbox) < count:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            poll = self._poll
            if poll is not None and poll.done():
                self._poll = None
                reply = poll.result()
                expect(reply.get("successful") is True, "connect failed while waiting", reply)
            if self._poll is None:
                hold_ms = max(0, int(remaining * 1000))
                self._poll = asyncio.ensure_future(self.connect(advice={"timeout": hold_ms}))
            await asyncio.wait([self._poll], timeout=min(remaining, 0.02))
        taken, inbox[:] = inbox[:count], inbox[count:]
        return taken

    async def pushed(self, count: int, within: float) -> list[Message]:
        """Waits for `count` deliveries without sending anything (a WebSocket server must push
        them while a connect is held); returns them, fewer when `within` seconds pass first."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        inbox = self.wire.inbox
        while len(inbox) < count and loop.time() < deadline:
            await asyncio.sleep(0.02)
        taken, inbox[:] = inbox[:count], inbox[count:]
        return taken

    async def close(self) -> None:
        if self._poll is not None:
            if self._poll.done():
                if not self._poll.cancelled():
                    self._poll.exception()  # retrieved: already reported, or irrelevant now
            else:
                self._poll.cancel()
        await self.wire.close()
