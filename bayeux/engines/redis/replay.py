"""Replay events kept in Redis: a Stream per replay channel (ids are the replay ids) and, beside
it, the newest id no longer kept. A process that starts loads them, so a client that comes
back after a restart with its last replay id gets what it missed (core/replay.py)."""

from __future__ import annotations

import logging
from typing import Any

import orjson

from ...core.message import Delivery
from ...core.replay import ReplayEvent, ReplayHistory, replay_id_of
from .keys import Keys

log = logging.getLogger("bayeux.redis")


def add_event(pipe: Any, keys: Keys, channel: str, replay_id: int, encoded: bytes) -> None:
    """Adds to `pipe` the command keeping one replay event (its stream id is its replay id:
    Redis refuses one below the newest, from a clock behind)."""
    pipe.xadd(keys.replay(channel), {"m": encoded}, id=f"{replay_id}-0")


class ReplayStore:
    def __init__(self, keys: Keys, history: ReplayHistory) -> None:
        self.keys = keys
        self.history = history

    def wanted(self, delivery: Delivery) -> bool:
        """Whether `delivery` is a replay event to keep."""
        if not self.history.covers(delivery.channel):
            return False  # decided without decoding it
        message = delivery.message
        return replay_id_of(message) is not None and self.history.covers(message["channel"])

    def add(self, pipe: Any, deliveries: list[Delivery]) -> None:
        """Adds to `pipe` the commands keeping the replay events among `deliveries`."""
        kept: set[str] = set()
        for delivery in deliveries:
            if not self.history.covers(delivery.channel):
                continue
            message = delivery.message
            replay_id = replay_id_of(message)
            if replay_id is None or not self.history.covers(message["channel"]):
                continue
            channel = message["channel"]
            add_event(pipe, self.keys, channel, replay_id, delivery.json)
            kept.add(channel)
        for channel in kept:
            floor = self.history.floor(channel)
            pipe.set(self.keys.replay_floor(channel), floor)
            pipe.xtrim(self.keys.replay(channel), minid=f"{floor + 1}-0", approximate=False)

    async def load(self, client: Any) -> None:
        """Loads the replay events Redis keeps into this process's history."""
        prefix = self.keys.replay("")
        async for key in client.scan_iter(match=prefix + "*"):
            channel = key.decode()[len(prefix) :]
            entries = await client.xrevrange(key, count=self.history.max_events)
            floor = await client.get(self.keys.replay_floor(channel))
            events = []
            for stream_id, fields in reversed(entries):
                message = orjson.loads(fields[b"m"])
                replay_id = replay_id_of(message)
                if replay_id is not None:
                    created = int(stream_id.split(b"-")[0]) / 1000
                    events.append(ReplayEvent(replay_id, created, message))
            self.history.load(channel, events, int(floor) if floor is not None else None)
            log.info("loaded %d replay events of %s from redis", len(events), channel)
