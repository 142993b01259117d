"""Deployment behind Debian's nginx, configured with interop/nginx/bayeux.conf (the file
docs/operations.md shows): the CometD JS client passes through it over long-polling and
WebSocket, and the server sees each client's address from nginx (--xheaders), which clients
cannot forge."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from bayeux.testing import start_cli, stop_process
from tests.helpers.http import request

from .conftest import INTEROP, assert_all_ok, run_node
from .nginx import SITE, nginx_in_front

HANDSHAKE = {
    "channel": "/meta/handshake",
    "version": "1.0",
    "supportedConnectionTypes": ["long-polling"],
}


@pytest.fixture
def proxied(tmp_path: Path) -> Iterator[tuple[str, str]]:
    server, direct = start_cli("--xheaders")
    nginx, url = nginx_in_front(direct, tmp_path)
    try:
        yield url, direct
    finally:
        nginx.terminate()
        nginx.wait(10)
        assert stop_process(server) == 0


@pytest.mark.parametrize("transport", ["long-polling", "websocket"])
def test_cometd_js_through_nginx(proxied: tuple[str, str], transport: str) -> None:
    url, _ = proxied
    results = run_node("cometd_scenarios.mjs", url, transport)
    assert_all_ok(results, 6)


def test_clients_cannot_forge_their_address_through_nginx(tmp_path: Path) -> None:
    server, direct = start_cli("--xheaders", "--max-handshakes-per-address", "3")
    nginx, url = nginx_in_front(direct, tmp_path)
    try:
        outcomes = []
        for i in range(4):
            forged = {"Content-Type": "application/json", "X-Real-IP": f"10.9.9.{i}"}
            reply = request(url, body=json.dumps([HANDSHAKE]), headers=forged).json()[0]
            outcomes.append(reply["successful"])
        # nginx replaced the forged header with the real address: one client, bounded.
        assert outcomes == [True, True, True, False]
    finally:
        nginx.terminate()
        nginx.wait(10)
        assert stop_process(server) == 0


def test_the_operations_page_shows_the_configuration_the_test_runs() -> None:
    page = (INTEROP.parent / "docs" / "operations.md").read_text()
    assert SITE.read_text() in page
