"""`python -m bayeux` says what it serves when it starts: one banner, as text or as one JSON
record, with no secret in it."""

from __future__ import annotations

import json
import queue
import re
import subprocess
import sys
import threading
import time

import pytest

from bayeux import __version__
from bayeux.__main__ import BANNER_LIMITS, redacted_url
from bayeux.core.settings import Settings
from bayeux.testing import free_port, start_cli, stop_process, wait_for_port

from ..helpers.servers import ROOT

DEFAULT_TRANSPORTS = ", ".join(Settings().allowed_transports)


class Lines:
    """The lines a process writes to stderr, read as they come."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stderr is not None
        self.stream = process.stderr
        self.seen: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for raw in self.stream:
            self._queue.put(raw.decode("utf-8", "replace").rstrip("\n"))
        self._queue.put(None)

    def until(self, pattern: str, timeout: float = 15) -> str:
        """The first line (from the next one on) matching `pattern`."""
        deadline = time.monotonic() + timeout
        while True:
            line = self._queue.get(timeout=max(0.01, deadline - time.monotonic()))
            if line is None:
                raise AssertionError(f"stderr ended before {pattern!r}: {self.seen}")
            self.seen.append(line)
            if re.search(pattern, line):
                return line

    def rest(self, timeout: float = 10) -> list[str]:
        """Every line up to the end of the stream (the process has been stopped)."""
        deadline = time.monotonic() + timeout
        while (line := self._queue.get(timeout=max(0.01, deadline - time.monotonic()))) is not None:
            self.seen.append(line)
        return self.seen


def test_the_text_banner_names_url_transports_host_engine_workers_limits_and_paths() -> None:
    process, url = start_cli(
        "--health-path", "/health", "--metrics-path", "/metrics", "--max-sessions", "777",
        log_level="info", stderr=subprocess.PIPE,
    )  # fmt: skip
    lines = Lines(process)
    try:
        first = lines.until(r"serving")
        body = [lines.until(r"^  ") for _ in range(9)]
    finally:
        stop_process(process)
    port = url.split(":")[2].split("/")[0]
    assert first.endswith(f"INFO bayeux: bayeux {__version__} serving {url}")
    settings = Settings(max_sessions=777)
    limits = ", ".join(
        f"--{name.replace('_', '-')} {getattr(settings, name)}" for name in BANNER_LIMITS
    )
    assert body == [
        f"  transports: {DEFAULT_TRANSPORTS}",
        f"  host: standalone (HTTP/1.1 and WebSocket), listening on 127.0.0.1:{port}",
        "  engine: memory (sessions live in this process only)",
        "  workers: 1",
        f"  limits: {limits}",
        "  origins allowed: *",
        "  tls: off",
        "  health: /health",
        "  metrics: /metrics",
    ]
    assert "--max-sessions 777" in body[4]


def test_the_getting_started_page_shows_the_banner_as_it_is() -> None:
    page = (ROOT / "docs" / "getting-started.md").read_text()
    block = page[page.index("```text\nINFO bayeux:") + len("```text\n") :]
    documented = block[: block.index("```")].splitlines()
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "bayeux", "--port", str(port)], stderr=subprocess.PIPE
    )
    lines = Lines(process)
    try:
        wait_for_port(port, process)
        shown = [lines.until("serving")] + [lines.until(r"^  ") for _ in documented[1:]]
    finally:
        stop_process(process)
    for doc, real in zip(documented, shown, strict=True):
        doc = doc.replace("8080", str(port)).replace("0.2.0", __version__)
        if doc.endswith("..."):
            assert real.startswith(doc[:-3]), (doc, real)
        elif doc.startswith("INFO "):
            assert real.endswith(doc), (doc, real)
        else:
            assert real == doc


def test_the_json_banner_is_one_record_without_secrets() -> None:
    secret = "s3cr3t-pass"
    redis_url = f"redis://app:{secret}@127.0.0.1:1/0?password={secret}&db=0"
    process, url = start_cli(
        "--log-format", "json", "--redis", redis_url, "--redis-ready-wait", "0",
        "--health-path", "/healthz", "--allowed-origins", "https://a.example",
        log_level="info", stderr=subprocess.PIPE,
    )  # fmt: skip
    lines = Lines(process)
    try:
        lines.until(r'"event": "serving"')
    finally:
        stop_process(process)
    seen = lines.rest()
    records = [json.loads(line) for line in seen]  # every line is one JSON record
    (banner,) = [r for r in records if r.get("event") == "serving"]
    assert banner["message"] == f"bayeux serving {url}"
    assert banner["url"] == url
    assert banner["version"] == __version__
    assert banner["transports"] == list(Settings().allowed_transports)
    assert banner["host"] == "standalone"
    assert banner["listening"] == [url.split("/")[2]]
    assert banner["engine"] == "redis://app:***@127.0.0.1:1/0?password=***&db=0"
    assert banner["redis_prefix"] == "bayeux"
    assert banner["workers"] == 1
    assert banner["limits"] == {name: getattr(Settings(), name) for name in BANNER_LIMITS}
    assert banner["health_path"] == "/healthz"
    assert "metrics_path" not in banner
    assert banner["allowed_origins"] == "https://a.example"
    assert banner["tls"] is False
    assert not any(secret in line for line in seen)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        ("redis://user:pw@host:6379/2", "redis://user:***@host:6379/2"),
        ("rediss://:pw@host/0", "rediss://:***@host/0"),
        ("redis://justapassword@host", "redis://***@host"),
        ("redis://u:p@ss@host", "redis://u:***@host"),
        (
            "redis+sentinel://:pw@s1:26379,s2:26379/mymaster/1",
            "redis+sentinel://:***@s1:26379,s2:26379/mymaster/1",
        ),
        (
            "unix:///run/redis.sock?db=3&password=pw&client_name",
            "unix:///run/redis.sock?db=3&password=***&client_name",
        ),
        ("redis://host/0#fragment-secret", "redis://host/0"),
        ("redis://[::1/0", "redis://***"),
    ],
)
def test_redis_urls_are_shown_without_their_secrets(url: str, shown: str) -> None:
    assert redacted_url(url) == shown


def test_workers_log_one_banner_once_the_port_serves() -> None:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable, "-m", "bayeux", "--port", str(port), "--workers", "2",
            "--redis", "redis://127.0.0.1:1/0", "--redis-ready-wait", "0",
        ],
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )  # fmt: skip
    lines = Lines(process)
    try:
        banner = lines.until(r"bayeux \S+ serving")
        engine = lines.until(r"^  engine:")
        workers = lines.until(r"^  workers:")
        # The banner comes once a worker accepts connections.
        assert any(re.search(r"worker \d+ serving", line) for line in lines.seen)
        while sum(1 for line in lines.seen if re.search(r"worker \d+ serving", line)) < 2:
            lines.until(r"worker \d+ serving")
    finally:
        stop_process(process)
    seen = lines.rest()
    assert banner.endswith(f"serving http://127.0.0.1:{port}/cometd")
    assert engine == "  engine: redis redis://127.0.0.1:1/0 (key prefix bayeux)"
    assert workers == "  workers: 2"
    assert sum(1 for line in seen if re.search(r"bayeux \S+ serving", line)) == 1
