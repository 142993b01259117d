"""The admin page's JSON API: what the page polls and the two things it can do. Every request
is authenticated first (site.py); what follows here is checked strictly, and refused with 400
rather than guessed at: unknown or repeated parameters, limits out of range, cursors of another
form, bodies that are not one JSON object of the expected fields.

- GET overview: sessions by transport and by process, connections, queues, users online, the
  rates of handshakes, connects, publishes and deliveries.
- GET sessions?q=&sort=queue|id&after=&limit=: a page of sessions, the deepest queues first
  (or by clientId), `next` continuing after it.
- GET channels?q=&sort=subscribers|rate&limit=: the busiest channels.
- GET users?limit=: users online.
- POST disconnect {"clientId": ...}: ends a session and tells its client to stop, whichever
  process serves it (404 if none does).
- POST publish {"channel": ..., "data": ...}: publishes a message from the server side.

With Redis, each GET asks every process of the deployment (deployment.py) and merges their
answers; the answer says how many of how many processes answered.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

from ..core import channel as ch
from ..core.engine import EngineUnavailable
from ..core.replies import CLIENT_ID
from ..strictjson import loads
from .counting import Sampler
from .deployment import Deployment, DeploymentUnavailable, Gathered
from .snapshot import (
    CHANNEL_SORTS,
    MAX_LIMIT,
    SORTS,
    ChannelQuery,
    Observed,
    Process,
    SessionQuery,
    channel_rows,
    merge_channels,
    merge_overviews,
    merge_sessions,
    overview,
    session_rows,
    this_process,
)

log = logging.getLogger("bayeux.admin")

MAX_QUERY = 1024
MAX_BODY = 16 * 1024
MAX_SEARCH = 100
MAX_USERS = 100


class BadRequest(ValueError):
    """A request the API refuses: its status and why."""

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.status = status


def parameters(query: str, allowed: tuple[str, ...]) -> dict[str, str]:
    """A query string's parameters, each given at most once and each one of `allowed`."""
    if len(query) > MAX_QUERY:
        raise BadRequest("query string too long")
    try:
        parsed = parse_qs(query, keep_blank_values=True, strict_parsing=False, max_num_fields=8)
    except ValueError:
        raise BadRequest("too many parameters") from None
    params: dict[str, str] = {}
    for name, values in parsed.items():
        if name not in allowed:
            raise BadRequest(f"unknown parameter {name[:40]!r}")
        if len(values) != 1:
            raise BadRequest(f"{name} given more than once")
        params[name] = values[0]
    return params


def _limit(params: Mapping[str, Any], default: int = 25, most: int = MAX_LIMIT) -> int:
    text = params.get("limit")
    if text is None:
        return default
    if not isinstance(text, str) or not text.isdigit() or not text.isascii() or len(text) > 4:
        raise BadRequest(f"limit must be an integer from 1 to {most}")
    limit = int(text)
    if not 0 < limit <= most:
        raise BadRequest(f"limit must be an integer from 1 to {most}")
    return limit


def _search(params: Mapping[str, Any]) -> str:
    q = params.get("q", "")
    if not isinstance(q, str) or len(q) > MAX_SEARCH or not q.isprintable():
        raise BadRequest(f"q must be at most {MAX_SEARCH} printable characters")
    return q


def _choice(params: Mapping[str, Any], name: str, choices: tuple[str, ...]) -> str:
    value = params.get(name, choices[0])
    if value not in choices:
        raise BadRequest(f"{name} must be one of {', '.join(choices)}")
    return str(value)


def session_query(params: Mapping[str, Any]) -> SessionQuery:
    sort = _choice(params, "sort", SORTS)
    after: tuple[Any, ...] | None = None
    cursor = params.get("after")
    if cursor is not None and cursor != "":
        if not isinstance(cursor, str):
            raise BadRequest("after must be the cursor of a row")
        if sort == "queue":
            depth, _, client_id = cursor.partition(":")
            if not depth.isdigit() or not depth.isascii() or len(depth) > 10:
                raise BadRequest("after must be the cursor of a row")
            after = (-int(depth), _client_id(client_id, "after"))
        else:
            after = (_client_id(cursor, "after"),)
    return SessionQuery(_search(params), sort, after, _limit(params))


def channel_query(params: Mapping[str, Any]) -> ChannelQuery:
    return ChannelQuery(_search(params), _choice(params, "sort", CHANNEL_SORTS), _limit(params))


def _client_id(value: object, name: str) -> str:
    if not isinstance(value, str) or CLIENT_ID.match(value) is None:
        raise BadRequest(f"{name} is not a clientId")
    return value


def json_body(body: bytes, fields: tuple[str, ...]) -> dict[str, Any]:
    """A POST's body: one JSON object with exactly `fields`."""
    if len(body) > MAX_BODY:
        raise BadRequest("body too large", 413)
    try:
        value = loads(body.decode("utf-8"), max_bytes=MAX_BODY)
    except (UnicodeDecodeError, ValueError):
        raise BadRequest("the body is not JSON") from None
    if not isinstance(value, dict) or set(value) != set(fields):
        raise BadRequest(f"the body must be a JSON object with {', '.join(fields)}")
    return value


