"""The deployment's message log: one Redis Stream that every broadcast is written to once and
that every process reads in the same order.

Entries are broadcasts (`m`: the message as its subscribers receive it, already encoded),
subscription changes (`s`, written by scripts.SUBSCRIBE) and messages for one session (`t`,
from a process that does not serve it). In the log, each takes effect in order with the
broadcasts around it, in the process serving the session and in any that takes it over later.
"""

from __future__ import annotations

from collections.abc import Container
from typing import Any

import orjson

from ...core.engine import (
    LogEntry,
    LoggedDelivery,
    LoggedMessage,
    LoggedSubscription,
    position_of,
)
from ...core.message import Delivery

Fields = dict[bytes, bytes]


def broadcast_fields(
    delivery: Delivery, sender: str | None, origin: str, delivered: bool
) -> dict[str, bytes | str]:
    fields: dict[str, bytes | str] = {"m": delivery.json, "o": origin}
    if sender is not None:
        fields["x"] = sender
    if delivered:
        fields["d"] = "1"
    if delivery.lazy:
        fields["l"] = "1"
    return fields


def delivery_fields(client_id: str, delivery: Delivery) -> dict[str, bytes | str]:
    return {"t": client_id, "m": delivery.json}


def decode(
    stream_id: bytes,
    fields: Fields,
    me: str,
    only: str | None = None,
    served: Container[str] | None = None,
) -> LogEntry | None:
    """A log entry as the core takes it; None for what is not for `only` (when given: the
    one session being taken over), for a session not in `served` (when given: those this
    process serves; the others' subscription changes are not decoded at all), or what
    cannot be read (logged by the caller)."""
    position = position_of(stream_id)
    encoded = fields.get(b"m")
    target = fields.get(b"t")
    if encoded is not None and target is None:
        message = orjson.loads(encoded)
        sender = fields.get(b"x")
        delivered = fields.get(b"d") == b"1" and fields.get(b"o") == me.encode()
        delivery = _delivery(message, encoded, position)
        delivery.lazy = fields.get(b"l") == b"1"
        return LoggedMessage(
            position,
            delivery,
            sender.decode() if sender is not None else None,
            delivered,
            message,
        )
    client = (target or fields.get(b"s") or b"").decode()
    if not client or (only is not None and client != only):
        return None
    if served is not None and client not in served:
        return None
    if target is not None and encoded is not None:
        return LoggedDelivery(position, client, _delivery(orjson.loads(encoded), encoded, position))
    patterns: Any = orjson.loads(fields.get(b"p", b"[]"))
    replay: Any = orjson.loads(fields.get(b"r", b"{}"))
    if not isinstance(patterns, list) or not isinstance(replay, dict):
        return None
    return LoggedSubscription(
        position,
        client,
        [str(p) for p in patterns],
        fields.get(b"u") != b"1",
        {str(k): v for k, v in replay.items() if isinstance(v, int)},
    )


def _delivery(message: Any, encoded: bytes, position: int) -> Delivery:
    delivery = Delivery(message, encoded)
    delivery.position = position
    return delivery
