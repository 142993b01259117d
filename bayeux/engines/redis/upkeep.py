"""Upkeep: every sync_interval the alive key is renewed and positions saved (the floor, and
the records that changed); orphans reaped, the log trimmed; after an outage, records written
again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from ...core.engine import (
    EngineUnavailable,
    position_of,
    stream_id_of,
)
from ...core.session import ServerSession
from .base import _now_ms, log
from .handoff import Handoff
from .records import (
    Saved,
    held_floor,
    record_of,
    saved_state,
)

# A process says it is alive for this many times its loop's recent lateness at least (and at
# most MAX_ALIVE_MS): with its alive key living 3 s, a worker whose loop ran 3 to 5 s late
# under load was taken for dead by the others, which made orphans of its 17,000 sessions and,
# when it was late again 10 s later, forgot some of them while it served them (a publish then
# got 402 Unknown client: benchmarks/scale.py, 100,000 clients over 6 workers).
LAG_MARGIN = 3.0
MAX_ALIVE_MS = 30_000
# How fast the lateness remembered fades, a tick (about a minute to a third at 4 ticks a s).
LAG_DECAY = 0.995


def alive_for(base_ms: int, lag: float) -> int:
    """How long this process's alive key lives when renewed, its loop `lag` seconds late."""
    return max(base_ms, min(MAX_ALIVE_MS, int(lag * LAG_MARGIN * 1000)))


# Sessions one SAVE script, or one pipeline writing records again, carries at most: each is
# one command within the command timeout, and Redis runs it without holding up the rest for
# long. With 100,000 sessions over 6 processes, a process back from a Redis timeout saved and
# wrote again all of its 17,000 records in one script and one pipeline: they outlasted the
# command timeout, the engine took Redis for lost again, and began again at the next tick,
# for good (805,000 commands in 15 idle seconds, and a loop stopped 892 ms of CPU at a time
# building them; benchmarks/scale.py).
SAVE_CHUNK = 1000
# Sessions whose queue the save looks at a loop turn when the log moved on (`_to_visit`).
SCAN_SLICE = 5000


