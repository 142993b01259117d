"""Handing sessions over between live processes: a claim asks the owner to let go over its
control channel, the owner answers its held connect, saves the exact position and lets go.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from ...core.engine import (
    Claimed,
    EngineUnavailable,
    ForeignBrowser,
    SessionStopped,
)
from ...core.session import Ended
from .base import close_quietly, log
from .reader import LogReader
from .records import (
    changes_of,
    pending_of,
    record_of,
    saved,
    state_of,
    state_of_record,
)


class Handoff(LogReader):
    """Claims sessions, and lets go of them when another process claims them."""

    async def _claim(
        self, client_id: str, acknowledged: int | None, browser: str | None
    ) -> Claimed | None:
        force = False
        asked = ""  # the process that served the session and was asked to let go
        for attempt in range(4):
            result = await self._command(
                self._scripts["CLAIM"](
                    keys=[self.keys.session(client_id), self.keys.subscriptions(client_id)],
                    args=[
                        self.me,
                        self.keys.prefix,
                        client_id,
                        "1" if force else "0",
                        "*" if browser is None else browser,
                    ],
                )
            )
            if result is None:
                return None
            if result[0] == b"foreign":
                raise ForeignBrowser(client_id)
            if result[0] == b"stopped":
                raise SessionStopped(client_id, int(result[1]) / 1000)
            if result[0] == b"wait":
                # Several processes may claim at once: each asks the owner of the moment, the
                # last one gets it; a process that never answers loses it after that.
                asked = result[1].decode()
                answered = await self._ask_to_let_go(asked, client_id, acknowledged)
                force = not answered or attempt == 2
                continue
            previous = result[2].decode()
            if previous == self.me and asked:
                previous = asked  # it handed the session over to us
            if force and previous not in ("", self.me):
                # Taken from a live process that did not answer: it must stop serving it.
                await self._tell(previous, f"claim {client_id} - {self.me}")
            record = record_of(client_id, result[1])
            if await self._trimmed_past(record.position):
                log.warning(
                    "a session's position is older than the log keeps: ended",
                    extra={"event": "session-lost"},
                )
                await self._end(client_id, self.me)
                return None
            backlog, through, subscriptions = await self._backlog(
                client_id, record.position, previous
            )
            # What the reader went through meanwhile did not reach the session (not served
            # here yet): read it too. No await between this test and the core taking the
            # session in, so the reader hands it everything after `through`.
            while self.cursor > through:
                more, through, subscriptions = await self._backlog(client_id, through, previous)
                backlog.extend(more)
            record.subscriptions = [s.decode() for s in subscriptions]
            self._saved[client_id] = saved(state_of_record(record))
            self._unsettled.add(client_id)
            self.claims += 1
            return Claimed(record, backlog, through)
        raise EngineUnavailable("the session could not be claimed")

    async def _listen(self) -> None:
        """Hears this process's control channel: claims, releases, ends."""
        await self._reconnecting("control channel", self._hear)

    async def _hear(self, client: Any, connected: Callable[[], None]) -> None:
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(self.keys.control(self.me))
            connected()
            async for item in pubsub.listen():
                if item.get("type") == "message":
                    self._control(item["data"])
        finally:
            await close_quietly(pubsub.aclose())

    def _control(self, data: bytes) -> None:
        """`claim <clientId> <ack or -> <process>`, `released <clientId>`, `end <clientId>`,
        `kick <clientId>` (ended by BayeuxServer.disconnect on another process)."""
        assert self._server is not None
        text = data.decode(errors="replace")
        if text.startswith("attrs "):
            _, client_id, changes = (text + " ").split(" ", 2)
            session = self._server.sessions.get(client_id)
            if session is not None:
                session.attributes.apply(changes_of(changes))
            return
        verb, client_id, *rest = text.split(" ")
        if verb == "claim" and len(rest) == 2:
            argument, requester = rest
            acknowledged = int(argument) if argument.lstrip("-").isdigit() else None
            self._spawn(self._let_go(client_id, acknowledged, requester))
        elif verb == "released":
            waiting = self._releases.get(client_id)
            if waiting is not None and not waiting.done():
                waiting.set_result(None)
        elif verb == "end":
            session = self._server.sessions.get(client_id)
            if session is not None:
                self._server.remove_session(session, Ended.DISCONNECTED)
        elif verb == "kick":
            session = self._server.sessions.get(client_id)
            if session is not None:
                self._server.disconnect(session)

    async def _ask_to_let_go(self, owner: str, client_id: str, acknowledged: int | None) -> bool:
        """Asks the process serving a session to let go of it; whether it did in time."""
        loop = asyncio.get_running_loop()
        released = self._releases.setdefault(client_id, loop.create_future())
        try:
            ack = "-" if acknowledged is None else acknowledged
            await self._tell(owner, f"claim {client_id} {ack} {self.me}")
            await asyncio.wait_for(asyncio.shield(released), self.handoff_timeout)
            self.handoffs += 1
            return True
        except TimeoutError:
            log.warning(
                "a process did not let go of a session in time: taken over",
                extra={"event": "handoff-timeout"},
            )
            return False
        finally:
            if self._releases.get(client_id) is released:
                del self._releases[client_id]

    async def _let_go(self, client_id: str, acknowledged: int | None, requester: str) -> None:
        """Another process claims a session: stop serving it, save exactly where its client
        stands, and hand it over (to the last process that claimed it). The requester hears
        back in any case, to claim again if the session went elsewhere."""
        assert self._server is not None
        claiming = self._claiming.get(client_id)
        if claiming is not None:
            # Resolved once the claim returned and the core took the session in (same step).
            await asyncio.wait([claiming], timeout=self.handoff_timeout)
        session = self._server.let_go(client_id)
        self._saved.pop(client_id, None)
        self._gone(client_id)
        # Its attribute changes are in its record before the claimant reads it.
        await self.attributes_settled()
        state: tuple[Any, ...] = ("", 0, "{}", 0, b"[]")
        if session is not None:
            if session.ack is not None and acknowledged is not None:
                session.acknowledge(acknowledged)
            state = (*state_of(session, self.cursor), pending_of(session))
        try:
            new_owner = await self._command(
                self._scripts["RELEASE"](
                    keys=[self.keys.session(client_id)],
                    args=[self.me, self.keys.prefix, client_id, *state],
                )
            )
            told = {requester}
            if new_owner:
                told.add(new_owner.decode())
            for process in told:
                await self._tell(process, f"released {client_id}")
        except EngineUnavailable:
            pass  # the claimant takes it over by force after handoff_timeout
