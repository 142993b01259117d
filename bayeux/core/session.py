"""Server-side sessions: identity, subscriptions, the queue of messages waiting for delivery, and
the connection (if any) currently waiting for them."""

from __future__ import annotations

import secrets
from collections import deque
from enum import Enum
from typing import Any, Protocol

from .message import Delivery


class Waiter(Protocol):
    """A transport-side connection attached to a session: a held long-poll, an open WebSocket.

    The core calls these from its own methods; implementations must only schedule work (resolve a
    future, queue a write), never re-enter the core synchronously.
    """

    def wake(self) -> None:
        """Messages were queued for the session."""

    def displace(self) -> None:
        """Another connection of the same session took over."""

    def close(self) -> None:
        """The session ended (disconnect, expiry, server shutdown)."""


class Ended(Enum):
    """Why a session ended."""

    DISCONNECTED = "disconnected"  # the client sent /meta/disconnect
    EXPIRED = "expired"  # no /meta/connect within maxInterval
    REMOVED = "removed"  # the server application removed it


def new_client_id() -> str:
    # 160 random bits, hex: unguessable, and alphanumeric as the Bayeux grammar wants clientIds.
    return secrets.token_hex(20)


class ServerSession:
    """One client's state on the server. Created by a successful handshake."""

    __slots__ = (
        "id",
        "subscriptions",
        "queue",
        "waiter",
        "connected",
        "deadline",
        "connection_type",
        "attributes",
        "ended",
    )

    def __init__(self, client_id: str, deadline: float) -> None:
        self.id = client_id
        self.subscriptions: set[str] = set()
        self.queue: deque[Delivery] = deque()
        self.waiter: Waiter | None = None
        # False until the first /meta/connect, which is always answered at once.
        self.connected = False
        # Monotonic time after which the session expires; None while a connect is held.
        self.deadline: float | None = deadline
        self.connection_type: str | None = None
        # Free for applications and extensions.
        self.attributes: dict[str, Any] = {}
        self.ended: Ended | None = None

    def enqueue(self, delivery: Delivery) -> None:
        was_empty = not self.queue
        self.queue.append(delivery)
        if was_empty and self.waiter is not None:
            self.waiter.wake()

    def drain(self) -> list[Delivery]:
        """Everything queued, oldest first, leaving the queue empty."""
        items = list(self.queue)
        self.queue.clear()
        return items

    def attach(self, waiter: Waiter) -> None:
        """Makes `waiter` the connection that receives this session's messages, displacing any
        other one."""
        previous = self.waiter
        self.waiter = waiter
        if previous is not None and previous is not waiter:
            previous.displace()

    def detach(self, waiter: Waiter) -> None:
        if self.waiter is waiter:
            self.waiter = None

    def __repr__(self) -> str:
        return f"ServerSession({self.id[:8]}…, {len(self.subscriptions)} subscriptions)"
