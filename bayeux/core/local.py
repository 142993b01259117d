"""A client living inside the server (CometD's LocalSession): it subscribes and publishes like a
remote one, through the same policy, listeners and extensions, but needs no transport."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import channel as ch
from .message import Message
from .session import ServerSession
from .tasks import TaskSet
from .threads import LoopOwner, on_loop_async

if TYPE_CHECKING:
    from .server import BayeuxServer

log = logging.getLogger("bayeux.local")
_callback_tasks = TaskSet("a local session callback", log)
MessageCallback = Callable[[Message], Any]


class LocalSession:
    """Create with `await LocalSession.connect(server)`; deliveries reach the callbacks given to
    `subscribe` on the event loop, never synchronously inside a publish.

    Examples:
        >>> async def main():
        ...     local = await LocalSession.connect(server)
        ...     inbox = asyncio.Queue()
        ...     await local.subscribe("/chat/*", inbox.put_nowait)
        ...     await local.publish("/chat/lobby", "hello")
        ...     print((await inbox.get())["data"])
        ...     await local.disconnect()
        >>> asyncio.run(main())
        hello

    Added in version 0.1.0."""

    def __init__(self, server: BayeuxServer, session: ServerSession) -> None:
        self.server = server
        self.session = session
        self._callbacks: dict[str, list[MessageCallback]] = {}
        self._scheduled = False
        session.local = True
        session.deadline = None  # lives as long as the server, or until disconnect()
        session.attach(self)

    @classmethod
    async def connect(cls, server: BayeuxServer, **handshake_fields: Any) -> LocalSession:
        """Handshakes through the security policy, as a remote client would; from any thread
        (awaited on another thread's loop, it runs on the server's).

        Raises:
            PermissionError: the handshake was refused (by the policy, say).

        Examples:
            >>> local = asyncio.run(LocalSession.connect(server, ext={"token": "s3cret"}))
            >>> server.sessions[local.id] is local.session, local.session.local
            (True, True)
        """
        return await server.loop_owner.run(lambda: cls._connect(server, handshake_fields))

    @classmethod
    async def _connect(cls, server: BayeuxServer, handshake_fields: dict[str, Any]) -> LocalSession:
        outcome = await server.handle(
            [
                {
                    "channel": ch.META_HANDSHAKE,
                    "version": "1.0",
                    "supportedConnectionTypes": list(server.settings.allowed_transports),
                    **handshake_fields,
                }
            ]
        )
        (reply,) = outcome.replies
        if not reply.get("successful"):
            raise PermissionError(f"local session refused: {reply.get('error')}")
        return cls(server, server.sessions[reply["clientId"]])

    @property
    def loop_owner(self) -> LoopOwner:
        """The server's loop: the methods below may be awaited on any thread's loop.

        Examples:
            >>> local = asyncio.run(LocalSession.connect(server))
            >>> local.loop_owner is server.loop_owner
            True
        """
        return self.server.loop_owner

    @property
    def id(self) -> str:
        """The session's clientId.

        Examples:
            >>> local = asyncio.run(LocalSession.connect(server))
            >>> local.id == local.session.id, local.id in server.sessions
            (True, True)
        """
        return self.session.id

    @on_loop_async
    async def subscribe(self, pattern: str, callback: MessageCallback) -> Message:
        """Subscribes to `pattern` (through the policy and authorizers) and calls
        `callback(message)` for each message delivered on it; the subscribe reply.

        Examples:
            >>> async def main():
            ...     local = await LocalSession.connect(server)
            ...     reply = await local.subscribe("/news", print)
            ...     print(reply["successful"], reply["subscription"])
            >>> asyncio.run(main())
            True /news
        """
        self._callbacks.setdefault(pattern, []).append(callback)
        return await self._request({"channel": ch.META_SUBSCRIBE, "subscription": pattern})

    @on_loop_async
    async def unsubscribe(self, pattern: str) -> Message:
        """Unsubscribes from `pattern` and drops its callbacks; the unsubscribe reply.

        Examples:
            >>> async def main():
            ...     local = await LocalSession.connect(server)
            ...     await local.subscribe("/news", print)
            ...     reply = await local.unsubscribe("/news")
            ...     print(reply["successful"], server.publish("/news", "unheard"))
            >>> asyncio.run(main())
            True 0
        """
        self._callbacks.pop(pattern, None)
        return await self._request({"channel": ch.META_UNSUBSCRIBE, "subscription": pattern})

    @on_loop_async
    async def publish(self, channel: str, data: Any) -> Message:
        """Publishes as this session: policy, authorizers and listeners apply; the publish
        reply.

        Examples:
            >>> def no_spam(session, channel, message):
            ...     return message["data"] != "spam"
            >>> server.add_message_listener("/chat/**", no_spam)
            >>> async def main():
            ...     local = await LocalSession.connect(server)
            ...     print((await local.publish("/chat/lobby", "hi"))["successful"])
            ...     print((await local.publish("/chat/lobby", "spam"))["error"])
            >>> asyncio.run(main())
            True
            404:/chat/lobby:Message deleted
        """
        return await self._request({"channel": channel, "data": data})

    @on_loop_async
    async def disconnect(self) -> Message:
        """Ends the session as a client's /meta/disconnect would; the reply.

        Examples:
            >>> async def main():
            ...     local = await LocalSession.connect(server)
            ...     reply = await local.disconnect()
            ...     print(reply["successful"], local.id in server.sessions, local.session.ended)
            >>> asyncio.run(main())
            True False Ended.DISCONNECTED
        """
        return await self._request({"channel": ch.META_DISCONNECT})

    async def _request(self, message: Message) -> Message:
        message["clientId"] = self.session.id
        outcome = await self.server.handle([message])
        (reply,) = outcome.replies
        return reply

    # The Waiter interface: the core wakes us when messages are queued.
    is_stream = False

    def wake(self) -> None:
        """Delivers what is queued to the callbacks, on the next turn of the loop (the core calls
        it).

        Examples:
            >>> async def main():
            ...     local = await LocalSession.connect(server)
            ...     await local.subscribe("/news", lambda message: print("got", message["data"]))
            ...     server.publish("/news", "hi")  # queues it and wakes the session
            ...     print("published")
            ...     await asyncio.sleep(0)  # the loop's next turn
            >>> asyncio.run(main())
            published
            got hi
        """
        if not self._scheduled:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return  # no loop runs (a publish before the server serves): kept queued
            self._scheduled = True
            loop.call_soon(self._dispatch)

    def wake_after(self, seconds: float) -> None:
        """Wakes the session after `seconds` (a lazy message's delay; the core calls it).

        Examples:
            >>> server.channel("/prices").lazy_timeout = 0.01
            >>> async def main():
            ...     local = await LocalSession.connect(server)
            ...     inbox = asyncio.Queue()
            ...     await local.subscribe("/prices", inbox.put_nowait)
            ...     server.publish("/prices", 42, lazy=True)  # may wait 0.01 s for company
            ...     print(inbox.empty(), (await inbox.get())["data"])
            >>> asyncio.run(main())
            True 42
        """
        try:
            asyncio.get_running_loop().call_later(seconds, self.wake)
        except RuntimeError:
            pass  # no loop runs: kept queued, delivered at the next wake on the loop

    def displace(self) -> None:
        """Nothing: a local session has no remote connect to displace.

        Examples:
            >>> local = asyncio.run(LocalSession.connect(server))
            >>> connect = {"channel": "/meta/connect", "clientId": local.id,
            ...            "connectionType": "long-polling"}
            >>> asyncio.run(server.handle([connect])).replies[0]["error"]  # none may take over
            '402::Unknown client'
            >>> local.displace()
            >>> local.session.waiter is local
            True
        """
        pass  # remote connects are refused for local sessions: nothing can take over

    def close(self) -> None:
        """Drops every callback; the core calls it when the session ends.

        Examples:
            >>> async def main():
            ...     local = await LocalSession.connect(server)
            ...     await local.subscribe("/news", print)
            ...     local.close()
            ...     print(server.publish("/news", "unheard"))  # queued for it, no callback
            ...     await asyncio.sleep(0)
            >>> asyncio.run(main())
            1
        """
        self._callbacks.clear()

    def _dispatch(self) -> None:
        self._scheduled = False
        for delivery in self.session.drain():
            message = delivery.message
            for pattern, callbacks in list(self._callbacks.items()):
                if not ch.matches(pattern, message["channel"]):
                    continue
                for callback in callbacks:
                    try:
                        result = callback(message)
                        if asyncio.iscoroutine(result):
                            _callback_tasks.spawn(result)
                    except Exception:
                        log.exception("local session callback for %s failed", pattern)
