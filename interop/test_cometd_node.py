"""The official CometD JavaScript client (npm `cometd` through `cometd-nodejs-client`) in Node."""

from __future__ import annotations

import pytest

from .conftest import assert_all_ok, run_node

SCENARIOS = 6


@pytest.mark.parametrize("transport", ["long-polling", "websocket"])
def test_cometd_js_client_in_node(bayeux_url: str, transport: str) -> None:
    results = run_node("cometd_scenarios.mjs", bayeux_url, transport)
    assert_all_ok(results, SCENARIOS)
