"""Client extensions: code that sees every message the client sends and receives.

- `AckExtension`: CometD's message acknowledgement; with a server that offers it, messages
  whose connect reply was lost are delivered again, not lost.
- `TimesyncExtension`: estimates the server's clock (CometD's timesync).
- `ReplayExtension`: Salesforce-style replay; each channel's last replay id is kept in a
  `ReplayStore` and asked for when the channel is subscribed again, also after a restart when
  the store persists.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

Message = dict[str, Any]

# Salesforce's replay ids: only what is published from now on, or everything retained.
NEW_ONLY = -1
ALL_RETAINED = -2


def ext(message: Message) -> dict[str, Any]:
    """The message's `ext` object, made if it has none (a malformed one is replaced)."""
    value = message.get("ext")
    if not isinstance(value, dict):
        value = message["ext"] = {}
    return value


def _ext_field(message: Message, name: str) -> Any:
    value = message.get("ext")
    return value.get(name) if isinstance(value, dict) else None


class ClientExtension:
    """Override what you need. `outgoing` and `incoming` return the message (changed or not),
    or None to drop it.

    Examples:
        >>> from bayeux.client import ClientExtension, SyncClient
        >>> from bayeux.testing import ServerThread
        >>> class Token(ClientExtension):  # credentials in the handshake
        ...     def outgoing(self, message):
        ...         if message["channel"] == "/meta/handshake":
        ...             message["ext"] = {"token": "s3cret"}
        ...         return message
        >>> class TokenPolicy(SecurityPolicy):
        ...     def can_handshake(self, session, message):
        ...         return message.get("ext") == {"token": "s3cret"}
        >>> server.policy = TokenPolicy()
        >>> with ServerThread(endpoint=Endpoint(server=server)) as running:
        ...     with SyncClient(running.url, extensions=[Token()]) as client:
        ...         print(client.state)
        connected

    Added in version 0.3.0."""

    def outgoing(self, message: Message) -> Message | None:
        """Sees each message before it is sent; returns it (changed or not) or None to drop it.

        Examples:
            >>> from bayeux.client import ClientExtension
            >>> class Signed(ClientExtension):
            ...     def outgoing(self, message):
            ...         if "data" in message:
            ...             message.setdefault("ext", {})["signed"] = "app-1"
            ...         return message
            >>> Signed().outgoing({"channel": "/chat/room", "data": "hello"})
            {'channel': '/chat/room', 'data': 'hello', 'ext': {'signed': 'app-1'}}
        """
        return message

    def incoming(self, message: Message) -> Message | None:
        """Sees each message received, replies and deliveries; returns it (changed or not) or
        None to drop it.

        Examples:
            >>> from bayeux.client import ClientExtension
            >>> class NoEcho(ClientExtension):  # drops deliveries of what this client sent
            ...     def incoming(self, message):
            ...         data = message.get("data")
            ...         mine = isinstance(data, dict) and data.get("by") == "me"
            ...         return None if mine else message
            >>> print(NoEcho().incoming({"channel": "/chat/room", "data": {"by": "me"}}))
            None
        """
        return message

    def subscribe_again(self, reply: Message) -> bool:
        """Whether a refused subscription should be asked once more (after this extension
        changed what the next attempt sends).

        Examples:
            >>> from bayeux.client import ReplayExtension
            >>> replay = ReplayExtension()  # asks again from NEW_ONLY when an id is refused
            >>> refused = {"channel": "/meta/subscribe", "subscription": "/news",
            ...            "successful": False, "error": "400::replayId 7 is not retained"}
            >>> replay.subscribe_again(refused), replay.subscribe_again(refused)
            (True, False)
        """
        return False


class AckExtension(ClientExtension):
    """At-least-once delivery: the next connect tells the server which batch of messages the
    client received, so a batch whose connect reply was lost is sent again.

    Examples:
        >>> from bayeux.client import AckExtension, SyncClient
        >>> from bayeux.testing import ServerThread
        >>> ack = AckExtension()
        >>> with ServerThread(Settings(ack_extension=True)) as running:
        ...     with SyncClient(running.url, extensions=[ack]):
        ...         print(ack.enabled)  # the server offered it in its handshake reply
        True

    Added in version 0.3.0."""

    def __init__(self) -> None:
        self.enabled = False  # the server agreed in its handshake reply
        self.batch: int | None = None

    def outgoing(self, message: Message) -> Message | None:
        channel = message.get("channel")
        if channel == "/meta/handshake":
            self.enabled, self.batch = False, None
            ext(message)["ack"] = True
        elif channel == "/meta/connect" and self.enabled and self.batch is not None:
            ext(message)["ack"] = self.batch
        return message

    def incoming(self, message: Message) -> Message | None:
        channel = message.get("channel")
        value = _ext_field(message, "ack")
        if channel == "/meta/handshake":
            self.enabled = value is True
        elif channel == "/meta/connect" and self.enabled:
            if isinstance(value, int) and not isinstance(value, bool):
                self.batch = value
        return message


