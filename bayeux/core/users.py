"""Users: an application's own ids for the people behind sessions (BayeuxServer.associate), as
CometD's Seti has them. A user may have several sessions (tabs, devices), served by any
process; the server reaches all of them (`deliver_to_user`) and tells presence listeners when
a user's first session appears and when its last one ends, once for the whole deployment.

This module keeps which of this process's sessions belong to which user; with an engine, the
deployment's view (which sessions, who is online) is the engine's.
"""

from __future__ import annotations

from .session import ServerSession

MAX_USER_ID = 256


class TooManySessions(ValueError):
    """`BayeuxServer.associate` refused: the user already has `limit` sessions in the deployment
    (`max_sessions_per_user`). Nothing changed: the session keeps the user it had, if any.
    Raised from a policy's `can_handshake`, it refuses the handshake with
    `403::Too many sessions for this user`.

    Examples:
        >>> from bayeux.client import SyncClient
        >>> from bayeux.testing import ServerThread
        >>> class Alice(SecurityPolicy):  # every session is alice's, one at a time
        ...     async def can_handshake(self, session, message):
        ...         await server.associate("alice", session)  # raises TooManySessions
        ...         return True
        >>> server = BayeuxServer(Settings(max_sessions_per_user=1), policy=Alice())
        >>> with ServerThread(endpoint=Endpoint(server=server)) as running:
        ...     with SyncClient(running.url):  # alice's first tab
        ...         SyncClient(running.url).open()  # and her second
        Traceback (most recent call last):
        ...
        bayeux.client.errors.BayeuxError: 403::Too many sessions for this user

    Added in version 0.3.0."""

    def __init__(self, user: str, limit: int) -> None:
        super().__init__(f"user {user!r} already has {limit} sessions (max_sessions_per_user)")
        self.user = user
        self.limit = limit


def check_user(user: object) -> str:
    """`user` if it is a valid user id (1 to 256 printable characters), else ValueError."""
    if not isinstance(user, str) or not 0 < len(user) <= MAX_USER_ID or not user.isprintable():
        raise ValueError(f"a user id is 1 to {MAX_USER_ID} printable characters, not {user!r}")
    return user


class Users:
    """The users of this process's sessions."""

    def __init__(self) -> None:
        self._sessions: dict[str, set[ServerSession]] = {}

    def add(self, user: str, session: ServerSession) -> bool:
        """Records `session` as `user`'s; True if it is the user's first here."""
        sessions = self._sessions.setdefault(user, set())
        sessions.add(session)
        return len(sessions) == 1

    def discard(self, user: str, session: ServerSession) -> bool:
        """Forgets `session` as `user`'s; True if it was the user's last here."""
        sessions = self._sessions.get(user)
        if sessions is None or session not in sessions:
            return False
        sessions.discard(session)
        if sessions:
            return False
        del self._sessions[user]
        return True

    def count(self, user: str) -> int:
        """How many of this process's sessions are `user`'s."""
        return len(self._sessions.get(user, ()))

    def check_room(self, user: str, limit: int) -> None:
        """Raises TooManySessions if `user` has `limit` sessions here already (-1: no limit)."""
        if limit != -1 and self.count(user) >= limit:
            raise TooManySessions(user, limit)

    def sessions_of(self, user: str) -> list[ServerSession]:
        return list(self._sessions.get(user, ()))

    def online(self, limit: int) -> list[str]:
        """At most `limit` users with a session here."""
        return [user for user, _ in zip(self._sessions, range(limit), strict=False)]

    def __len__(self) -> int:
        return len(self._sessions)
