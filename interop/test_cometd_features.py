"""The CometD JS client against the server-side API: policy, authorizer, message listener,
remoteCall answered / failed / timed out, timesync, and ack redelivery after a lost reply."""

from __future__ import annotations

import pytest

from .conftest import assert_all_ok, run_node
from .feature_server import feature_server


@pytest.fixture(scope="module")
def features_url():
    with feature_server() as server:
        yield server.url


@pytest.mark.parametrize(("transport", "scenarios"), [("long-polling", 9), ("websocket", 9)])
def test_cometd_js_against_server_api(features_url: str, transport: str, scenarios: int) -> None:
    assert_all_ok(run_node("cometd_features.mjs", features_url, transport), scenarios)


@pytest.mark.parametrize("transport", ["long-polling", "websocket"])
def test_faye_kicked_by_the_server_stops(features_url: str, transport: str) -> None:
    assert_all_ok(run_node("faye_kicked.mjs", features_url, transport), 1)
