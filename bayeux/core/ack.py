"""The `ack` extension: at-least-once delivery from server to client across lost connect replies.

Negotiated in the handshake (`ext.ack: true` both ways). From then on the session's messages go
out only in `/meta/connect` replies, each reply carrying a batch number in `ext.ack`; the client
sends back the last batch it received in its next connect's `ext.ack`. Batches the client has not
acknowledged stay here, and a connect that acknowledges an older batch puts them back at the front
of the queue, so they are sent again, in order, before anything newer.

What is kept here counts against the session's max_queue_bytes, like its queue; the session
(core/session.py) does the counting, through `record` and `acknowledge`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .message import Delivery


class AckState:
    __slots__ = ("batch", "unacknowledged", "pending_bytes", "position")

    def __init__(self, batch: int = 0, position: int = 0) -> None:
        self.batch = batch
        self.unacknowledged: dict[int, list[Delivery]] = {}
        self.pending_bytes = 0
        # With an engine: the newest log position the client acknowledged (core/engine.py).
        self.position = position

    def acknowledge(self, batch: int) -> list[Delivery]:
        """Forgets every batch kept; returns those after `batch`, in order: the client did not
        get them, and they go back ahead of newer messages."""
        resend: list[Delivery] = []
        for number in sorted(self.unacknowledged):
            if number > batch:
                resend.extend(self.unacknowledged[number])
            else:
                self.position = max(self.position, _end_position(self.unacknowledged[number]))
        self.forget()
        return resend

    def record(self, deliveries: list[Delivery]) -> int:
        """Numbers the batch going out now and keeps it until acknowledged."""
        self.batch += 1
        if deliveries:
            self.unacknowledged[self.batch] = deliveries
            self.pending_bytes += sum(d.size for d in deliveries)
        return self.batch

    def forget(self) -> None:
        self.unacknowledged.clear()
        self.pending_bytes = 0

    def batch_positions(self) -> dict[int, int]:
        """The end log position of each batch not yet acknowledged (those that have one)."""
        ends = {n: _end_position(d) for n, d in self.unacknowledged.items()}
        return {n: p for n, p in ends.items() if p}

    def pending(self) -> int:
        return sum(len(d) for d in self.unacknowledged.values())


def _end_position(deliveries: list[Delivery]) -> int:
    return max((d.position for d in deliveries), default=0)
