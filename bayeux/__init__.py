"""A Bayeux 1.0 (CometD) server on Tornado."""

from .core.server import BayeuxServer, ConnectHold, Outcome
from .core.session import Ended, ServerSession
from .core.settings import Settings
from .endpoint import Endpoint

__all__ = [
    "BayeuxServer",
    "ConnectHold",
    "Ended",
    "Endpoint",
    "Outcome",
    "ServerSession",
    "Settings",
]
__version__ = "0.1.0"
