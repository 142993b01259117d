"""The activity extension, CometD's `ActivityExtension`: ends a session whose client does
nothing but heartbeat (`/meta/connect` and nothing else) for longer than a set time, or, in the
second mode, one where the server sends it nothing either.

It costs nothing per tick of the sweeper: as CometD's, it looks at a session only when that
session's next `/meta/connect` arrives, which an idle client sends every `timeout` or so (a
client that stops sending even those expires after `maxInterval` as before). An idle session
therefore ends at its first heartbeat past the limit: within one `timeout` of it. It is ended
as `BayeuxServer.disconnect` ends one: that connect is answered with `reconnect: none`, and the
session listeners are told `Ended.KICKED`.

What it keeps is one time per session, in the process serving it (the one its connects reach):
with `--redis`, a session another process takes over starts a new count there, and a message
of the session that reaches another process (a long-poll routed elsewhere) does not count.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from enum import Enum

from .. import channel as ch
from ..extension import Extension
from ..message import Delivery, Message
from ..session import Ended, ServerSession

log = logging.getLogger("bayeux.server")


class Activity(Enum):
    """What counts as a session's activity for `ActivityExtension` (CometD's `Activity`).

    Examples:
        >>> Activity("client-server") is Activity.CLIENT_SERVER
        True

    Added in version 0.3.0."""

    CLIENT = "client"  # what the client sends, heartbeats aside
    CLIENT_SERVER = "client-server"  # that, and what the server sends it


class ActivityExtension(Extension):
    """Ends sessions idle for longer than `max_inactivity` seconds, as CometD's
    `ActivityExtension` does: with `Activity.CLIENT`, a session whose client sent nothing but
    `/meta/connect`; with `Activity.CLIENT_SERVER`, one that also got nothing from the server.
    `disconnect(session)` ends one (`BayeuxServer.disconnect`), `clock` tells the time
    (monotonic seconds). `--activity-max-inactivity` installs one on the server; the
    server's `on_session_removed` should call `forget`, as it does then.

    Examples:
        >>> from bayeux.testing import ManualClock
        >>> clock = ManualClock()
        >>> idle = ActivityExtension(60, server.disconnect, clock=clock)
        >>> session = server.create_session()
        >>> idle.incoming(session, {"channel": "/chat/room", "data": "hi"})
        True
        >>> clock.now += 61
        >>> idle.incoming(session, {"channel": "/meta/connect"})
        True
        >>> session.ended
        <Ended.KICKED: 'kicked'>

    Added in version 0.3.0."""

    def __init__(
        self,
        max_inactivity: float,
        disconnect: Callable[[ServerSession], object],
        *,
        activity: Activity = Activity.CLIENT,
        clock: Callable[[], float],
    ) -> None:
        if not max_inactivity > 0:
            raise ValueError("max_inactivity must be > 0 seconds")
        self.max_inactivity = max_inactivity
        self.activity = activity
        self._disconnect = disconnect
        self._clock = clock
        # When each session was last active (by clientId), from when this process first saw
        # it: a session it never saw active counts from its first message here.
        self._last: dict[str, float] = {}

    def incoming(self, session: ServerSession | None, message: Message) -> bool:
        """Marks the session active, or, on a `/meta/connect`, ends it if it has been idle too
        long (the connect goes on, to be answered with `reconnect: none`).

        Examples:
            >>> from bayeux.testing import ManualClock
            >>> clock = ManualClock()
            >>> idle = ActivityExtension(60, server.disconnect, clock=clock)
            >>> session = server.create_session()
            >>> for _ in range(4):  # heartbeats only: idle
            ...     clock.now += 25
            ...     _ = idle.incoming(session, {"channel": "/meta/connect"})
            >>> session.ended
            <Ended.KICKED: 'kicked'>
        """
        if session is None or session.local or session.remote or session.ended is not None:
            # Server-side sessions never idle out; a view of a session another process serves
            # (--redis) is that process's to judge.
            return True
        now = self._clock()
        last = self._last.get(session.id)
        if last is None:
            last = self._watch(session, now)
        if message["channel"] != ch.META_CONNECT:
            self._last[session.id] = now
        elif now - last > self.max_inactivity:
            log.info(
                "session %s idle for %.0f s: disconnected",
                session.tag,
                now - last,
                extra={"event": "inactive", "session": session.tag},
            )
            self._last.pop(session.id, None)
            self._disconnect(session)
        return True

    def outgoing(self, session: ServerSession | None, message: Message) -> bool:
        """At a successful handshake's reply, starts watching the new session: its clock
        starts then, and with `Activity.CLIENT_SERVER` the batches the server sends it count
        as activity (`ServerSession.on_dequeue`: seen once per batch, whatever it holds).

        Examples:
            >>> from bayeux.testing import ManualClock
            >>> clock = ManualClock()
            >>> both = ActivityExtension(60, server.disconnect, clock=clock,
            ...                          activity=Activity.CLIENT_SERVER)
            >>> session = server.create_session()
            >>> both.outgoing(session, {"channel": "/meta/handshake", "successful": True})
            True
            >>> clock.now += 50
            >>> session.deliver("/alerts", "ping")
            >>> _ = session.drain()  # sent to its client
            >>> clock.now += 50
            >>> _ = both.incoming(session, {"channel": "/meta/connect"})
            >>> print(session.ended)
            None
        """
        if (
            session is not None
            and message["channel"] == ch.META_HANDSHAKE
            and message.get("successful") is True
            and session.id not in self._last
        ):
            self._watch(session, self._clock())
        return True

    def _watch(self, session: ServerSession, now: float) -> float:
        """Starts keeping `session`'s time (this process never saw it: just made, or served
        here since a moment ago)."""
        self._last[session.id] = now
        if self.activity is Activity.CLIENT_SERVER:
            session.on_dequeue(self._sent)
        return now

    def _sent(self, session: ServerSession, deliveries: list[Delivery]) -> None:
        if deliveries and session.id in self._last:
            self._last[session.id] = self._clock()

    def forget(self, session: ServerSession, reason: Ended | None = None) -> None:
        """Drops what it keeps of `session` (a session-removed listener).

        Examples:
            >>> idle = ActivityExtension(60, server.disconnect, clock=lambda: 0.0)
            >>> session = server.create_session()
            >>> _ = idle.incoming(session, {"channel": "/chat/room", "data": "hi"})
            >>> idle.forget(session)
            >>> idle.tracked
            0
        """
        self._last.pop(session.id, None)

    @property
    def tracked(self) -> int:
        """How many sessions it keeps a time for.

        Examples:
            >>> ActivityExtension(60, server.disconnect, clock=lambda: 0.0).tracked
            0
        """
        return len(self._last)
