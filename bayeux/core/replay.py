"""Durable replay, as Salesforce Streaming API clients speak it: on the channels where it is on,
each published event gets an increasing replay id and a creation date, is kept for a while, and
a subscriber may ask for what it missed (`ext.replay: {"<channel>": <id>}` on /meta/subscribe):
-1 new events only, -2 everything retained, an id: everything after it.

The event a subscriber receives is shaped as Salesforce shapes it:
`{"event": {"replayId": 1732630000123, "createdDate": "2026-11-26T14:20:00.123Z"}, "payload": <the
published data>}`.

Replay ids start at the wall clock in milliseconds and then only grow, so ids of an earlier run of
the server are older than any of this one: a client that comes back with one is told it is no
longer retained (in-process history does not outlive the process) rather than silently getting
events that are not the ones after it.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from . import channel as ch
from .message import Message

NEW_ONLY = -1
ALL_RETAINED = -2


def invalid_replay_id(replay_id: Any) -> str:
    """The error text Salesforce sends (aiosfstream's replay fallback matches on it)."""
    return (
        f"400::The replayId {{{replay_id}}} you provided was invalid. Please provide a valid ID,"
        " -2 to replay all events, or -1 to replay only new events."
    )


@dataclass(slots=True)
class ReplayEvent:
    replay_id: int
    created: float  # wall-clock seconds
    message: Message  # as subscribers receive it
    # Its place in the engine's log (core/engine.py), 0 when not known.
    position: int = 0


@dataclass(slots=True)
class _ChannelHistory:
    events: deque[ReplayEvent] = field(default_factory=deque)
    # The id of the newest event no longer retained: ids below it cannot be resumed from.
    floor: int = 0


def replay_id_of(message: Message) -> int | None:
    """The replay id of a shaped event (`data.event.replayId`), if it has one."""
    data = message.get("data")
    event = data.get("event") if isinstance(data, dict) else None
    replay_id = event.get("replayId") if isinstance(event, dict) else None
    return replay_id if isinstance(replay_id, int) and not isinstance(replay_id, bool) else None


def _by_id(event: ReplayEvent) -> int:
    return event.replay_id


class ReplayHistory:
    """The events retained on replay channels, by count and by age, in publish order."""

    def __init__(
        self,
        patterns: tuple[str, ...],
        *,
        max_events: int,
        retention_seconds: float,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.patterns = patterns
        self.max_events = max_events
        self.retention_seconds = retention_seconds
        self.wall_clock = wall_clock
        self._channels: dict[str, _ChannelHistory] = {}
        self._last_id = int(wall_clock() * 1000) - 1
        # Ids at or below this one are from before this history existed.
        self.first_id = self._last_id + 1

    def covers(self, channel: str) -> bool:
        """Whether replay is on for `channel` (a channel name, not a pattern)."""
        return any(p == channel or ch.matches(p, channel) for p in self.patterns)

    def shape(self, message: Message) -> tuple[Message, int]:
        """A message published on a replay channel as subscribers receive it, with the next
        replay id and the date; `keep()` it once it is known to be deliverable."""
        now = self.wall_clock()
        replay_id = self._last_id = max(self._last_id + 1, int(now * 1000))
        created = datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds")
        shaped = dict(message)
        shaped["data"] = {
            "event": {"replayId": replay_id, "createdDate": created.replace("+00:00", "Z")},
            "payload": message.get("data"),
        }
        return shaped, replay_id

    def keep(
        self, shaped: Message, replay_id: int, created: float | None = None, position: int = 0
    ) -> None:
        """Keeps an event already shaped (by this process, or by another one of the
        deployment, whose ids it then follows); `position` is its place in the log."""
        self._last_id = max(self._last_id, replay_id)
        history = self._history(shaped["channel"])
        now = self.wall_clock() if created is None else created
        events = history.events
        if not events or events[-1].replay_id < replay_id:
            events.append(ReplayEvent(replay_id, now, shaped, position))
        elif all(e.replay_id != replay_id for e in events):
            # Another process's event that arrived late: in order all the same.
            ordered = sorted([*events, ReplayEvent(replay_id, now, shaped, position)], key=_by_id)
            history.events = deque(ordered)
        self._trim(history, self.wall_clock())

    def load(self, channel: str, events: list[ReplayEvent], floor: int | None) -> None:
        """Adds what a store kept (the Redis engine, at start): `floor` is the newest id the
        store no longer has, if it knows (else everything before its oldest is presumed
        gone)."""
        if not events and floor is None:
            return
        history = self._history(channel)
        known = {e.replay_id for e in history.events}
        merged = [*history.events, *(e for e in events if e.replay_id not in known)]
        history.events = deque(sorted(merged, key=_by_id))
        if floor is None:
            floor = events[0].replay_id - 1
        history.floor = floor
        if history.events:
            self._last_id = max(self._last_id, history.events[-1].replay_id)
        self._trim(history, self.wall_clock())

    def floor(self, channel: str) -> int:
        """The newest id on `channel` no longer retained (ids below it cannot be resumed)."""
        history = self._channels.get(channel)
        return history.floor if history is not None else self.first_id - 1

    def _history(self, channel: str) -> _ChannelHistory:
        history = self._channels.get(channel)
        if history is None:
            history = self._channels[channel] = _ChannelHistory(floor=self.first_id - 1)
        return history

    def _trim(self, history: _ChannelHistory, now: float) -> None:
        events = history.events
        oldest = now - self.retention_seconds
        while events and (len(events) > self.max_events or events[0].created < oldest):
            history.floor = events.popleft().replay_id

    def events(self, channel: str) -> list[ReplayEvent]:
        """What is retained on `channel`, oldest first (for an admin page or a test)."""
        history = self._channels.get(channel)
        if history is None:
            return []
        self._trim(history, self.wall_clock())
        return list(history.events)

    def after(self, channel: str, replay_id: int, before: int = 0) -> list[ReplayEvent] | None:
        """The events to replay to a subscriber asking for `replay_id` (-1, -2 or an id),
        oldest first; None when the id is not one it can resume from. With `before`, only
        those ahead of that log position (the subscription's own)."""
        if replay_id == NEW_ONLY:
            return []
        retained = self.events(channel)
        if before:
            retained = [e for e in retained if e.position < before]
        if replay_id == ALL_RETAINED:
            return retained
        floor = self.floor(channel)
        if replay_id < floor or replay_id > self._last_id or replay_id < 0:
            return None
        return [e for e in retained if e.replay_id > replay_id]
