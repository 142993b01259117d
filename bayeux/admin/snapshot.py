"""What one process says of itself to the admin page, read from the server's state, and how
the answers of several processes make one.

Every answer is bounded: a page of sessions or channels is at most `MAX_LIMIT` rows however
many there are, chosen in one pass over the process's sessions (or subscriptions) that keeps
no more than the page in hand (`heapq.nsmallest`). Listing a million sessions walks a million
sessions, and holds a page of them.
"""

from __future__ import annotations

import heapq
import os
import socket
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from ..core.engine import Engine
from ..core.server import BayeuxServer
from ..core.session import ServerSession
from .counting import Sampler

MAX_LIMIT = 100
# A session row's sort key: deepest queue first (then by clientId), or by clientId.
SORTS = ("queue", "id")
CHANNEL_SORTS = ("subscribers", "rate")


class Observed(Protocol):
    """What the admin page reads of an endpoint (bayeux.Endpoint is one)."""

    server: BayeuxServer
    connections: int
    engine: Engine | None


@dataclass(frozen=True)
class Process:
    """One process of the deployment: its engine's name for it (the owner Redis records),
    and where it runs."""

    id: str
    host: str
    pid: int
    started: float

    @property
    def name(self) -> str:
        """How the page names it: host:pid."""
        return f"{self.host}:{self.pid}"

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "host": self.host,
            "pid": self.pid,
            "uptime": round(time.time() - self.started, 1),
        }


def this_process(engine: Engine | None) -> Process:
    me = getattr(engine, "me", None) if engine is not None and engine.shared else None
    pid = os.getpid()
    return Process(
        me if isinstance(me, str) else f"pid-{pid}", socket.gethostname(), pid, time.time()
    )


@dataclass(frozen=True)
class SessionQuery:
    q: str = ""
    sort: str = "queue"
    # The sort key of the last row of the previous page: rows come strictly after it.
    after: tuple[Any, ...] | None = None
    limit: int = 25


@dataclass(frozen=True)
class ChannelQuery:
    q: str = ""
    sort: str = "subscribers"
    limit: int = 25


# ------------------------------------------------------------------------------ one process


def overview(observed: Observed, sampler: Sampler, process: Process) -> dict[str, Any]:
    server = observed.server
    by_transport: Counter[str] = Counter()
    held = queued = queued_bytes = 0
    for session in server.sessions.values():
        by_transport[session.connection_type or "none"] += 1
        held += session.held is not None
        queued += len(session.queue)
        queued_bytes += session.queued_bytes()
    rates = sampler.rates
    return {
        "process": process.describe(),
        "sessions": len(server.sessions),
        "transports": dict(by_transport),
        "held": held,
        "connections": observed.connections,
        "queued_messages": queued,
        "queued_bytes": queued_bytes,
        "channels": sum(1 for _ in server.tree.patterns()),
        "users": len(server.users),
        "rates": rates.figures() if rates is not None else None,
    }


def session_key(session: ServerSession, sort: str) -> tuple[Any, ...]:
    if sort == "queue":
        return (-len(session.queue), session.id)
    return (session.id,)


def cursor_of(key: tuple[Any, ...], sort: str) -> str:
    """The `after` parameter that continues after a row of this key."""
    if sort == "queue":
        return f"{-key[0]}:{key[1]}"
    return str(key[0])


def session_rows(server: BayeuxServer, process: Process, query: SessionQuery) -> dict[str, Any]:
    needle = query.q.lower()
    matched = 0

    def candidates() -> Iterator[tuple[tuple[Any, ...], ServerSession]]:
        nonlocal matched
        for session in server.sessions.values():
            if needle and needle not in session.id and needle not in (session.user or "").lower():
                continue
            matched += 1
            key = session_key(session, query.sort)
            if query.after is None or key > query.after:
                yield key, session

    page = heapq.nsmallest(query.limit, candidates(), key=lambda pair: pair[0])
    return {
        "rows": [_row(session, key, process, query.sort) for key, session in page],
        "matched": matched,
    }