class AdminApi:
    """The API's answers, for one endpoint (and, through `deployment`, every process)."""

    def __init__(
        self, observed: Observed, sampler: Sampler, deployment: Deployment | None = None
    ) -> None:
        self.observed = observed
        self.sampler = sampler
        self.deployment = deployment
        self.process: Process = (
            deployment.process if deployment is not None else this_process(observed.engine)
        )
        # What this process answers, asked by the page or, with Redis, by another process.
        self._answers = {
            "overview": self._overview,
            "sessions": self._sessions,
            "channels": self._channels,
        }
        if deployment is not None:
            deployment.handlers.update(self._answers)

    # -------------------------------------------------- one process's answers (asked too)

    def _overview(self, params: dict[str, Any]) -> dict[str, Any]:
        self.sampler.watch()
        return overview(self.observed, self.sampler, self.process)

    def _sessions(self, params: dict[str, Any]) -> dict[str, Any]:
        self.sampler.watch()
        return session_rows(self.observed.server, self.process, session_query(params))

    def _channels(self, params: dict[str, Any]) -> dict[str, Any]:
        self.sampler.watch()
        return channel_rows(self.observed.server, self.sampler, channel_query(params))

    async def _gather(self, kind: str, params: dict[str, Any]) -> Gathered:
        if self.deployment is None:
            answer = self._answers[kind](params)
            return Gathered([answer], 1, [self.process.id], reached=True)
        return await self.deployment.ask(kind, params)

    @staticmethod
    def _asked(gathered: Gathered) -> dict[str, Any]:
        return {"asked": gathered.asked, "answered": gathered.answered, "reached": gathered.reached}

    # ------------------------------------------------------------------------ the API

    async def overview(self, params: dict[str, str]) -> dict[str, Any]:
        gathered = await self._gather("overview", {})
        merged = merge_overviews(gathered.answers)
        merged["users"] = await self._users_online(gathered)
        merged["engine"] = "redis" if self.deployment is not None else "memory"
        merged["deployment"] = self._asked(gathered)
        merged["transports_offered"] = list(self.observed.server.settings.allowed_transports)
        return merged

    async def _users_online(self, gathered: Gathered) -> int:
        if self.deployment is None:
            return len(self.observed.server.users)
        try:
            return await self.deployment.users_online()
        except DeploymentUnavailable:
            return sum(answer["users"] for answer in gathered.answers)

    async def sessions(self, params: dict[str, str]) -> dict[str, Any]:
        query = session_query(params)
        gathered = await self._gather("sessions", params)
        merged = merge_sessions(gathered.answers, query)
        merged["deployment"] = self._asked(gathered)
        return merged

    async def channels(self, params: dict[str, str]) -> dict[str, Any]:
        query = channel_query(params)
        gathered = await self._gather("channels", params)
        merged = merge_channels(gathered.answers, query)
        if self.deployment is not None and gathered.reached:
            await self._exact_subscribers(merged["channels"])
        merged["deployment"] = self._asked(gathered)
        return merged

    async def _exact_subscribers(self, rows: list[dict[str, Any]]) -> None:
        """The deployment's own count of each listed channel's subscribers (each process
        listed only its busiest channels: a sum of theirs may miss some)."""
        engine = self.observed.server.engine
        counted = await asyncio.gather(
            *(engine.channel_subscribers(row["channel"], 1) for row in rows),
            return_exceptions=True,
        )
        for row, count in zip(rows, counted, strict=True):
            if isinstance(count, tuple):
                row["subscribers"] = count[0]

    async def users(self, params: dict[str, str]) -> dict[str, Any]:
        limit = _limit(params, default=50, most=MAX_USERS)
        server = self.observed.server
        try:
            names = await server.online_users(limit)
            count = (
                await self.deployment.users_online()
                if self.deployment is not None
                else len(server.users)
            )
        except (EngineUnavailable, DeploymentUnavailable):
            raise BadRequest("the deployment cannot be reached", 503) from None
        return {"count": count, "users": sorted(names)}

    async def disconnect(self, body: bytes) -> dict[str, Any]:
        client_id = _client_id(json_body(body, ("clientId",))["clientId"], "clientId")
        server = self.observed.server
        session = server.sessions.get(client_id)
        if session is not None and session.local:
            raise BadRequest("a session of the server itself (a subscription of the application)")
        if session is not None:
            server.disconnect(session)
            log.info("admin: a session was disconnected", extra={"event": "admin-disconnect"})
            return {"disconnected": True, "process": self.process.name}
        if not server.engine.shared:
            raise BadRequest("no such session", 404)
        try:
            record = await server.engine.view(client_id)
            if record is None:
                raise BadRequest("no such session", 404)
            _, interval, max_interval = record.timing
            settings = server.settings
            stop_ms = (interval if interval is not None else settings.interval) + (
                max_interval if max_interval is not None else settings.max_interval
            )
            await server.engine.end(client_id, stop_ms)
        except EngineUnavailable:
            raise BadRequest("the deployment cannot be reached", 503) from None
        log.info("admin: a session was disconnected", extra={"event": "admin-disconnect"})
        return {"disconnected": True, "process": None}

    def publish(self, body: bytes) -> dict[str, Any]:
        fields = json_body(body, ("channel", "data"))
        channel = fields["channel"]
        server = self.observed.server
        if not server.channels.valid_name(channel) or not ch.is_broadcast(channel):
            raise BadRequest("channel must be a broadcast channel (not /meta or /service)")
        try:
            reached = server.publish(channel, fields["data"])
        except ValueError as exc:  # not representable, or refused by the server
            raise BadRequest(str(exc)[:200]) from None
        log.info("admin: a test message was published", extra={"event": "admin-publish"})
        return {"published": True, "reached": reached}