class TimesyncExtension(ClientExtension):
    """Estimates the offset of the server's clock from this one's, in milliseconds, from the
    timesync data of handshake and connect replies. `server_time()` is the server's time now.

    Examples:
        >>> from bayeux.client import SyncClient, TimesyncExtension
        >>> from bayeux.testing import ServerThread
        >>> timesync = TimesyncExtension()
        >>> with ServerThread(Settings(timesync_extension=True)) as running:
        ...     with SyncClient(running.url, extensions=[timesync]):
        ...         abs(timesync.offset) < 1000  # ms; the server's clock is this machine's
        True

    Added in version 0.3.0."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.offset = 0.0  # server time minus local time, ms
        self.lag = 0.0  # one-way network delay, ms

    def _now_ms(self) -> float:
        return self.clock() * 1000

    def outgoing(self, message: Message) -> Message | None:
        if message.get("channel") in ("/meta/handshake", "/meta/connect"):
            ext(message)["timesync"] = {
                "tc": int(self._now_ms()),
                "l": int(self.lag),
                "o": int(self.offset),
            }
        return message

    def incoming(self, message: Message) -> Message | None:
        sync = (
            message.get("ext", {}).get("timesync") if isinstance(message.get("ext"), dict) else None
        )
        if isinstance(sync, dict) and all(_number(sync.get(k)) for k in ("tc", "ts", "p")):
            now = self._now_ms()
            lag = (now - sync["tc"] - sync["p"]) / 2
            self.lag = max(0.0, lag)
            self.offset = sync["ts"] - sync["tc"] - self.lag
        return message

    def server_time(self) -> float:
        """The server's clock now, in milliseconds since the epoch.

        Examples:
            >>> from bayeux.client import TimesyncExtension
            >>> timesync = TimesyncExtension(clock=lambda: 1000.0)  # seconds, as time.time
            >>> reply = {"channel": "/meta/connect",  # sent at 999.9 s, answered at once
            ...          "ext": {"timesync": {"tc": 999_900, "ts": 1_000_950, "p": 0}}}
            >>> _ = timesync.incoming(reply)
            >>> timesync.lag, timesync.offset, timesync.server_time()
            (50.0, 1000.0, 1001000.0)
        """
        return self._now_ms() + self.offset


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class ReplayStore(Protocol):
    """Where the replay extension keeps each channel's last replay id (a file, a database).

    Examples:
        >>> import json, pathlib, tempfile
        >>> from bayeux.client import ReplayExtension
        >>> class FileStore:  # kept across restarts
        ...     def __init__(self, path):
        ...         self.path = pathlib.Path(path)
        ...     def get(self, channel):
        ...         ids = json.loads(self.path.read_text()) if self.path.exists() else {}
        ...         return ids.get(channel)
        ...     def set(self, channel, replay_id):
        ...         ids = json.loads(self.path.read_text()) if self.path.exists() else {}
        ...         self.path.write_text(json.dumps({**ids, channel: replay_id}))
        >>> with tempfile.TemporaryDirectory() as directory:
        ...     store = FileStore(pathlib.Path(directory) / "replay.json")
        ...     store.set("/news", 42)
        ...     replay = ReplayExtension(store)
        ...     replay.outgoing({"channel": "/meta/subscribe", "subscription": "/news"})["ext"]
        {'replay': {'/news': 42}}

    Added in version 0.3.0."""

    def get(self, channel: str) -> int | None:
        """The last replay id seen on `channel`, None when there is none.

        Examples:
            >>> from bayeux.client import MemoryReplayStore
            >>> store = MemoryReplayStore({"/news": 42})  # a ReplayStore
            >>> store.get("/news"), store.get("/sports")
            (42, None)
        """
        ...

    def set(self, channel: str, replay_id: int) -> None:
        """Keeps `replay_id` as the last one seen on `channel`.

        Examples:
            >>> from bayeux.client import MemoryReplayStore
            >>> store = MemoryReplayStore()  # a ReplayStore
            >>> store.set("/news", 43)
            >>> store.get("/news")
            43
        """
        ...


class MemoryReplayStore:
    """Replay ids in this process's memory: kept across reconnects, not across restarts.

    Examples:
        >>> from bayeux.client import MemoryReplayStore, ReplayExtension
        >>> store = MemoryReplayStore({"/news": 42})
        >>> replay = ReplayExtension(store)
        >>> _ = replay.incoming({"channel": "/news", "data": {"event": {"replayId": 43}}})
        >>> store.ids
        {'/news': 43}

    Added in version 0.3.0."""

    def __init__(self, initial: dict[str, int] | None = None) -> None:
        self.ids: dict[str, int] = dict(initial or {})

    def get(self, channel: str) -> int | None:
        """The last replay id seen on `channel`, None when there is none.

        Examples:
            >>> from bayeux.client import MemoryReplayStore
            >>> MemoryReplayStore({"/news": 42}).get("/news")
            42
        """
        return self.ids.get(channel)

    def set(self, channel: str, replay_id: int) -> None:
        """Keeps `replay_id` as the last one seen on `channel`.

        Examples:
            >>> from bayeux.client import MemoryReplayStore
            >>> store = MemoryReplayStore()
            >>> store.set("/news", 43)
            >>> store.ids
            {'/news': 43}
        """
        self.ids[channel] = replay_id


class ReplayExtension(ClientExtension):
    """Salesforce-style replay. A subscription asks for the events after the channel's last
    replay id in `store` (`default`, NEW_ONLY or ALL_RETAINED, when it has none); each event's
    `data.event.replayId` is stored as it arrives. When the server refuses an id (no longer
    retained), the subscription is asked again from `fallback` (None: it stays refused).

    Examples:
        The store keeps each event's id: subscribed again (on a new session, or with the
        same store after a restart), /news resumes after it.

        >>> from bayeux.client import ReplayExtension, SyncClient
        >>> from bayeux.testing import ServerThread
        >>> replay = ReplayExtension()  # NEW_ONLY: the first time, what comes from now on
        >>> with ServerThread(Settings(replay_channels=("/news",))) as running:
        ...     with SyncClient(running.url, extensions=[replay]) as client:
        ...         news = client.messages("/news", timeout=5)
        ...         reply = client.publish("/news", "hello")
        ...         data = next(news)["data"]
        >>> data["payload"], data["event"]["replayId"] == replay.store.get("/news")
        ('hello', True)

    Added in version 0.3.0."""

    def __init__(
        self,
        store: ReplayStore | None = None,
        *,
        default: int = NEW_ONLY,
        fallback: int | None = NEW_ONLY,
    ) -> None:
        self.store: ReplayStore = store if store is not None else MemoryReplayStore()
        self.default = default
        self.fallback = fallback
        self._fell_back: set[str] = set()

    def outgoing(self, message: Message) -> Message | None:
        channel = message.get("channel")
        if channel == "/meta/handshake":
            ext(message)["replay"] = True
        elif channel == "/meta/subscribe":
            subscriptions = message.get("subscription")
            names = subscriptions if isinstance(subscriptions, list) else [subscriptions]
            asked = {}
            for name in names:
                if isinstance(name, str):
                    stored = self.store.get(name)
                    asked[name] = stored if stored is not None else self.default
            ext(message)["replay"] = asked
        return message

    def incoming(self, message: Message) -> Message | None:
        if message.get("channel") == "/meta/subscribe" and message.get("successful") is True:
            self._fell_back.discard(str(message.get("subscription")))
        data = message.get("data")
        event = data.get("event") if isinstance(data, dict) else None
        replay_id = event.get("replayId") if isinstance(event, dict) else None
        channel = message.get("channel")
        if (
            isinstance(replay_id, int)
            and isinstance(channel, str)
            and not channel.startswith("/meta/")
        ):
            self.store.set(channel, replay_id)
        return message

    def subscribe_again(self, reply: Message) -> bool:
        error = str(reply.get("error") or "")
        channel = reply.get("subscription")
        if self.fallback is None or "replayId" not in error or not isinstance(channel, str):
            return False
        if channel in self._fell_back:
            return False  # asked from the fallback already: refused for another reason
        self._fell_back.add(channel)
        self.store.set(channel, self.fallback)
        return True
