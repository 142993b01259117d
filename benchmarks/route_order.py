"""What a FastAPI (Starlette) application's own routes cost each request to the endpoint when
the endpoint's routes come after them, as `app.router.routes.extend(...)` puts them: the router
tries every route in order, and a request for /cometd/connect matches only the endpoint's.

    .venv/bin/python benchmarks/route_order.py            # 50 routes of the application's own
    .venv/bin/python benchmarks/route_order.py --routes 10
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from starlette.routing import BaseRoute, Match

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bayeux import Endpoint  # noqa: E402


def routed(routes: list[BaseRoute], scope: dict[str, Any]) -> BaseRoute:
    """The route Starlette's router picks for `scope` (its own loop, without calling it)."""
    for route in routes:
        match, _ = route.matches(scope)
        if match is Match.FULL:
            return route
    raise LookupError(scope["path"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--routes", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=20000)
    args = parser.parse_args()
    from fastapi import FastAPI

    app = FastAPI()
    for i in range(args.routes):
        app.add_api_route(f"/api/items{i}/{{item_id}}", lambda item_id: item_id, methods=["GET"])
    own = list(app.router.routes)
    ours = Endpoint().asgi().routes("/cometd")
    scope = {"type": "http", "path": "/cometd/connect", "root_path": "", "method": "POST"}
    for name, routes in (("after", own + ours), ("before", ours + own)):
        assert routed(routes, dict(scope)) in ours
        started = time.process_time()
        for _ in range(args.rounds):
            routed(routes, dict(scope))
        micros = (time.process_time() - started) / args.rounds * 1e6
        print(f"endpoint's routes {name} the {len(own)} of the application: {micros:.1f} us")


if __name__ == "__main__":
    main()
