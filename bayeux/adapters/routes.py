"""The Tornado rules that mount an endpoint in an Application."""

from __future__ import annotations

import re
from collections.abc import Callable

import tornado.routing

from ..transports.context import Context
from ..transports.http import HttpResponse
from .eventsource import EventSourceHandler, EventSourceMatches
from .operations import AnswerHandler
from .polling import PollingHandler
from .websocket import UpgradeMatches, WebSocketHandler


def transport_rules(context: Context, path: str) -> list[tornado.routing.Rule]:
    """Rules serving every transport at `path` and any sub-path below it."""
    if not path.startswith("/"):
        raise ValueError("path must start with '/'")
    pattern = re.escape(path.rstrip("/")) + r"(?:/.*)?$"
    target = {"context": context}
    return [
        tornado.routing.Rule(UpgradeMatches(pattern), WebSocketHandler, target),
        tornado.routing.Rule(EventSourceMatches(pattern), EventSourceHandler, target),
        tornado.routing.Rule(tornado.routing.PathMatches(pattern), PollingHandler, target),
    ]


def answer_rule(path: str, answer: Callable[[], HttpResponse]) -> tornado.routing.Rule:
    """A rule answering GET and HEAD at exactly `path` with `answer()`."""
    return tornado.routing.Rule(
        tornado.routing.PathMatches(re.escape(path) + "$"), AnswerHandler, {"answer": answer}
    )
