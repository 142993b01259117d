"""A Bayeux 1.0 (CometD) server on Tornado."""

from .core.annotations import listener, on_start, on_stop, remote_call, service, subscription
from .core.channels import ServerChannel, Subscribers
from .core.context import RequestContext, ResponseHeaders, current_request
from .core.extension import Extension
from .core.flow import Conflation, Overflow
from .core.local import LocalSession
from .core.message import Delivery
from .core.policy import Authorization, Operation, SecurityPolicy
from .core.server import BayeuxServer, ConnectHold, Outcome
from .core.service import ServiceError, ServiceRequest
from .core.session import Ended, ServerSession
from .core.settings import Settings
from .core.templates import ChannelTemplate
from .core.threads import NotOnLoop
from .core.users import TooManySessions
from .endpoint import Endpoint

__all__ = [
    "Authorization",
    "BayeuxServer",
    "ChannelTemplate",
    "Conflation",
    "ConnectHold",
    "Delivery",
    "Ended",
    "Endpoint",
    "Extension",
    "LocalSession",
    "NotOnLoop",
    "Operation",
    "Outcome",
    "Overflow",
    "RequestContext",
    "ResponseHeaders",
    "SecurityPolicy",
    "ServerChannel",
    "ServerSession",
    "ServiceError",
    "ServiceRequest",
    "Settings",
    "Subscribers",
    "TooManySessions",
    "current_request",
    "listener",
    "on_start",
    "on_stop",
    "remote_call",
    "service",
    "subscription",
]
__version__ = "0.2.0"
