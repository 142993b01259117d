"""Decorators end to end: examples/decorators.py prints what it should and docs/server-api.md
shows it as it is; a served endpoint answers template services, runs listeners and
subscriptions, and starts and stops a service object with itself, for a client over HTTP."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import bayeux
from bayeux import Endpoint, ServiceError, Settings
from bayeux.testing import ServerThread

from ..helpers.http import handshake, post_json

ROOT = Path(__file__).parent.parent.parent


def test_the_decorators_example_prints_what_it_should() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "decorators.py")],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "session added: local",
        "orders: open",
        "session added: remote",
        "refused: 404:/stock/NOPE:Message deleted",
        "tick ACME: 43.0",
        "reply: {'symbol': 'ACME', 'total': 86.0}",
        "reply: {'symbol': 'NOPE'}",
        "reply: {'order': 1, 'symbol': 'ACME', 'side': 'buy'}",
        "orders: closed with 1 orders",
    ]


def test_the_server_api_page_shows_the_decorators_example_as_it_is() -> None:
    page = (ROOT / "docs" / "server-api.md").read_text()
    section = page[page.index("## Decorators and template channels") :]
    snippet = section[section.index("```python\n") + len("```python\n") :]
    snippet = snippet[: snippet.index("\n```")]
    assert len(snippet) > 500
    assert snippet in (ROOT / "examples" / "decorators.py").read_text()


class Desk:
    def __init__(self) -> None:
        self.events: list[Any] = []
        self.ticks = threading.Event()

    @bayeux.remote_call("/service/price/{symbol}")
    async def price(self, session, data, symbol):
        if symbol != "ACME":
            raise ServiceError("Unknown symbol", {"symbol": symbol})
        return {"symbol": symbol, "total": 42 * data["quantity"]}

    @bayeux.listener("/stock/{symbol}")
    def known(self, session, channel, message, symbol):
        return symbol == "ACME"

    @bayeux.subscription("/stock/{symbol}")
    def tick(self, message, symbol):
        self.events.append(("tick", symbol, message["data"]))
        self.ticks.set()

    @bayeux.on_start
    async def open(self) -> None:
        self.events.append("start")

    @bayeux.on_stop
    def close(self) -> None:
        self.events.append("stop")


def test_an_http_client_reaches_decorated_functions() -> None:
    endpoint = Endpoint(Settings(timeout=1000))
    desk = endpoint.add_services(Desk())

    @endpoint.service("/service/engines/{engine_id}")
    def engine(session, message, engine_id):
        return {"engine": engine_id, "asked": message["data"]}

    with ServerThread(endpoint=endpoint) as server:
        url = server.url
        client_id = handshake(url)
        connect = {"channel": "/meta/connect", "clientId": client_id}
        connect["connectionType"] = "long-polling"
        post_json(url, [connect])  # the first connect is answered at once

        def send(**message: Any) -> list[dict[str, Any]]:
            return post_json(url, [{**message, "clientId": client_id}]).json()

        assert send(channel="/service/engines/e7", data="status?", id="1")[0]["successful"]
        send(channel="/service/price/ACME", data={"quantity": 2}, id="2")
        send(channel="/service/price/NOPE", data={"quantity": 2}, id="3")
        replies: dict[str, dict[str, Any]] = {}
        deadline = time.monotonic() + 10
        while len(replies) < 3 and time.monotonic() < deadline:
            for m in post_json(url, [connect]).json():
                if m["channel"].startswith("/service/"):
                    replies[m["id"]] = m
        assert replies["1"]["data"] == {"engine": "e7", "asked": "status?"}
        assert replies["2"]["data"] == {"symbol": "ACME", "total": 84}
        assert replies["3"]["error"] == "400:/service/price/NOPE:Unknown symbol"
        assert send(channel="/stock/NOPE", data=1)[0]["error"] == "404:/stock/NOPE:Message deleted"
        assert send(channel="/stock/ACME", data=43)[0]["successful"] is True
        assert desk.ticks.wait(10)
        literal = send(channel="/service/engines/{engine_id}", data=None)[0]
        assert literal["error"].startswith("405:")
        assert desk.events == ["start", ("tick", "ACME", 43)]
    assert desk.events[-1] == "stop"
