"""The session lifecycle as an invariant, checked by a hypothesis state machine on the sans-I/O
core with its injected clock: through every interleaving of handshake, connect, displacement,
disconnect, socket drop, publish, shutdown, sweep and the passing of time, every session either
has a held connect or expires no later than interval + maxInterval from now; a held connect is
never expired under its timeout; and nothing else keeps a session alive."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    precondition,
    rule,
)

from bayeux import BayeuxServer, ConnectHold, Settings
from bayeux.core.session import Wakeup
from bayeux.testing import ManualClock as Clock

TIMEOUT_MS, INTERVAL_MS, MAX_INTERVAL_MS, MULTI_MS = 5000, 0, 2000, 1000


@dataclass(eq=False)
class Hold:
    """A held connect as a transport keeps it: the hold, when it started, and what woke it."""

    is_stream = False

    hold: ConnectHold
    started: float
    woken: str | None = None

    # The core's Waiter interface (core/session.py): record only, the "loop" acts later.
    def wake(self) -> None:
        self.woken = self.woken or "messages"

    def wake_after(self, seconds: float) -> None:
        self.woken = self.woken or "messages"

    def displace(self) -> None:
        self.woken = "displaced"

    def close(self) -> None:
        self.woken = "closed"


class Lifecycle(RuleBasedStateMachine):
    sessions = Bundle("sessions")

    def __init__(self) -> None:
        super().__init__()
        self.clock = Clock()
        self.server = BayeuxServer(
            Settings(
                timeout=TIMEOUT_MS,
                interval=INTERVAL_MS,
                max_interval=MAX_INTERVAL_MS,
                multi_session_interval=MULTI_MS,
            ),
            clock=self.clock,
        )
        self.holds: dict[str, Hold] = {}  # client id -> the connect its transport holds
        self.loop = asyncio.new_event_loop()

    def teardown(self) -> None:
        self.loop.close()

    def handle(self, *messages: dict) -> list[dict]:
        outcome = self.loop.run_until_complete(self.server.handle(list(messages)))
        replies = list(outcome.replies)
        if outcome.connect is not None:
            replies.append(self.park(outcome.connect))
        return replies

    def park(self, hold: ConnectHold) -> dict:
        """What a transport does with a connect: answer it at once or hold it."""
        session = hold.session
        held = Hold(hold, self.clock.now)
        session.attach(held)  # displaces the one held before, as transports do
        self.run_loop()
        if hold.timeout <= 0 or session.queue or self.server.shutting_down or session.ended:
            session.detach(held)
            _, reply = self.server.finish_connect(hold)
            return reply
        self.holds[session.id] = held
        return {"held": True}

    def run_loop(self) -> None:
        """The IOLoop's turn: holds that were woken, displaced, closed or timed out finish."""
        for client_id, held in list(self.holds.items()):
            timed_out = self.clock.now >= held.started + held.hold.timeout
            if held.woken is None and not timed_out:
                continue
            del self.holds[client_id]
            held.hold.session.detach(held)
            why = Wakeup.DISPLACED if held.woken == "displaced" else Wakeup.MESSAGES
            self.server.finish_connect(held.hold, why)

    # ------------------------------------------------------------------------------ rules

    @rule(target=sessions)
    def handshake(self) -> str:
        (reply,) = self.handle(
            {
                "channel": "/meta/handshake",
                "version": "1.0",
                "supportedConnectionTypes": ["long-polling"],
            }
        )
        return reply.get("clientId", "refused")

    @rule(client_id=sessions, timeout=st.sampled_from([None, 0, 100, 10_000]))
    def connect(self, client_id: str, timeout: int | None) -> None:
        message: dict[str, Any] = {
            "channel": "/meta/connect",
            "clientId": client_id,
            "connectionType": "long-polling",
        }
        if timeout is not None:
            message["advice"] = {"timeout": timeout}
        self.handle(message)

    @rule(client_id=sessions)
    def subscribe_and_publish(self, client_id: str) -> None:
        self.handle({"channel": "/meta/subscribe", "clientId": client_id, "subscription": "/t"})
        self.handle({"channel": "/t", "clientId": client_id, "data": 1})
        self.run_loop()

    @rule(client_id=consumes(sessions))
    def disconnect(self, client_id: str) -> None:
        self.handle({"channel": "/meta/disconnect", "clientId": client_id})
        self.run_loop()

    @rule(client_id=sessions)
    def drop_socket(self, client_id: str) -> None:
        """The client's connection closes while its connect is held (Wakeup.GONE)."""
        held = self.holds.pop(client_id, None)
        if held is not None:
            held.hold.session.detach(held)
            self.server.finish_connect(held.hold, Wakeup.GONE)

    @rule(seconds=st.sampled_from([0.05, 0.5, 1.0, 2.5, 6.0]))
    def time_passes(self, seconds: float) -> None:
        self.clock.now += seconds
        self.run_loop()

    @rule()
    def sweep(self) -> None:
        now = self.clock.now
        for session in self.server.sweep():
            held = self.holds.get(session.id)
            if held is not None:
                # A held connect may only expire once it outlived its timeout by maxInterval
                # (a transport that lost it), never while it is still within its timeout.
                assert now >= held.started + held.hold.timeout + MAX_INTERVAL_MS / 1000
        self.run_loop()

    @precondition(lambda self: not self.server.shutting_down)
    @rule()
    def shutdown(self) -> None:
        self.server.shutdown()
        self.run_loop()

    # -------------------------------------------------------------------------- invariants

    @invariant()
    def held_or_expiring_soon(self) -> None:
        now = self.clock.now
        longest_interval = max(INTERVAL_MS, MULTI_MS)
        for session in self.server.sessions.values():
            assert session.deadline is not None
            held = self.holds.get(session.id)
            if held is not None and held.woken is None:
                # The core knows which connect is held: the transport's current one.
                assert session.held is held.hold
                # Held: alive through its timeout, but not forever.
                assert session.deadline >= held.started + held.hold.timeout
                assert session.deadline <= held.started + held.hold.timeout + MAX_INTERVAL_MS / 1000
            else:
                assert session.deadline <= now + (longest_interval + MAX_INTERVAL_MS) / 1000

    @invariant()
    def ended_sessions_hold_nothing(self) -> None:
        for client_id, held in self.holds.items():
            assert held.hold.session.ended is None or held.woken == "closed", client_id


TestLifecycle = Lifecycle.TestCase
TestLifecycle.settings = settings(max_examples=300, stateful_step_count=40, deadline=None)
