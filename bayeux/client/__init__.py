"""A Bayeux client for Python services: `Client` (asyncio) and `SyncClient` (a thread of its
own, for scripts). Needs aiohttp: pip install 'bayeux-server[client]'."""

from .binary import BinaryExtension
from .client import Client, Subscription
from .errors import (
    BayeuxError,
    ClientClosed,
    NotSent,
    ProtocolError,
    QueueFull,
    ReplyTooLarge,
    TransportError,
)
from .extensions import (
    ALL_RETAINED,
    NEW_ONLY,
    AckExtension,
    ClientExtension,
    MemoryReplayStore,
    ReplayExtension,
    ReplayStore,
    TimesyncExtension,
)
from .state import TRANSITIONS, State
from .sync import SyncClient

__all__ = [
    "ALL_RETAINED",
    "NEW_ONLY",
    "AckExtension",
    "BayeuxError",
    "BinaryExtension",
    "Client",
    "ClientClosed",
    "ClientExtension",
    "MemoryReplayStore",
    "NotSent",
    "ProtocolError",
    "QueueFull",
    "ReplayExtension",
    "ReplayStore",
    "ReplyTooLarge",
    "State",
    "Subscription",
    "SyncClient",
    "TRANSITIONS",
    "TimesyncExtension",
    "TransportError",
]
