"""The engine: where a deployment of several processes keeps what they share.

One process alone needs none: its sessions, subscriptions and queues live in `BayeuxServer`.
With an engine (bayeux/engines/redis), every broadcast is written once to a message log that
every process reads back in the same order, each delivering it to the sessions it serves; and
each session has a record (its subscriptions, its position in the log, its ack state) so that
any process can take it over and resume its delivery from where it stood.

This module is the contract, without I/O: the core awaits these methods and is handed log
entries through `BayeuxServer.apply_log`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Protocol

from .attributes import Changes
from .message import Delivery, Message
from .replay import ReplayHistory
from .session import Ended, ServerSession
from .settings import Settings


class SessionStopped(Exception):
    """A claim of a session the server disconnected (BayeuxServer.disconnect) within its
    stop time: its client is to be told to stop."""

    def __init__(self, client_id: str, seconds: float) -> None:
        super().__init__(client_id)
        self.seconds = seconds


class ForeignBrowser(Exception):
    """A claim refused: the session is bound to another browser than the request's (taking it
    over would move it away from its own client for nothing)."""


class RecordMissing(Exception):
    """A change to a session's record that has none: ended elsewhere meanwhile, or made (or
    lost) while the engine could not be reached."""


class EngineUnavailable(Exception):
    """The engine cannot be reached now: the request gets a Bayeux error with retry advice."""


@dataclass(slots=True)
class SessionRecord:
    """A session as the deployment knows it, outside any process."""

    client_id: str
    subscriptions: list[str]
    # Position in the log (see `position_of`) up to which the client has its messages: written
    # to it, or with the ack extension acknowledged by it.
    position: int
    ack: bool = False
    # Whether it had its first connect (answered at once; later ones are held).
    connected: bool = False
    # The last ack batch number sent (the next process continues the numbering).
    batch: int = 0
    # End positions of batches sent but not yet acknowledged: a client acknowledging one of
    # them to the next process moves the position there rather than being sent it again.
    batches: dict[int, int] = field(default_factory=dict)
    # What was queued for it that is not in the log (replayed events, service replies), from
    # the process that let it go: queued first by the next one.
    pending: list[Delivery] = field(default_factory=list)
    # The client address its memory is counted against (core/limits.py), as its key; "" when
    # it has none. A process taking the session over counts it against the same address.
    address: str = ""
    # Its own timeout, interval and maxInterval in ms (BayeuxServer.set_timing); None each
    # for the server's.
    timing: tuple[int | None, int | None, int | None] = (None, None, None)
    # Its own broadcast-to-publisher (ServerSession.broadcast_to_publisher); None for the
    # server's.
    echo: bool | None = None
    # The user behind it (ServerSession.user); "" for none.
    user: str = ""
    # Its attributes (ServerSession.attributes), encoded as JSON.
    attributes: dict[str, bytes] = field(default_factory=dict)
    # The browser that made it (ServerSession.browser); "" for none.
    browser: str = ""


@dataclass(slots=True)
class LoggedMessage:
    """A broadcast, as the log hands it back."""

    position: int
    delivery: Delivery
    # The publisher's clientId (None for the server side): the process serving it decides
    # whether it gets its own message (broadcast-to-publisher).
    sender: str | None
    # Already delivered where it was published, while the log could not be reached: in this
    # process (or, for a session taken over, in the process that served it).
    delivered: bool = False
    # The message decoded, when the reader has it (it decodes each entry to read it): the
    # delivery keeps its JSON only, and would decode it again.
    message: Message | None = None


@dataclass(slots=True)
class LoggedSubscription:
    """A subscribe or unsubscribe handled by a process that does not serve the session."""

    position: int
    client_id: str
    patterns: list[str]  # those it changed (a subscribe adds only what was not there)
    subscribed: bool
    # The replay ids asked with a subscribe, by channel (core/replay.py).
    replay: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class LoggedDelivery:
    """A message for one session only (a service reply), from a process not serving it."""

    position: int
    client_id: str
    delivery: Delivery


LogEntry = LoggedMessage | LoggedSubscription | LoggedDelivery


@dataclass(slots=True)
class Claimed:
    """A session taken over: its record, the log entries after its position that concern
    it, and the position they were read through (the reader applies what comes after)."""

    record: SessionRecord
    backlog: list[LogEntry]
    through: int = 0


def position_of(stream_id: bytes | str) -> int:
    """A log id `<ms>-<seq>` as one integer that orders the same way."""
    text = stream_id.decode() if isinstance(stream_id, bytes) else stream_id
    ms, _, seq = text.partition("-")
    return (int(ms) << 22) | int(seq or 0)


def stream_id_of(position: int) -> str:
    return f"{position >> 22}-{position & 0x3FFFFF}"


@dataclass(frozen=True, slots=True)
class EngineStats:
    """An engine's counters, for metrics."""

    appended: int = 0  # log entries written
    applied: int = 0  # log entries handed to the core
    handoffs: int = 0  # sessions taken over from a live process
    claims: int = 0  # sessions this process took over (handoffs included)
    dropped: int = 0  # published while the log was away and lost to the outbox bound
    outbox_bytes: int = 0  # published while the log was away, waiting to be written
    read_lag: float = 0.0  # seconds the last entry read had waited in the log


