"""The Faye client (npm `faye`) in Node."""

from __future__ import annotations

import pytest

from .conftest import assert_all_ok, run_node

SCENARIOS = 4


@pytest.mark.parametrize("transport", ["long-polling", "websocket"])
def test_faye_client_in_node(bayeux_url: str, transport: str) -> None:
    results = run_node("faye_scenarios.mjs", bayeux_url, transport)
    assert_all_ok(results, SCENARIOS)
