"""The stock ticker example (examples/stock_ticker) run as its docstring says: its page used in
headless Chromium over WebSocket and long-polling, its quotes asked with the Python client, its
feed stopping by itself and with the server; and docs/examples-stock-ticker.md showing its code
as it is."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from bayeux.client import BayeuxError, SyncClient
from bayeux.testing import free_port, stop_process, wait_for_port

from .conftest import ROOT, assert_all_ok, run_node

EXAMPLE = ROOT / "examples" / "stock_ticker"
PAGE = ROOT / "docs" / "examples-stock-ticker.md"


class Running:
    """The app's process, its port and the lines it printed so far."""

    def __init__(self, process: subprocess.Popen[bytes], port: int) -> None:
        self.process = process
        self.port = port
        self.lines: list[str] = []
        self.changed = threading.Condition()
        self.status: int | None = None
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            with self.changed:
                self.lines.append(raw.decode().rstrip("\n"))
                self.changed.notify_all()

    def wait_for_line(self, line: str, timeout: float = 15) -> None:
        with self.changed:
            assert self.changed.wait_for(lambda: line in self.lines, timeout), self.lines


@contextmanager
def ticker(*options: str) -> Iterator[Running]:
    """The app with `options` on a free port; stopped with SIGTERM when the block ends."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(EXAMPLE / "app.py"), "--port", str(port), *options],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    running = Running(process, port)
    try:
        wait_for_port(port, process)
        yield running
    finally:
        running.status = stop_process(process)
        running.reader.join(10)  # every line it printed is in running.lines


@pytest.mark.browser
@pytest.mark.parametrize("transport", ["websocket", "long-polling"])
def test_stock_ticker_in_chromium(tmp_path: Path, transport: str) -> None:
    with ticker("--interval", "0.1") as app:
        shot = os.environ.get("BAYEUX_TICKER_SCREENSHOT", str(tmp_path / "ticker.png"))
        page = f"http://127.0.0.1:{app.port}/?transport={transport}"
        results = run_node("stock_ticker_ui.mjs", page, transport, shot)
    assert_all_ok(results, 8)
    assert all(r["transport"] == transport for r in results)
    assert app.status == 0
    assert app.lines[:2] == [
        f"stock ticker on http://127.0.0.1:{app.port}/",
        "feed: open, 7200 ticks every 0.1s",
    ]
    assert len(app.lines) == 3, app.lines  # the feed did not end by itself
    assert re.fullmatch(r"feed: stopped after \d+ ticks", app.lines[2]), app.lines  # on_stop


def test_the_feed_stops_by_itself_and_the_quote_desk_saw_every_tick() -> None:
    with ticker("--interval", "0.02", "--ticks", "3") as app:
        app.wait_for_line("feed: done after 3 ticks")
        with SyncClient(f"http://127.0.0.1:{app.port}/cometd") as client:
            quote = client.remote_call("/service/quote/ACME", {})
            with pytest.raises(BayeuxError) as unknown:
                client.remote_call("/service/quote/NOPE", {})
            with pytest.raises(BayeuxError) as published:
                client.publish("/stock/ACME", {"price": 0.01, "tick": 4})
            after = client.remote_call("/service/quote/ACME", {})
    assert quote["symbol"] == "ACME" and quote["tick"] == 3 and quote["seen"] == 3
    assert isinstance(quote["price"], float) and quote["price"] > 0
    assert unknown.value.error == "400:/service/quote/NOPE:Unknown symbol"
    assert unknown.value.reply is not None and unknown.value.reply["data"] == {"symbol": "NOPE"}
    assert published.value.error == "404:/stock/ACME:Message deleted"
    assert after == quote  # the refused price never reached the desk
    assert app.status == 0
    assert app.lines == [
        f"stock ticker on http://127.0.0.1:{app.port}/",
        "feed: open, 3 ticks every 0.02s",
        "feed: done after 3 ticks",
        "feed: stopped after 3 ticks",
    ]


@pytest.mark.parametrize("options", [["--ticks", "0"], ["--interval", "-1"]])
def test_options_out_of_range_are_refused(options: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLE / "app.py"), *options],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 2
    assert "--interval and --ticks must be above 0" in result.stderr


def test_the_docs_page_shows_the_code_as_it_is() -> None:
    page = PAGE.read_text()
    blocks = re.findall(r"```(python|js)\n(.*?)\n```", page, re.DOTALL)
    sources = {
        "python": (EXAMPLE / "app.py").read_text(),
        "js": (EXAMPLE / "ticker.js").read_text(),
    }
    assert sorted(kind for kind, _ in blocks) == ["js", "python", "python"]
    for kind, code in blocks:
        assert len(code) > 300
        assert code in sources[kind], f"a {kind} block of {PAGE.name} is not in the example"
    shown = "\n".join(code for _, code in blocks)
    for decorator in ("@server.remote_call(", "@server.subscription(", "@bayeux.on_start"):
        assert decorator in shown
