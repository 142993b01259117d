"""Fan-out, the hot path: a broadcast encoded once and queued for every local subscriber,
within each session's bounds and its address's (benchmarks/fanout.py measures it).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from .flow import Conflation, Overflow, SessionFlow
from .message import Delivery, Message
from .replay import ReplayHistory, replay_id_of
from .session import Ended, ServerSession
from .state import ServerState
from .tasks import Decision, InOrder

log = logging.getLogger("bayeux.server")


class NotRepresentable(ValueError):
    """A message that cannot be encoded as JSON (or in a format some connection reads)."""


class FanOut(ServerState):
    """Preparing, encoding and queueing broadcasts for this process's sessions."""

    def _prepare(self, message: Message) -> tuple[Message, Delivery]:
        """A broadcast as its subscribers get it (after the server's outgoing extensions),
        encoded once for all of them: shaped on replay channels. Raises NotRepresentable when
        it cannot be encoded as JSON (bytes from a msgpack client, Python objects from the
        server side), before anything is queued."""
        replay = self.replay
        if replay is not None and replay.covers(message["channel"]):
            message, _ = replay.shape(message)
        return message, self._encoded(message)

    def _outgoing_broadcast(self, message: Message) -> Decision:
        """Whether the server's outgoing extensions keep a broadcast (they see it once, with
        no session), or an awaitable of that."""
        if not self.hooks.extensions:
            return True
        return self.hooks.run_outgoing(self.hooks.outgoing_extensions, None, message)

    def echoes(self, session: ServerSession, channel: str) -> bool:
        """Whether a message `session` publishes on `channel` also reaches it: when both its
        channel and the session allow it, each defaulting to the server's setting (CometD's
        broadcast-to-publisher rule). Decided by the process serving the session, where its
        own setting is (with an engine, the log carries the publisher's clientId).

        Examples:
            >>> session = server.create_session()
            >>> server.echoes(session, "/chat/lobby")
            True
            >>> session.broadcast_to_publisher = False
            >>> server.echoes(session, "/chat/lobby")
            False

        Added in version 0.3.0."""
        default = self.settings.broadcast_to_publisher
        own = session.broadcast_to_publisher
        if own is not None and not own:
            return False
        table = self.channel_table
        by_channel = table.echoes(channel, default) if table.echo else default
        return by_channel if own is None or by_channel else False

    def _deliver_local(self, message: Message, delivery: Delivery, sender: str | None) -> int:
        """Queues a prepared broadcast for the subscribers of this process."""
        replay = self.replay
        if replay is not None:
            self._keep_replay(replay, message)
        return self._fan_out(message, delivery, sender, 0)

    def _keep_replay(self, replay: ReplayHistory, message: Message, position: int = 0) -> None:
        if replay.covers(message["channel"]):
            replay_id = replay_id_of(message)
            if replay_id is not None:
                replay.keep(message, replay_id, position=position)

    def _fan_out(
        self, message: Message, delivery: Delivery, sender: str | None, position: int
    ) -> int:
        """Queues `delivery` for every local subscriber of its channel (its `sender` only when
        broadcast-to-publisher allows it); with a
        log `position`, only for sessions not already past it (taken over meanwhile)."""
        channel = message["channel"]
        stats = self.stats
        table = self.channel_table
        if delivery.lazy:
            lazy_seconds: float | None = table.timeout_of(
                channel, self.settings.max_lazy_timeout_seconds
            )
        elif table.lazy:
            lazy_seconds = table.lazy_seconds(channel, self.settings.max_lazy_timeout_seconds)
        else:
            lazy_seconds = None
        # Conflated channels (ServerChannel.conflate): the key is taken once per broadcast.
        # Paired with the rule, so that two conflated channels' keys never merge each other's
        # messages (a client could otherwise publish over another channel's latest value).
        key = rule = None
        if table.conflated:
            rule = table.conflation_for(channel)
            if rule is not None:
                key = rule.key_of(message)
                if key is not None:
                    key = delivery.key = (rule, key)
        count = 0
        recipients = self.tree.match(channel)
        delivery.shared_by(len(recipients))
        for session in recipients:
            if session.id == sender and not self.echoes(session, channel):
                continue
            if position:
                if session.position >= position:
                    continue
                session.position = position
            if session.extensions:
                own = copy_message(message)
                kept = (
                    self.hooks.run_outgoing(session.extensions[::-1], session, own)
                    if session.outgoing_order is None
                    else None
                )
                if kept is True:
                    self._enqueue_own(session, own, position, lazy_seconds)
                elif kept is not False:
                    self._deliver_own(session, own, position, lazy_seconds, kept)
            elif key is None:
                self._enqueue(session, delivery, lazy_seconds)
            else:
                assert rule is not None
                self._enqueue_conflated(session, delivery, lazy_seconds, rule)
            count += 1
        stats.deliveries += count
        stats.delivery_bytes += count * len(delivery.json)
        return count

    def _deliver_own(
        self,
        session: ServerSession,
        own: Message,
        position: int,
        lazy_seconds: float | None,
        kept: Awaitable[bool] | None,
    ) -> None:
        """Queues a session's own copy of a broadcast once its asynchronous outgoing extensions
        keep it (`kept`), or, with None, once they did for its earlier messages and then keep
        this one: in order."""

        def act() -> None:
            self._enqueue_own(session, own, position, lazy_seconds)

        if kept is not None:
            self._in_order(session).wait(kept, act)
        else:
            self._after_outgoing(
                session,
                lambda: self.hooks.run_outgoing(session.extensions[::-1], session, own),
                act,
            )

    def _enqueue_own(
        self, session: ServerSession, own: Message, position: int, lazy_seconds: float | None
    ) -> None:
        if session.ended is not None:
            return
        try:
            own_delivery = self._encoded(own)
        except NotRepresentable:
            log.error(
                "an extension of session %s made %s unencodable; skipped",
                session.tag,
                own["channel"],
            )
            return
        own_delivery.position = position
        self._enqueue(session, own_delivery, lazy_seconds)

    def _after_outgoing(
        self, session: ServerSession, decide: Callable[[], Decision], act: Callable[[], None]
    ) -> None:
        """Runs `act` once outgoing extensions kept a message for `session` (`decide`), in
        order behind the session's messages still waiting for asynchronous ones."""
        order = session.outgoing_order
        if order is None:
            kept = decide()
            if kept is True:
                act()
            elif kept is not False:
                self._in_order(session).wait(kept, act)
        elif not order.run(decide, act):
            self.stats.dropped["extension-backlog"] += 1

    def _in_order(self, session: ServerSession) -> InOrder:
        order = session.outgoing_order
        if order is None:
            order = session.outgoing_order = InOrder(
                self._tasks, self.settings.max_extension_backlog
            )
        return order

    def _enqueue_conflated(
        self,
        session: ServerSession,
        delivery: Delivery,
        lazy_seconds: float | None,
        rule: Conflation,
    ) -> None:
        """Queues a message of a conflated channel, after conflating the session's queue when
        its reader has left it waiting (`ServerSession.conflate`)."""
        flow = session.flow
        if flow is None:
            flow = session.flow = SessionFlow()
        elif flow.queued and not flow.accepts(session, delivery):
            self.stats.dropped["listener"] += 1
            return
        after = rule.after
        if flow.after is None or after < flow.after:
            flow.after = after
            flow.drops = self.stats.dropped
        if flow.backlog is None or rule.backlog < flow.backlog:
            flow.backlog = rule.backlog
        if len(session.queue) >= rule.backlog:
            merged = session.conflate(rule.backlog, after, delivery.born)
            if merged:
                self.stats.dropped["conflated"] += merged
        self._enqueue(session, delivery, lazy_seconds, True)

    def _enqueue(
        self,
        session: ServerSession,
        delivery: Delivery,
        lazy_seconds: float | None = None,
        vetted: bool = False,
    ) -> None:
        """Queues `delivery` for `session`, or applies the queue-full policy when it would pass
        the session's bounds or its address's. On every delivery's path: the checks are plain
        reads written inline, the policy's work only when full; a session's own listeners
        (core/flow.py) cost one read when it has none."""
        flow = session.flow
        if flow is not None and flow.queued and not vetted:
            if not flow.accepts(session, delivery):
                self.stats.dropped["listener"] += 1
                return
        max_bytes = self._max_queue_bytes
        max_count = self._max_queue
        held = session.queue_bytes if session.ack is None else session.queued_bytes()
        if (
            (max_bytes > 0 and held + delivery.size > max_bytes)
            or delivery.share > session.budget.room  # AddressBudget.over
            or (max_count > 0 and len(session.queue) >= max_count)
        ):
            self._enqueue_full(session, delivery, lazy_seconds)
        elif self.batched is None:
            session.enqueue(delivery, lazy_seconds)
        else:
            self._enqueue_batched(session, delivery, lazy_seconds)

    def _enqueue_full(
        self, session: ServerSession, delivery: Delivery, lazy_seconds: float | None
    ) -> None:
        """`_enqueue` of a delivery that does not fit: the session's queue-full listeners
        decide, or the queue-full policy; queued once room is made. Apart from `_enqueue` so
        that a delivery that fits pays nothing for it (benchmarks/fanout_core.py)."""
        flow = session.flow
        if delivery.key is not None and flow is not None:
            # A conflated channel's message that does not fit: what it supersedes goes before
            # any policy drops or disconnects (only superseded values are lost that way).
            merged = session.conflate(0, 0.0, delivery.born, full=True)
            if merged:
                self.stats.dropped["conflated"] += merged
        max_bytes = self._max_queue_bytes
        max_count = self._max_queue
        asked = False
        while True:
            held = session.queue_bytes if session.ack is None else session.queued_bytes()
            if not (
                (max_bytes > 0 and held + delivery.size > max_bytes)
                or delivery.share > session.budget.room  # AddressBudget.over
                or (max_count > 0 and len(session.queue) >= max_count)
            ):
                if self.batched is None:
                    session.enqueue(delivery, lazy_seconds)
                else:
                    self._enqueue_batched(session, delivery, lazy_seconds)
                return
            if flow is not None and flow.full and not asked:
                asked = True  # a listener that made no room gets the policy, not a loop
                decided = flow.overflow(session, delivery)
                if decided is Overflow.QUEUE:
                    continue
                if decided is Overflow.DROP:
                    self.stats.dropped["listener"] += 1
                    return
            policy = self.settings.queue_full_policy
            if policy == "drop-oldest" and session.queue:
                session.drop_oldest()
                self.stats.dropped["drop-oldest"] += 1
                continue
            if policy == "disconnect":
                log.warning(
                    "session %s queue full: disconnected (a slow consumer)",
                    session.tag,
                    extra={"event": "slow-consumer", "session": session.tag},
                )
                self.stats.dropped["queue-full-disconnect"] += 1
                self.remove_session(session, Ended.QUEUE_FULL)
                return
            self.stats.dropped["drop-newest"] += 1  # drop-newest, or it cannot fit at all
            return

    def _enqueue_batched(
        self, session: ServerSession, delivery: Delivery, lazy_seconds: float | None
    ) -> None:
        """Queues `delivery` while some batch is open: without waking the session's connection
        when a batch covers it (the batch wakes it when it closes)."""
        batched = self.batched
        assert batched is not None
        if self.batch_depth or session in self.session_batches:
            session.hold(delivery)
            batched.add(session)
        else:
            session.enqueue(delivery, lazy_seconds)

    def _encoded(self, message: Message) -> Delivery:
        """The message encoded now, once for every subscriber, in JSON and in every other format
        some connection reads, so that a failure reaches the publisher."""
        try:
            delivery = Delivery(message)
            if "msgpack" in self._formats:
                delivery.pack_msgpack(message)
        except (TypeError, ValueError, OverflowError) as exc:
            raise NotRepresentable(f"{message.get('channel')}: {exc}") from None
        return delivery


def copy_message(message: Message) -> Message:
    copy = dict(message)
    if isinstance(copy.get("ext"), dict):
        copy["ext"] = dict(copy["ext"])
    return copy
