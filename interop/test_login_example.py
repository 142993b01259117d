"""The login example (examples/login) run as its docstring says, used in headless Chromium."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bayeux.testing import free_port, stop_process, wait_for_port

from .conftest import assert_all_ok, run_node

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent


def test_login_example_in_chromium(tmp_path: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "examples" / "login" / "server.py"), "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        wait_for_port(port, process)
        shot = os.environ.get("BAYEUX_LOGIN_SCREENSHOT", str(tmp_path / "login.png"))
        results = run_node("login_ui.mjs", f"http://127.0.0.1:{port}", shot)
    finally:
        stop_process(process)
    assert_all_ok(results, 7)