class EngineHost(Protocol):
    """What an engine may ask of the server it serves (BayeuxServer is one)."""

    settings: Settings
    replay: ReplayHistory | None
    sessions: dict[str, ServerSession]
    engine: Engine

    def apply_log(self, entries: list[LogEntry]) -> None:
        """Applies log entries in log order, in this process."""

    def let_go(self, client_id: str) -> ServerSession | None:
        """Stops serving a session that another process takes over."""

    def remove_session(self, session: ServerSession, reason: Ended = Ended.REMOVED) -> None:
        """Ends a session served here."""

    def disconnect(self, session: ServerSession) -> None:
        """Ends a session served here and tells its client to stop."""

    def stop_ms(self, session: ServerSession) -> int:
        """How long after a disconnect its client's next connect is still told to stop."""

    def stopped(self, client_id: str, seconds: float) -> None:
        """Tells the next connect of `client_id` within `seconds` to stop (it was
        disconnected by the server while another process served it)."""

    def expired_elsewhere(self, record: SessionRecord) -> None:
        """A session whose process died and that nobody took over expired (found by this
        process's engine): the session listeners are told here, once."""

    def presence_changed(self, user: str, online: bool) -> None:
        """A user's last session in the deployment ended (online False), found by this
        process's engine: the presence listeners are told here."""


class Engine(Protocol):
    """What the core asks of an engine. Every method either completes or raises
    EngineUnavailable within a bounded time; none may raise anything else.

    Its life: `attach` when the endpoint is made (no I/O: from then on the core asks the
    engine, which answers EngineUnavailable until it serves), `start` on the running loop,
    `stop` at shutdown."""

    # Whether other processes share the sessions and broadcasts: broadcasts and subscription
    # changes then go through the engine's log, else they take effect here at once.
    shared: bool
    # Set while the engine serves (its store reached, the log followed, history loaded).
    ready: asyncio.Event
    # False while its store cannot be reached.
    available: bool

    def attach(self, host: EngineHost) -> None:
        """Binds the engine to the server (sets `host.engine`); no I/O."""

    async def start(self, host: EngineHost) -> None:
        """Starts serving `host` (attaching it if need be); returns at once, reaching the
        store in the background (`ready` is set once it serves)."""

    async def stop(self, timeout: float = 2.0) -> None:
        """Writes what waits, leaves its sessions to other processes and stops, within
        about `timeout` seconds."""

    def stats(self) -> EngineStats:
        """The engine's counters now."""

    def append(self, delivery: Delivery, sender: str | None) -> asyncio.Future[bool]:
        """Queues a broadcast for the log (those of one loop turn go in one round trip). The
        future is True once it is there (it comes back through `apply_log` in every process,
        this one included), False when the log cannot be reached: the caller delivers it
        locally, and the engine writes it later, marked as delivered here. Never fails."""

    async def created(self, session: ServerSession) -> None:
        """Records a new session served here, from the log's current position on."""

    async def claim(
        self, client_id: str, acknowledged: int | None, browser: str | None = None
    ) -> Claimed | None:
        """Takes a session over for this process (the one serving it lets go first); None
        when the deployment has no such session. With `browser`, only a session bound to no
        browser or to that one ("": to none), checked where the session's record is, before
        anything moves; else ForeignBrowser."""

    async def caught_up(self) -> None:
        """Returns once this process has applied every log entry written before the call
        (a replay read from the local history must include what another process published
        just before)."""

    async def view(self, client_id: str) -> SessionRecord | None:
        """The record of a session another process may serve, for a request that needs the
        session but not its delivery (publish, subscribe, disconnect)."""

    async def subscriptions_changed(
        self,
        session: ServerSession,
        patterns: list[str],
        subscribed: bool,
        replay: dict[str, int],
    ) -> None:
        """Writes a subscribe or unsubscribe (with the replay it asks for) to the log: the
        process serving the session applies it there, in order. Raises RecordMissing when
        the session has no record (nothing is written then)."""

    async def channel_subscribers(self, channel: str, limit: int) -> tuple[int, list[str]]:
        """How many sessions of the deployment's clients subscribe to exactly `channel`, and
        up to `limit` of their clientIds."""

    async def deliver_to(self, client_id: str, delivery: Delivery) -> None:
        """Sends a message to one session served elsewhere (through the log)."""

    async def end(self, client_id: str, stop_ms: int = 0) -> None:
        """Ends a session served elsewhere (a disconnect that reached another process). With
        `stop_ms` (BayeuxServer.disconnect), its client is told to stop: by the process
        serving it, or by whichever process its next connect reaches within `stop_ms`."""

    def removed(self, session: ServerSession, reason: Ended) -> None:
        """A session served here ended (or moved away, `Ended.MOVED`); with `Ended.KICKED`,
        every process tells its client's next connect to stop (`EngineHost.stop_ms`)."""

    def attributes_changed(
        self, session: ServerSession, changes: Changes
    ) -> asyncio.Future[bool] | None:
        """Writes a session's changed attributes (None: removed) to its record, after every
        change written before; the future is True once written, False when the store could
        not be reached (the whole record is written again when it is back). None when there
        is nothing to write to. Never fails. For a view (`session.remote`), the process
        serving the session is told too."""

    async def user_joined(self, session: ServerSession, user: str, limit: int) -> bool:
        """Records `session` as one of `user`'s in the deployment; True if the user had none
        (the user comes online). Raises TooManySessions, recording nothing, when the user
        has `limit` sessions already (-1: no limit): the count and the record are one step,
        so that processes associating at once cannot pass the limit together."""

    async def user_left(self, client_id: str, user: str) -> bool:
        """Forgets a session as `user`'s (the session goes on); True if it was the user's
        last in the deployment. When a session ends, the engine does this itself and tells
        `EngineHost.presence_changed`."""

    async def deliver_to_user(self, user: str, delivery: Delivery) -> int:
        """Sends a message to every session of `user` in the deployment, through the log
        (in order, and through a crash of the process serving one); how many."""

    async def online_users(self, limit: int) -> list[str]:
        """At most `limit` users with a session in the deployment."""

    def timing_changed(self, session: ServerSession) -> None:
        """A session's own timing or broadcast-to-publisher changed (BayeuxServer.set_timing,
        ServerSession.broadcast_to_publisher): every process that serves
        it from now on uses it. Never fails (written later if the store is away)."""


