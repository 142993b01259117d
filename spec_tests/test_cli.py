"""`python -m spec_tests` as a user runs it: its exit status tells a pass from a run that
checked nothing."""

from __future__ import annotations

import pytest

from bayeux import Settings
from bayeux.testing import ServerThread

from .__main__ import INCOMPLETE, main


def test_a_run_that_exercised_no_rule_is_incomplete(capsys: pytest.CaptureFixture[str]) -> None:
    no_websocket = Settings(allowed_transports=("long-polling",))
    with ServerThread(no_websocket) as server:
        status = main([server.url, "--transport", "websocket", "--profile", "core"])
    assert status == INCOMPLETE == 3
    assert "no rule was exercised" in capsys.readouterr().err


def test_a_run_that_passed_exits_zero() -> None:
    with ServerThread(Settings(timeout=3000, max_interval=2000)) as server:
        status = main([server.url, "--transport", "long-polling", "--only", "handshake."])
    assert status == 0


def test_help_documents_the_exit_statuses(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "3 when the run is incomplete" in text
