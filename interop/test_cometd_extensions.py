"""The CometD JS client with the extensions it pairs with, in Node and in headless Chromium,
over long-polling and WebSocket (interop/scenarios/extensions.js against
interop/extensions_server.py): the server's `timestamp` on every message it sends (and the
client's TimeStampExtension accepted); binary data with the client's BinaryExtension both ways
(publishBinary and remoteCallBinary, ArrayBuffers received, the server's hooks seeing bytes,
bytes the server publishes), refusals of what is not Z85 or is over the bound; and, in Node,
the activity extension's two modes ending idle sessions.

Each scenario is its own test: the script runs them all once per transport."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .conftest import run_node
from .extensions_server import activity_server, extensions_server

TRANSPORTS = ["long-polling", "websocket"]
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")

MAIN = [
    "every_message_from_the_server_is_stamped",
    "the_clients_timestamp_extension_is_accepted",
    "publish_binary_arrives_as_an_array_buffer",
    "the_server_hooks_see_bytes",
    "remote_call_binary_answers_bytes",
    "bytes_the_server_publishes_arrive_as_an_array_buffer",
    "what_is_not_z85_is_refused",
    "binary_data_over_the_limit_is_refused",
]
ACTIVITY = [
    "a_client_that_only_heartbeats_is_disconnected",
    "a_client_that_publishes_stays",
    "a_client_that_only_receives_is_disconnected_in_client_mode",
    "a_client_that_only_receives_stays_in_client_server_mode",
    "a_silent_session_is_disconnected_in_client_server_mode",
]

Results = Callable[[str], dict[str, dict]]


def runner(run: Callable[[str], list[dict]]) -> Results:
    """Runs every scenario once per transport (at the first test asking), by name."""
    done: dict[str, dict[str, dict]] = {}

    def results(transport: str) -> dict[str, dict]:
        if transport not in done:
            done[transport] = {line["name"]: line for line in run(transport)}
        return done[transport]

    return results


def assert_passed(results: dict[str, dict], scenario: str) -> None:
    assert scenario in results, f"{scenario} did not run; ran {sorted(results)}"
    result = results[scenario]
    assert result["ok"], f"{scenario} ({result['transport']}): {result.get('error')}"


@pytest.fixture(scope="module")
def in_node() -> Iterator[Results]:
    with (
        extensions_server() as main,
        activity_server("client") as client_mode,
        activity_server("client-server") as client_server_mode,
    ):
        urls = (main.url, client_mode.url, client_server_mode.url)
        yield runner(lambda transport: run_node("cometd_extensions.mjs", transport, *urls))


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("scenario", MAIN + ACTIVITY)
def test_cometd_js_extensions_in_node(in_node: Results, transport: str, scenario: str) -> None:
    assert_passed(in_node(transport), scenario)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_every_node_scenario_is_listed(in_node: Results, transport: str) -> None:
    assert sorted(in_node(transport)) == sorted(MAIN + ACTIVITY)


@pytest.fixture(scope="module")
def in_chromium() -> Iterator[Results]:
    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"{CHROMIUM} missing: ./run-tests installs Debian's chromium")
    with extensions_server() as main:
        page = main.origin + "/extensions.html"
        yield runner(lambda transport: run_node("browser_run.mjs", page, transport))


@pytest.mark.browser
@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("scenario", MAIN)
def test_cometd_js_extensions_in_chromium(
    in_chromium: Results, transport: str, scenario: str
) -> None:
    results = in_chromium(transport)
    assert_passed(results, scenario)
    assert results[scenario]["browser"] == "chromium"


@pytest.mark.browser
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_every_chromium_scenario_is_listed(in_chromium: Results, transport: str) -> None:
    assert sorted(in_chromium(transport)) == sorted(MAIN)
