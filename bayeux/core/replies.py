"""Checks of what a message carries, and the replies that refuse it: shared by the meta
channels, publishing and the engine bridge so that an error reads the same wherever it is made.
"""

from __future__ import annotations

import re
from typing import Any

from .message import (
    MAX_SAFE_INTEGER,
    Message,
    error,
    ext_of,
    integer_in,
    non_json_value,
    number_in,
    reply_to,
    valid_id,
)


def failure(message: Message, text: str, advice: dict[str, Any] | None = None) -> Message:
    reply = reply_to(message)
    reply["successful"] = False
    reply["error"] = text
    if advice is not None:
        reply["advice"] = dict(advice)
    return reply


# The advice of a refusal: do not come back; or come back with a new handshake.
NO_RECONNECT = {"reconnect": "none", "interval": 0}
HANDSHAKE_AGAIN = {"reconnect": "handshake", "interval": 0}


# clientIds as new_client_id makes them: anything else is unknown without asking the engine.
CLIENT_ID = re.compile(r"[0-9a-f]{40}\Z")
# A batch refused because its address already has as many messages (or bytes) waiting on
# hooks as it may (BayeuxServer.handle).
TOO_MANY_WAITING = (
    error(503, "", "Too many messages waiting"),
    {"reconnect": "retry", "interval": 1000},
)
ENGINE_UNAVAILABLE = (
    error(503, "", "Session store unavailable"),
    {"reconnect": "retry", "interval": 1000},
)


def replay_asks(message: Message, patterns: list[str]) -> dict[str, int]:
    """The replay ids a subscribe asks for (already checked), by channel."""
    asked = ext_of(message).get("replay")
    if not isinstance(asked, dict):
        return {}
    return {p: asked[p] for p in patterns if isinstance(asked.get(p), int)}


def asks_replay(message: Message) -> bool:
    return isinstance(ext_of(message).get("replay"), dict)


def unknown_client(message: Message) -> Message:
    return failure(message, error(402, "", "Unknown client"), HANDSHAKE_AGAIN)


MAX_MS = 2**31 - 1  # the longest duration a client may advise, ~24.8 days


def field_problem(message: Message) -> str | None:
    """Type and range errors in the fields every message may carry, numbers included: each
    number from the wire is finite, non-negative where it is a duration, and bounded."""
    # Every message is checked: each field is looked at only when present
    # (benchmarks/exchange.py).
    if "id" in message and not valid_id(message["id"]):
        return error(400, "id", "Invalid field")
    if "clientId" in message and not isinstance(message["clientId"], str):
        return error(400, "clientId", "Invalid field")
    ext = message.get("ext")
    if (ext is not None or "ext" in message) and not isinstance(ext, dict):
        return error(400, "ext", "Invalid field")
    advice = message.get("advice")
    if (advice is not None or "advice" in message) and not isinstance(advice, dict):
        return error(400, "advice", "Invalid field")
    if advice:
        for name in ("timeout", "interval"):
            if name in advice and not number_in(advice[name], 0, MAX_MS):
                return error(400, f"advice.{name}", "Invalid field")
    if not ext:
        return None
    if "ack" in ext and not (
        isinstance(ext["ack"], bool) or integer_in(ext["ack"], -1, MAX_SAFE_INTEGER)
    ):
        return error(400, "ext.ack", "Invalid field")
    if "timesync" in ext:
        sync = ext["timesync"]
        if not isinstance(sync, dict) or not all(
            number_in(sync[k], -MAX_SAFE_INTEGER, MAX_SAFE_INTEGER)
            for k in ("tc", "l", "o")
            if k in sync
        ):
            return error(400, "ext.timesync", "Invalid field")
    return None


def non_json_problem(message: Message) -> str | None:
    """For binary formats: the first field holding a value JSON cannot (see non_json_value)."""
    for name, value in message.items():
        if non_json_value(value):
            return error(400, name, "Not representable as JSON")
    return None
