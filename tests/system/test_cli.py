"""`python -m bayeux`: documented settings, validation, and a graceful SIGTERM."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time

from bayeux.core.settings import setting_fields
from bayeux.testing import free_port, start_cli

from ..helpers.http import handshake, post_json


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bayeux", *args], capture_output=True, text=True, timeout=30
    )


def test_help_documents_every_setting_with_its_default() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    for f in setting_fields():
        option = "--" + f.name.replace("_", "-")
        assert option in text, option
        assert " ".join(f.metadata["help"].split())[:40] in text, option
    for option in ("--host", "--port", "--path", "--allowed-origins"):
        assert option in text
    assert (
        "(default: 30000)" in text and "(default: 10000)" in text
    )  # CometD's timeout, maxInterval


def test_invalid_settings_exit_2_with_a_message() -> None:
    result = run_cli("--timeout", "-5")
    assert result.returncode == 2 and "timeout must be >= 0" in result.stderr
    result = run_cli("--allowed-transports", "pigeon")
    assert result.returncode == 2 and "allowed_transports" in result.stderr
    result = run_cli("--port", "notanumber")
    assert result.returncode == 2


def test_app_hooks_are_checked_before_serving() -> None:
    for spec, problem in (
        ("nocolon", "expected MODULE:FUNCTION"),
        ("no_such_module_here:install", "cannot import"),
        ("tests.helpers.app_hooks:missing", "has no function missing"),
    ):
        result = run_cli("--app", spec, "--port", "0")
        assert result.returncode == 2 and problem in result.stderr, result.stderr


def test_sigterm_releases_held_connects_then_exits_cleanly() -> None:
    process, url = start_cli("--timeout", "20000")
    try:
        client_id = handshake(url)
        connect = [
            {"channel": "/meta/connect", "clientId": client_id, "connectionType": "long-polling"}
        ]
        post_json(url, connect)
        result: dict = {}

        def poll() -> None:
            started = time.monotonic()
            result["reply"] = post_json(url, connect).json()
            result["elapsed"] = time.monotonic() - started

        thread = threading.Thread(target=poll)
        thread.start()
        time.sleep(0.5)
        process.send_signal(signal.SIGTERM)
        thread.join(10)
        assert process.wait(10) == 0
    finally:
        if process.poll() is None:
            process.kill()
    assert result["elapsed"] < 5, "held connect was not released at shutdown"
    (reply,) = result["reply"]
    assert reply["successful"] is True
    assert reply["advice"]["reconnect"] == "retry"
    assert reply["advice"]["interval"] > 0, json.dumps(reply)


def test_a_sigterm_as_soon_as_the_port_opens_drains_the_server() -> None:
    """The signal handlers are in place before the port opens: a SIGTERM sent the moment a
    connection is accepted drains the server (exit 0), never kills it (-15)."""
    statuses = []
    for _ in range(8):
        port = free_port()
        process = subprocess.Popen(
            [sys.executable, "-m", "bayeux", "--port", str(port), "--log-level", "warning"]
        )
        try:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:  # bounded: 20 s for the server to listen
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.05).close()
                    break
                except OSError:
                    time.sleep(0.001)
            process.send_signal(signal.SIGTERM)
            statuses.append(process.wait(20))
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert statuses == [0] * 8