def _row(
    session: ServerSession, key: tuple[Any, ...], process: Process, sort: str
) -> dict[str, Any]:
    return {
        "clientId": session.id,
        "process": process.name,
        "transport": session.connection_type or "none",
        "state": session.state.value,
        "held": session.held is not None,
        "queue": len(session.queue),
        "bytes": session.queued_bytes(),
        "subscriptions": len(session.subscriptions),
        "user": session.user,
        "address": session.budget.key or None,
        # The server's own (a decorator's subscription): not the page's to end.
        "local": session.local,
        "cursor": cursor_of(key, sort),
    }


def channel_rows(server: BayeuxServer, sampler: Sampler, query: ChannelQuery) -> dict[str, Any]:
    tree = server.tree
    rates = sampler.rates.by_channel if sampler.rates is not None else {}
    needle = query.q.lower()
    patterns = 0

    def candidates() -> Iterator[tuple[str, int, float]]:
        nonlocal patterns
        for name in tree.patterns():
            patterns += 1
            if not needle or needle in name.lower():
                yield name, tree.count(name), rates.get(name, 0.0)
        for name, rate in rates.items():
            if not tree.has(name) and (not needle or needle in name.lower()):
                yield name, 0, rate

    page = heapq.nsmallest(query.limit, candidates(), key=_channel_key(query.sort))
    return {
        "rows": [
            {"channel": name, "subscribers": count, "rate": round(rate, 3)}
            for name, count, rate in page
        ],
        "patterns": patterns,
    }


def _channel_key(sort: str) -> Any:
    if sort == "rate":
        return lambda row: (-row[2], -row[1], row[0])
    return lambda row: (-row[1], -row[2], row[0])


# ------------------------------------------------------------------ several processes' answers


def merge_overviews(answers: Iterable[dict[str, Any]]) -> dict[str, Any]:
    processes = []
    transports: Counter[str] = Counter()
    totals = dict.fromkeys(
        ("sessions", "held", "connections", "queued_messages", "queued_bytes", "channels"), 0
    )
    rates: dict[str, float] | None = None
    for answer in answers:
        processes.append(
            {
                **answer["process"],
                "sessions": answer["sessions"],
                "transports": answer["transports"],
                "rates": answer["rates"],
                "connections": answer["connections"],
            }
        )
        transports.update(answer["transports"])
        for name in totals:
            totals[name] += answer[name]
        if answer["rates"] is not None:
            rates = rates or dict.fromkeys(answer["rates"], 0.0)
            for name, value in answer["rates"].items():
                rates[name] = round(rates.get(name, 0.0) + value, 3)
    processes.sort(key=lambda p: p["name"])
    return {
        **totals,
        "transports": dict(transports),
        "rates": rates,
        "processes": processes,
    }


def merge_sessions(answers: Iterable[dict[str, Any]], query: SessionQuery) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    matched = 0
    more = False
    for answer in answers:
        rows.extend(answer["rows"])
        matched += answer["matched"]
        more = more or len(answer["rows"]) >= query.limit
    if query.sort == "queue":
        rows.sort(key=lambda row: (-row["queue"], row["clientId"]))
    else:
        rows.sort(key=lambda row: row["clientId"])
    page = rows[: query.limit]
    more = more or len(rows) > query.limit
    return {
        "sessions": page,
        "matched": matched,
        "next": page[-1]["cursor"] if page and more else None,
    }


def merge_channels(answers: Iterable[dict[str, Any]], query: ChannelQuery) -> dict[str, Any]:
    subscribers: Counter[str] = Counter()
    rates: dict[str, float] = {}
    patterns = 0
    for answer in answers:
        patterns += answer["patterns"]
        for row in answer["rows"]:
            subscribers[row["channel"]] += row["subscribers"]
            rates[row["channel"]] = rates.get(row["channel"], 0.0) + row["rate"]
    rows = [(name, subscribers[name], rates[name]) for name in rates]
    page = heapq.nsmallest(query.limit, rows, key=_channel_key(query.sort))
    return {
        "channels": [
            {"channel": name, "subscribers": count, "rate": round(rate, 3)}
            for name, count, rate in page
        ],
        "patterns": patterns,
    }
