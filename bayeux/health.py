"""A health endpoint for load balancers and orchestrators: 200 while the server serves and is
ready (its engine connected, when it has one), 503 while it drains or its engine is away."""

from __future__ import annotations

from typing import TYPE_CHECKING

import tornado.web

from . import codec

if TYPE_CHECKING:
    from .endpoint import Endpoint


class HealthHandler(tornado.web.RequestHandler):
    def initialize(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint

    def get(self) -> None:
        status, ready = self.endpoint.health()
        self.set_status(200 if ready else 503)
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        self.finish(codec.dumps({"status": status, "sessions": len(self.endpoint.server.sessions)}))

    head = get