class LocalEngine:
    """The engine of a process that is alone, the default: nothing is shared, so there is no
    log to write and no other process to ask; every session is served here. The core takes
    the broadcasts and subscription changes that an engine would carry itself (`shared` is
    False), so `append`, `subscriptions_changed`, `deliver_to` and `end` are never asked."""

    shared = False

    def __init__(self) -> None:
        self.ready = asyncio.Event()
        self.ready.set()
        self.available = True

    def attach(self, host: EngineHost) -> None:
        host.engine = self

    async def start(self, host: EngineHost) -> None:
        self.attach(host)

    async def stop(self, timeout: float = 2.0) -> None:
        return None

    def stats(self) -> EngineStats:
        return EngineStats()

    def append(self, delivery: Delivery, sender: str | None) -> asyncio.Future[bool]:
        raise RuntimeError("a process alone delivers its broadcasts itself")

    async def created(self, session: ServerSession) -> None:
        return None

    async def claim(
        self, client_id: str, acknowledged: int | None, browser: str | None = None
    ) -> Claimed | None:
        return None  # no other process serves sessions

    async def caught_up(self) -> None:
        return None  # everything published is already here

    async def view(self, client_id: str) -> SessionRecord | None:
        return None

    async def subscriptions_changed(
        self,
        session: ServerSession,
        patterns: list[str],
        subscribed: bool,
        replay: dict[str, int],
    ) -> None:
        raise RuntimeError("a process alone changes its subscriptions itself")

    async def channel_subscribers(self, channel: str, limit: int) -> tuple[int, list[str]]:
        raise RuntimeError("a process alone counts its subscribers itself")

    async def deliver_to(self, client_id: str, delivery: Delivery) -> None:
        raise RuntimeError("a process alone serves every session itself")

    async def end(self, client_id: str, stop_ms: int = 0) -> None:
        raise RuntimeError("a process alone serves every session itself")

    def removed(self, session: ServerSession, reason: Ended) -> None:
        return None

    def attributes_changed(
        self, session: ServerSession, changes: Changes
    ) -> asyncio.Future[bool] | None:
        return None

    async def user_joined(self, session: ServerSession, user: str, limit: int) -> bool:
        raise RuntimeError("a process alone keeps its users itself")

    async def user_left(self, client_id: str, user: str) -> bool:
        raise RuntimeError("a process alone keeps its users itself")

    async def deliver_to_user(self, user: str, delivery: Delivery) -> int:
        raise RuntimeError("a process alone keeps its users itself")

    async def online_users(self, limit: int) -> list[str]:
        raise RuntimeError("a process alone keeps its users itself")

    def timing_changed(self, session: ServerSession) -> None:
        return None
