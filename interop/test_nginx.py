"""Deployment behind Debian's nginx, configured with interop/nginx/bayeux.conf (the file the
README shows): the CometD JS client passes through it over long-polling and WebSocket, and the
server sees each client's address from nginx (--xheaders), which clients cannot forge."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from bayeux.testing import free_port, start_cli, stop_process, wait_for_port
from tests.conftest import request

from .conftest import INTEROP, assert_all_ok, run_node

SITE = INTEROP / "nginx" / "bayeux.conf"
HANDSHAKE = {
    "channel": "/meta/handshake",
    "version": "1.0",
    "supportedConnectionTypes": ["long-polling"],
}


def nginx_in_front(bayeux_url: str | list[str], work: Path) -> tuple[subprocess.Popen, str]:
    """nginx on a free loopback port proxying to `bayeux_url` (several: balanced round-robin,
    nginx's default), with the README's site config."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        raise RuntimeError("nginx is not installed; ./run-tests installs Debian's nginx")
    port = free_port()
    urls = [bayeux_url] if isinstance(bayeux_url, str) else bayeux_url
    servers = "\n".join(f"    server 127.0.0.1:{url.split(':')[2].split('/')[0]};" for url in urls)
    site = (
        SITE.read_text()
        .replace("    server 127.0.0.1:@BAYEUX_PORT@;", servers)
        .replace("@NGINX_PORT@", str(port))
    )
    (work / "site.conf").write_text(site)
    temp = "\n".join(
        f"    {kind}_temp_path {work / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    (work / "nginx.conf").write_text(
        f"""daemon off;
worker_processes 1;
pid {work / "nginx.pid"};
error_log {work / "error.log"} warn;
{"user root;" if os.geteuid() == 0 else ""}
events {{ worker_connections 1024; }}
http {{
    access_log {work / "access.log"};
{temp}
    include {work / "site.conf"};
}}
"""
    )
    process = subprocess.Popen([nginx, "-p", str(work), "-c", str(work / "nginx.conf")])
    wait_for_port(port, process)
    return process, f"http://127.0.0.1:{port}/cometd"


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


def test_readme_shows_the_configuration_the_test_runs() -> None:
    readme = (INTEROP.parent / "README.md").read_text()
    assert SITE.read_text() in readme
