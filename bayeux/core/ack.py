"""The `ack` extension: at-least-once delivery from server to client across lost connect replies.

Negotiated in the handshake (`ext.ack: true` both ways). From then on the session's messages go
out only in `/meta/connect` replies, each reply carrying a batch number in `ext.ack`; the client
sends back the last batch it received in its next connect's `ext.ack`. Batches the client has not
acknowledged stay here, and a connect that acknowledges an older batch puts them back at the front
of the queue, so they are sent again, in order, before anything newer.

What is kept here counts against the session's max_queue_bytes, like its queue.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .message import Delivery
    from .session import ServerSession


class AckState:
    __slots__ = ("batch", "unacknowledged", "pending_bytes")

    def __init__(self) -> None:
        self.batch = 0
        self.unacknowledged: dict[int, list[Delivery]] = {}
        self.pending_bytes = 0

    def acknowledge(self, session: ServerSession, batch: int) -> int:
        """Forgets the batches up to `batch`; re-queues later ones ahead of newer messages.
        Returns how many messages were re-queued."""
        resend: list[Delivery] = []
        for number in sorted(self.unacknowledged):
            if number > batch:
                resend.extend(self.unacknowledged[number])
        self.forget()
        session.requeue(resend)
        return len(resend)

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

    def pending(self) -> int:
        return sum(len(d) for d in self.unacknowledged.values())