class Upkeep(Handoff):
    """Keeps this process's part of the deployment's state current."""

    async def _keep(self) -> None:
        """Every sync_interval: says this process is alive, saves changed positions; now and
        then reaps orphans and trims the log by age."""
        assert self._server is not None
        ticks = 0
        everything = True
        loop = asyncio.get_running_loop()
        last_tick = loop.time()
        lag = 0.0
        while True:
            # How late this tick came: a process whose loop runs late (under load, a long
            # collection) says it is alive for longer, so that the others do not take it for
            # dead between two of its ticks (`alive_for`).
            now = loop.time()
            lag = max(now - last_tick - self.sync_interval, lag * LAG_DECAY)
            last_tick = now
            alive_ms = alive_for(self._alive_ms, lag)
            try:
                if self.available and not self._reconcile:
                    # The usual tick: one script saves and says this process is alive.
                    renewed = False
                    try:
                        await self._send_outbox()  # no command when empty, as it is here
                        renewed = await self._save(everything=False, alive_ms=alive_ms)
                    finally:
                        if not renewed and self.available:
                            # Redis is there but the save failed (a refused script, a bug):
                            # alive all the same, or others would take this process's
                            # sessions for a dead one's while it serves them.
                            await self._command(self._say_alive(alive_ms))
                else:
                    # Redis lost or just back: the plain write tells whether it is there.
                    await self._command(self._say_alive(alive_ms), mark=False)
                    if not self.available:
                        everything = not await self._kept()
                        self.available = True
                        self._reconcile = True
                        log.info("redis engine connected to %s", self.url)
                        await self._command(
                            self._client.hset(self.keys.config, mapping=self._config())
                        )
                    if everything:
                        await self._save(everything=True)
                        self._unsynced.clear()
                    else:
                        await self._recreate(list(self._unsynced))
                        await self._save(everything=False)
                    self._reconcile = False
                    await self._send_outbox()
                if ticks % max(1, int(2 / self.sync_interval)) == 0:
                    await self._upkeep()
            except EngineUnavailable:
                pass
            except Exception:  # the upkeep must go on whatever happens
                log.exception("redis engine upkeep failed")
            ticks += 1
            await asyncio.sleep(self.sync_interval)

    async def _kept(self) -> bool:
        """Whether Redis, reached again, still has what this process wrote: the same server
        (its run id: not restarted, not a promoted replica) and this process's floor there
        (it outlives an outage of maxInterval plus a minute). Then only the records that
        missed a change (`_unsynced`) are written again: a process back from a command
        timeout (its own loop late under load, as often as Redis away) wrote every record
        it had again, and at 17,000 sessions that load brought the next timeout on."""
        try:
            server = await self._command(self._client.info("server"), mark=False)
            run_id = server.get("run_id")
            floor = await self._command(self._client.exists(self.keys.floor(self.me)), mark=False)
        except EngineUnavailable:
            return False
        kept = bool(run_id and run_id == self._redis_run and floor)
        self._redis_run = run_id
        return kept

    def _say_alive(self, alive_ms: int) -> Awaitable[Any]:
        """This process's `alive` key, renewed for `alive_ms` (scripts.SAVE renews it too)."""
        renewing: Awaitable[Any] = self._client.set(self.keys.alive(self.me), b"1", px=alive_ms)
        return renewing

    async def _save(self, *, everything: bool, alive_ms: int = 0) -> bool:
        """Saves the floor and the sessions whose saved state changed (`everything`: all, and
        writes again the records Redis lost), and renews this process's `alive` key for
        `alive_ms` (0: not); lets go of sessions another process took by force. Whether the
        save ran (False: nothing to save).

        It visits only the sessions whose saved state may have changed (`_to_visit`), SAVE_CHUNK
        a loop turn, and writes at most SAVE_CHUNK sessions a command: the records first, under
        the floor saved last (a record following the floor follows that one, which it has
        reached), then the new floor with the last of them."""
        assert self._server is not None
        if self._unsynced and not everything:
            # Records a failed write left behind while Redis stayed reachable (a timeout).
            await self._recreate(list(self._unsynced))
        # Every entry up to here is queued for the sessions it concerns; held lower, below a
        # broadcast still being written to some of them (records.saved_state). Entries read
        # while the visit below waits for its next turn are all after it.
        floor = self.cursor
        changed: list[tuple[str, Saved]] = []
        saved_before = self._saved
        queued: set[str] = set()
        visit = await self._to_visit(everything, floor)
        for index, session in enumerate(visit):
            if index and not index % SAVE_CHUNK:
                await asyncio.sleep(0)  # the rest next turn
            if session.ended is not None or session.local or session.remote:
                continue
            self.save_visits += 1
            client_id = session.id
            state = saved_state(session, self._floor)
            if session.queue:
                queued.add(client_id)
                if state.follows_floor:
                    floor = held_floor(session, floor)
            if everything or saved_before.get(client_id) != state:
                changed.append((client_id, state))
            elif state.follows_floor and state.connected:
                self._unsettled.discard(client_id)  # its record follows the floor: settled
        self._queued = queued
        sessions = self._server.sessions
        # Records following the floor of sessions no longer served here: pinned to the floor
        # saved last (they had it then) before the floor moves on without them.
        departed, self._departed = self._departed, set()
        left = [c for c in departed if c in self._following and c not in sessions]
        if everything:
            left = list(self._following - sessions.keys())
        if not changed and not left and floor == self._floor and not alive_ms:
            return False
        pinning = left
        try:
            while True:
                pinned, left = left[:SAVE_CHUNK], left[SAVE_CHUNK:]
                room = SAVE_CHUNK - len(pinned)
                chunk, changed = changed[:room], changed[room:]
                last = not left and not changed
                if last:
                    await self._save_chunk(pinned, chunk, floor, alive_ms, everything)
                    self._floor = floor
                    break
                await self._save_chunk(pinned, chunk, self._floor, 0, everything)
        finally:
            # Those not pinned (a command failed) are pinned by the next save.
            self._departed.update(c for c in pinning if c in self._following)
        return True

    async def _to_visit(self, everything: bool, floor: int) -> list[ServerSession]:
        """The sessions whose saved state may have changed since the last save: those not
        settled (`_unsettled`), those that had something queued then, and, when the log moved
        on since the last look at every queue, those with something queued now (a truth test a
        session, SCAN_SLICE a loop turn). With `everything`, all of them.

        A session settled (no ack, its record following the floor, connected) changes only
        when something is queued for it: its record follows the floor while its queue is empty
        (records.saved_state). At 17,000 sessions the save made the state of every session
        with a queue four times a second, in one loop turn, and looked at every other one."""
        assert self._server is not None
        sessions = self._server.sessions
        if everything:
            return list(sessions.values())
        visit: list[ServerSession] = []
        for client_id in [*self._unsettled, *(self._queued - self._unsettled)]:
            session = sessions.get(client_id)
            if session is None:
                self._unsettled.discard(client_id)  # not served here any more
            else:
                visit.append(session)
        if floor != self._scanned:
            known = self._unsettled | self._queued
            values = list(sessions.values())
            for start in range(0, len(values), SCAN_SLICE):
                if start:
                    await asyncio.sleep(0)
                visit.extend(
                    s for s in values[start : start + SCAN_SLICE] if s.queue and s.id not in known
                )
            self._scanned = floor
        return visit

    async def _save_chunk(
        self,
        left: list[str],
        changed: list[tuple[str, Saved]],
        floor: int,
        alive_ms: int,
        everything: bool,
    ) -> None:
        """One SAVE script: `left` pinned, `changed` saved, the floor set to `floor`; then,
        with `everything` or for records Redis lost, those records written again."""
        assert self._server is not None
        args: list[Any] = [self.me, self.keys.prefix, floor, self._floor_ms, alive_ms, len(left)]
        args.extend(left)
        for client_id, state in changed:
            args.extend((client_id, *state))
        lost, missing = await self._command(self._scripts["SAVE"](args=args))
        self._following.difference_update(left)
        for client_id, state in changed:
            if state.follows_floor:
                self._following.add(client_id)
            else:
                self._following.discard(client_id)
            self._saved[client_id] = state
            if state.follows_floor and state.connected:
                self._unsettled.discard(client_id)
            else:
                self._unsettled.add(client_id)
        gone = {c.decode() for c in lost}
        for client_id in gone:
            self._server.let_go(client_id)
            self._saved.pop(client_id, None)
            self._gone(client_id)
        if everything:
            # Back after an outage: subscriptions changed here meanwhile are written again.
            await self._recreate([c for c, _ in changed if c not in gone])
        elif missing:
            await self._recreate([m.decode() for m in missing])

    async def _recreate(self, client_ids: list[str]) -> None:
        """Writes again the records of sessions served here (Redis lost them, or could not
        be told of their changes), SAVE_CHUNK sessions a round trip."""
        assert self._server is not None
        for start in range(0, len(client_ids), SAVE_CHUNK):
            chunk = client_ids[start : start + SAVE_CHUNK]
            pipe = self._client.pipeline(transaction=False)
            for client_id in chunk:
                session = self._server.sessions.get(client_id)
                if session is None:
                    continue
                pipe.hset(self.keys.session(client_id), mapping=self._record_fields(session))
                await self._scripts["RESUBSCRIBE"](  # queued in the pipeline
                    keys=[self.keys.subscriptions(client_id)],
                    args=[self.keys.prefix, client_id, *session.subscriptions],
                    client=pipe,
                )
                pipe.sadd(self.keys.owned(self.me), client_id)
            pipe.sadd(self.keys.processes, self.me)
            await self._command(pipe.execute())
            for client_id in chunk:  # exact now: the next save writes what it keeps
                self._saved.pop(client_id, None)
                self._following.discard(client_id)
                self._unsynced.discard(client_id)
                if client_id in self._server.sessions:
                    self._unsettled.add(client_id)
        if client_ids:
            log.info("wrote again the records of %d sessions", len(client_ids))

    async def _upkeep(self) -> None:
        assert self._server is not None
        max_interval = self._server.settings.max_interval + int(self.sync_interval * 1000)
        offline, *forgotten = await self._command(
            self._scripts["REAP"](args=[self.keys.prefix, max_interval, 1000])
        )
        # Sessions of processes that died, never taken over: ended here, once.
        for client_id, *fields in forgotten:
            self._server.expired_elsewhere(record_of(client_id.decode(), [*fields, b"|"]))
        for user in offline:  # their last sessions were on processes that died
            self._server.presence_changed(user.decode("utf-8", "replace"), False)
        oldest = position_of(f"{int(_now_ms() - self.log_retention * 1000)}-0")
        await self._command(
            self._client.xtrim(self.keys.log, minid=stream_id_of(oldest), approximate=True)
        )
