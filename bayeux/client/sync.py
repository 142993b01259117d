"""`SyncClient`: the asyncio client run on a thread of its own, for scripts and code that is
not asynchronous.

    with SyncClient("http://127.0.0.1:8080/cometd") as client:
        client.publish("/chat/room", {"text": "hello"})
        for message in client.messages("/chat/room", timeout=10):
            print(message["data"])
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable, Coroutine, Generator, Mapping
from typing import Any, TypeVar

from .client import Client, StateCallback, Subscription
from .state import State

T = TypeVar("T")
Message = dict[str, Any]


class SyncClient:
    """`Client` with blocking methods; takes the same keyword options. Callbacks given to
    `subscribe` and `on_state` run on the client's thread: hand work to your own threads from
    there. `timeout` bounds each blocking call, in seconds.

    Examples:
        >>> from bayeux.client import SyncClient
        >>> from bayeux.testing import ServerThread
        >>> with ServerThread() as running, SyncClient(running.url, timeout=10) as client:
        ...     room = client.messages("/chat/room", timeout=5)
        ...     reply = client.publish("/chat/room", {"text": "hello"})
        ...     next(room)["data"]
        {'text': 'hello'}

    Added in version 0.3.0."""

    def __init__(self, url: str, *, timeout: float = 30.0, **options: Any) -> None:
        self.url = url
        self.timeout = timeout
        self.options = options
        self.client: Client | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._state_callbacks: list[StateCallback] = []

    @property
    def state(self) -> State:
        """The client's `State` (NEW before `open()`).

        Examples:
            >>> from bayeux.client import SyncClient
            >>> from bayeux.testing import ServerThread
            >>> with ServerThread() as running:
            ...     client = SyncClient(running.url)
            ...     print(client.state)
            ...     with client:
            ...         print(client.state)
            new
            connected
        """
        return self.client.state if self.client is not None else State.NEW

    def on_state(self, callback: StateCallback) -> None:
        """`Client.on_state`: `callback(old, new)` at each change of state, on the client's
        thread; given before `open()`, it sees the first handshake too.

        Examples:
            >>> from bayeux.client import SyncClient
            >>> from bayeux.testing import ServerThread
            >>> with ServerThread() as running:
            ...     client = SyncClient(running.url)
            ...     client.on_state(lambda old, new: print(old.name, "->", new.name))
            ...     with client:
            ...         pass
            NEW -> HANDSHAKING
            HANDSHAKING -> CONNECTED
            CONNECTED -> CLOSED
        """
        self._state_callbacks.append(callback)
        if self.client is not None:
            self.client.on_state(callback)

    def __enter__(self) -> SyncClient:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.disconnect()

    def open(self) -> None:
        """Starts the client's thread and handshakes (BayeuxError if refused).

        Examples:
            >>> from bayeux.client import SyncClient
            >>> from bayeux.testing import ServerThread
            >>> with ServerThread() as running:
            ...     client = SyncClient(running.url)
            ...     client.open()  # or: with SyncClient(url) as client
            ...     print(client.state)
            ...     client.disconnect()
            connected
        """
        if self._loop is not None:
            raise RuntimeError("the client is open already")
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="bayeux-client", daemon=True)
        self._thread.start()
        try:
            self.client = self._run(self._opened())
        except BaseException:
            self._stop_thread()
            raise

    async def _opened(self) -> Client:
        client = Client(self.url, **self.options)
        for callback in self._state_callbacks:
            client.on_state(callback)
        await client.open()
        return client

    def _run(self, coroutine: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        if self._loop is None:
            coroutine.close()
            raise RuntimeError("the client is not open")
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        return future.result(timeout if timeout is not None else self.timeout)

    def _open_client(self) -> Client:
        if self.client is None:
            raise RuntimeError("the client is not open")
        return self.client

    def subscribe(self, channel: str, callback: Callable[[Message], None]) -> Subscription:
        """`Client.subscribe`, blocking: calls `callback(message)` for each message on
        `channel` (a name or pattern), on the client's thread.

        Examples:
            >>> import queue
            >>> from bayeux.client import SyncClient
            >>> from bayeux.testing import ServerThread
            >>> received = queue.Queue()
            >>> with ServerThread() as running, SyncClient(running.url) as client:
            ...     subscription = client.subscribe("/chat/*", received.put)
            ...     reply = client.publish("/chat/lobby", "hello")
            ...     received.get(timeout=5)["data"]
            'hello'
        """
        return self._run(self._open_client().subscribe(channel, callback))

    def unsubscribe(self, subscription: Subscription) -> None:
        """`Client.unsubscribe`, blocking.

        Examples:
            >>> from bayeux.client import SyncClient
            >>> from bayeux.testing import ServerThread
            >>> @server.on_unsubscribed
            ... def left(session, channel):
            ...     print("the server saw it leave", channel)
            >>> with ServerThread(endpoint=Endpoint(server=server)) as running:
            ...     with SyncClient(running.url) as client:
            ...         subscription = client.subscribe("/chat/lobby", print)
            ...         client.unsubscribe(subscription)
            the server saw it leave /chat/lobby
        """
        self._run(self._open_client().unsubscribe(subscription))

    def publish(self, channel: str, data: Any, *, ext: Mapping[str, Any] | None = None) -> Message:
        """`Client.publish`, blocking: the server's reply (BayeuxError when refused).

        Examples:
            >>> from bayeux.client import SyncClient
            >>> from bayeux.testing import ServerThread
            >>> with ServerThread() as running, SyncClient(running.url) as client:
            ...     client.publish("/chat/lobby", {"text": "hello"})["successful"]
            True
        """
        return self._run(self._open_client().publish(channel, data, ext=ext))

    def remote_call(self, channel: str, data: Any, *, timeout: float = 10.0) -> Any:
        """`Client.remote_call`, blocking: the service's answer.

        Examples:
            >>> from bayeux.client import SyncClient
            >>> from bayeux.testing import ServerThread
            >>> server.add_service("/service/time", lambda request: {"now": "12:00"})
            >>> with ServerThread(endpoint=Endpoint(server=server)) as running:
            ...     with SyncClient(running.url) as client:
            ...         client.remote_call("/service/time", None, timeout=5)
            {'now': '12:00'}
        """
        client = self._open_client()
        return self._run(client.remote_call(channel, data, timeout=timeout), timeout + 1)

    def messages(
        self, channel: str, *, timeout: float | None = None, max_queued: int = 1000
    ) -> Generator[Message, None, None]:
        """The messages on `channel` from the subscription made by this call; the iteration
        stops once `timeout` seconds pass without one (None: never), and then unsubscribes.
        At most `max_queued` wait unread (the oldest are dropped beyond).

        Examples:
            >>> from bayeux.client import SyncClient
            >>> from bayeux.testing import ServerThread
            >>> from itertools import islice
            >>> with ServerThread() as running, SyncClient(running.url) as client:
            ...     news = client.messages("/news", timeout=5)  # subscribed now
            ...     for n in range(3):
            ...         reply = client.publish("/news", n)
            ...     [message["data"] for message in islice(news, 3)]
            [0, 1, 2]
        """
        waiting: queue.Queue[Message] = queue.Queue(max_queued)

        def put(message: Message) -> None:
            if waiting.full():
                waiting.get_nowait()
            waiting.put_nowait(message)

        return self._iterate(waiting, self.subscribe(channel, put), timeout)

    def _iterate(
        self, waiting: queue.Queue[Message], subscription: Subscription, timeout: float | None
    ) -> Generator[Message, None, None]:
        try:
            while True:
                try:
                    yield waiting.get(timeout=timeout)
                except queue.Empty:
                    return
        finally:
            if self.client is not None and self.client.state != "closed":
                self.unsubscribe(subscription)

    def disconnect(self) -> None:
        """Disconnects and stops the client's thread.

        Examples:
            >>> from bayeux.client import SyncClient
            >>> from bayeux.testing import ServerThread
            >>> with ServerThread() as running:
            ...     client = SyncClient(running.url)
            ...     client.open()
            ...     client.disconnect()
            ...     print(client.state)
            closed
        """
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        try:
            if self.client is not None:
                self._run(self.client.disconnect())
        finally:
            self._stop_thread()

    def _stop_thread(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is not None and thread is not None:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)
            loop.close()
        self._loop = self._thread = None
