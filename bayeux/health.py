"""A health endpoint for load balancers and orchestrators: 200 while the server serves and is
ready (its engine connected, when it has one), 503 while it drains or its engine is away."""

from __future__ import annotations

from .core import codec
from .transports.http import HttpResponse


def health_answer(status: str, ready: bool, sessions: int) -> HttpResponse:
    """The answer to a health check, from `Endpoint.health()` and the session count."""
    headers = [("Content-Type", "application/json"), ("Cache-Control", "no-store")]
    body = codec.dumps({"status": status, "sessions": sessions})
    return HttpResponse(200 if ready else 503, headers, body)
