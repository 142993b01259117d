"""Health and metrics as Tornado RequestHandlers, for applications that embed the endpoint."""

from __future__ import annotations

from collections.abc import Callable

import tornado.web

from ..transports.http import HttpResponse
from .requests import send


class AnswerHandler(tornado.web.RequestHandler):
    """Answers GET and HEAD with what `answer()` returns (health_answer, metrics_answer)."""

    def initialize(self, answer: Callable[[], HttpResponse]) -> None:
        self.answer = answer

    def get(self) -> None:
        send(self, self.answer())

    head = get
