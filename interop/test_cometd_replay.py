"""The CometD JS client with a replay extension (as Salesforce's EMP connector adds one) in
Node: everything retained with -2, then back with its last replay id after missing some."""

from __future__ import annotations

import pytest

from bayeux.testing import start_cli, stop_process

from .conftest import assert_all_ok, run_node


@pytest.fixture(scope="module")
def replay_url():
    process, url = start_cli("--replay-channels", "/event/**")
    try:
        yield url
    finally:
        assert stop_process(process) == 0


@pytest.mark.parametrize("transport", ["long-polling", "websocket"])
def test_cometd_js_client_resumes_from_its_replay_id(replay_url: str, transport: str) -> None:
    assert_all_ok(run_node("cometd_replay.mjs", replay_url, transport), 1)
