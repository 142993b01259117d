"""`python -m bayeux --admin-path`: refused without a token (whatever address it listens on),
with a weak one, or at a path that is the endpoint's; the token taken from the environment
when the option is not given; the banner names the page's path and never its token, nor does
--help print the environment's value."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from bayeux.testing import start_cli, stop_process
from tests.helpers.admin import TOKEN, api


def run(*options: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k != "BAYEUX_ADMIN_TOKEN"}
    return subprocess.run(
        [sys.executable, "-m", "bayeux", "--port", "0", *options],
        capture_output=True,
        text=True,
        timeout=30,
        env={**environment, **(env or {})},
    )


@pytest.mark.parametrize(
    ("options", "said"),
    [
        (("--admin-path", "/admin"), "--admin-path needs a token"),
        (("--admin-path", "/admin", "--host", "127.0.0.1"), "--admin-path needs a token"),
        (("--admin-path", "/admin", "--admin-token", "short"), "16 to 256 characters"),
        (("--admin-path", "/admin", "--admin-token", "x" * 15), "16 to 256 characters"),
        (("--admin-path", "/admin", "--admin-token", "with spaces inside!"), "without spaces"),
        (("--admin-token", TOKEN), "--admin-token needs --admin-path"),
        (("--admin-path", "/cometd", "--admin-token", TOKEN), "outside --path"),
        (("--admin-path", "/cometd/admin", "--admin-token", TOKEN), "outside --path"),
        (("--admin-path", "admin", "--admin-token", TOKEN), "--admin-path: the admin path"),
        (("--admin-path", "/a b", "--admin-token", TOKEN), "--admin-path: the admin path"),
        (("--admin-path", "/", "--admin-token", TOKEN), "--admin-path: the admin path"),
        (
            ("--admin-path", "/m", "--metrics-path", "/m", "--admin-token", TOKEN),
            "must differ from --health-path and --metrics-path",
        ),
    ],
)
def test_bad_admin_options_are_refused_before_serving(options: tuple[str, ...], said: str) -> None:
    result = run(*options)
    assert result.returncode == 2, result.stderr
    assert said in result.stderr
    assert TOKEN not in result.stderr


def test_a_weak_token_from_the_environment_is_refused_too() -> None:
    result = run("--admin-path", "/admin", env={"BAYEUX_ADMIN_TOKEN": "weak"})
    assert result.returncode == 2
    assert "--admin-token: the admin token must be 16 to 256 characters" in result.stderr


def test_the_token_comes_from_the_environment_and_never_shows() -> None:
    env = {**os.environ, "BAYEUX_ADMIN_TOKEN": TOKEN}
    process, url = start_cli(
        "--admin-path",
        "/ops",
        "--log-format",
        "json",
        log_level="info",
        env=env,
        stderr=subprocess.PIPE,
    )
    try:
        admin = url.replace("/cometd", "/ops")
        assert api(admin, "overview").status == 200
        assert api(admin, "overview", token=None).status == 401
    finally:
        stop_process(process)
    assert process.stderr is not None
    output = process.stderr.read().decode()
    assert TOKEN not in output
    (banner,) = [json.loads(line) for line in output.splitlines() if '"serving"' in line]
    assert banner["admin_path"] == "/ops"
    helped = run("--help", env={"BAYEUX_ADMIN_TOKEN": TOKEN, "COLUMNS": "200"})
    assert helped.returncode == 0 and "--admin-token" in helped.stdout
    assert "BAYEUX_ADMIN_TOKEN" in helped.stdout and TOKEN not in helped.stdout


def test_the_text_banner_names_the_admin_path() -> None:
    process, _ = start_cli(
        "--admin-path",
        "/admin",
        "--admin-token",
        TOKEN,
        log_level="info",
        stderr=subprocess.PIPE,
    )
    stop_process(process)
    assert process.stderr is not None
    output = process.stderr.read().decode()
    assert "\n  admin: /admin\n" in output + "\n"
    assert TOKEN not in output
