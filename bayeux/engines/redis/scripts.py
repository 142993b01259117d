"""Lua scripts: each change of a session's ownership happens in one atomic step in Redis, so
two processes claiming one session at once cannot both get it.

Key names beyond KEYS are built from the prefix inside the scripts: the engine runs on one
Redis (or one Sentinel-managed primary), not on Redis Cluster.
"""

from __future__ import annotations

from importlib import resources

# Scripts that start with the shared resolve_floor function (lua/resolve_floor.lua), and those
# that start with leave_user (lua/leave_user.lua).
_WITH_FLOOR = frozenset(("CLAIM", "RELEASE", "SAVE"))
_WITH_USERS = frozenset(("END", "REAP", "USER_LEAVE"))


def _source(name: str) -> str:
    return resources.files(__package__).joinpath("lua", f"{name}.lua").read_text()


def script(name: str) -> str:
    """The Lua source of script `name` (one of NAMES); each file in lua/ says what its KEYS and
    ARGV are and what it returns."""
    body = _source(name.lower())
    if name in _WITH_USERS:
        body = _source("leave_user") + body
    return _source("resolve_floor") + body if name in _WITH_FLOOR else body


NAMES = (
    "CLAIM",
    "RELEASE",
    "SAVE",
    "END",
    "REAP",
    "SUBSCRIBE",
    "RESUBSCRIBE",
    "APPEND",
    "TIMING",
    "ATTRIBUTES",
    "USER_JOIN",
    "USER_LEAVE",
    "USER_DELIVER",
)
