"""A Bayeux 1.0 (CometD) server on Tornado."""

from .core.annotations import listener, on_start, on_stop, remote_call, service, subscription
from .core.channels import ServerChannel, Subscribers
from .core.context import RequestContext, ResponseHeaders, current_request
from .core.ext import Activity, ActivityExtension, BinaryExtension, TimestampExtension
from .core.extension import Extension
from .core.filters import (
    DataFilter,
    DataFilterListener,
    DataRefused,
    NoMarkup,
    NormalizeText,
    NoScripts,
    RegexFilter,
)
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
    "Activity",
    "ActivityExtension",
    "Authorization",
    "BayeuxServer",
    "BinaryExtension",
    "ChannelTemplate",
    "Conflation",
    "ConnectHold",
    "DataFilter",
    "DataFilterListener",
    "DataRefused",
    "Delivery",
    "Ended",
    "Endpoint",
    "Extension",
    "LocalSession",
    "NoMarkup",
    "NoScripts",
    "NormalizeText",
    "NotOnLoop",
    "Operation",
    "Outcome",
    "Overflow",
    "RegexFilter",
    "RequestContext",
    "ResponseHeaders",
    "SecurityPolicy",
    "ServerChannel",
    "ServerSession",
    "ServiceError",
    "ServiceRequest",
    "Settings",
    "Subscribers",
    "TimestampExtension",
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
