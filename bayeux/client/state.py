"""The client's connection states and the transitions between them, as data (in the manner of
h11's state machine): `Client` moves through them, the transports only carry bytes.

    NEW ──open()──▶ HANDSHAKING ──handshake ok──▶ CONNECTED ◀──connect ok── DISCONNECTED
                         │                        │    ▲                    ▲      │
                  refused or unreachable    402,  │    │ handshake ok,      │      │ 402, advice
                         ▼                  advice│    │ subscriptions      │      │ handshake
                       CLOSED          handshake  ▼    │ restored      connect or  ▼
                                              REHANDSHAKING             send failed
                                                                   (from CONNECTED)

Every state but CLOSED may also go to CLOSED (`disconnect()`, advice `reconnect: none`, a
refused handshake). Messages queued by the application are sent only in CONNECTED; in the
other states they are held (at most `max_pending`, for at most `hold_timeout` seconds).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum


class State(StrEnum):
    """Where a client is. The values are strings, so `client.state == "closed"` holds too.

    - NEW: made, not opened.
    - HANDSHAKING: `open()` is handshaking.
    - CONNECTED: a session; queued messages are sent.
    - DISCONNECTED: a connect or a send failed (the server is unreachable, or the WebSocket
      closed): the session may still be alive on the server; messages are held while the client
      retries, backing off.
    - REHANDSHAKING: the server forgot the session (402, or advice `reconnect: handshake`): a
      new handshake, then every subscription again; messages are held meanwhile.
    - CLOSED: for good (`disconnect()`, advice `reconnect: none`, a refused handshake).

    Examples:
        >>> from bayeux.client import TRANSITIONS, State, SyncClient
        >>> from bayeux.testing import ServerThread
        >>> with ServerThread() as running, SyncClient(running.url) as client:
        ...     client.state is State.CONNECTED, client.state == "connected"
        (True, True)
        >>> sorted(TRANSITIONS[State.CONNECTED])
        [<State.CLOSED: 'closed'>, <State.DISCONNECTED: 'disconnected'>,
         <State.REHANDSHAKING: 'rehandshaking'>]

    Added in version 0.3.0."""

    NEW = "new"
    HANDSHAKING = "handshaking"
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    REHANDSHAKING = "rehandshaking"
    CLOSED = "closed"


# Every move a client may make; any other is a bug in the client (InvalidTransition).
TRANSITIONS: Mapping[State, frozenset[State]] = {
    State.NEW: frozenset({State.HANDSHAKING, State.CLOSED}),
    State.HANDSHAKING: frozenset({State.CONNECTED, State.CLOSED}),
    State.CONNECTED: frozenset({State.DISCONNECTED, State.REHANDSHAKING, State.CLOSED}),
    State.DISCONNECTED: frozenset({State.CONNECTED, State.REHANDSHAKING, State.CLOSED}),
    State.REHANDSHAKING: frozenset({State.CONNECTED, State.CLOSED}),
    State.CLOSED: frozenset(),
}

# States in which the application's queued messages go out.
SENDING = frozenset({State.CONNECTED})
# States whose messages wait no longer: sent (CONNECTED) or failed (CLOSED).
SETTLED = frozenset({State.CONNECTED, State.CLOSED})


class InvalidTransition(RuntimeError):
    """A move that TRANSITIONS does not allow: a bug in the client."""


class StateMachine:
    """The current state, moved only along TRANSITIONS."""

    def __init__(self) -> None:
        self.state = State.NEW

    def move(self, new: State) -> State | None:
        """Moves to `new`; the state left, or None when already in `new` (nothing happened).

        Raises:
            InvalidTransition: TRANSITIONS has no such move.
        """
        old = self.state
        if new == old:
            return None
        if new not in TRANSITIONS[old]:
            raise InvalidTransition(f"{old.name} -> {new.name}")
        self.state = new
        return old
