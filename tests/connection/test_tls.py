"""TLS on the standalone server: https:// and wss:// with a certificate the test makes (trustme),
and client certificates when a CA is given."""

from __future__ import annotations

import asyncio
import http.client
import json
import ssl
import subprocess
import sys
from pathlib import Path

import pytest
import tornado.httpclient
import tornado.websocket
import trustme

from bayeux.testing import start_cli, stop_process

from ..helpers.servers import next_frame

BARE_HANDSHAKE = {"channel": "/meta/handshake", "version": "1.0"}


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def start_tls(tmp_path: Path, ca: trustme.CA, *extra: str) -> tuple[subprocess.Popen, int]:
    cert = ca.issue_cert("127.0.0.1")
    chain, key = tmp_path / "chain.pem", tmp_path / "key.pem"
    cert.private_key_pem.write_to_path(str(key))
    chain.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    process, url = start_cli("--certfile", str(chain), "--keyfile", str(key), *extra)
    return process, int(url.split(":")[2].split("/")[0])


def client_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


def https_handshake(port: int, context: ssl.SSLContext) -> dict:
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=10)
    try:
        body = json.dumps([{**BARE_HANDSHAKE, "supportedConnectionTypes": ["long-polling"]}])
        conn.request("POST", "/cometd", body, {"Content-Type": "application/json"})
        return json.loads(conn.getresponse().read())[0]
    finally:
        conn.close()


def test_https_and_wss(tmp_path: Path, ca: trustme.CA) -> None:
    process, port = start_tls(tmp_path, ca)
    try:
        context = client_context(ca)
        assert https_handshake(port, context)["successful"] is True

        async def over_wss() -> dict:
            request = tornado.httpclient.HTTPRequest(
                f"wss://127.0.0.1:{port}/cometd", ssl_options=context
            )
            ws = await tornado.websocket.websocket_connect(request)
            await ws.write_message(
                json.dumps([{**BARE_HANDSHAKE, "supportedConnectionTypes": ["websocket"]}])
            )
            cid = json.loads(await next_frame(ws))[0]["clientId"]
            await ws.write_message(
                json.dumps(
                    [
                        {
                            "channel": "/meta/connect",
                            "clientId": cid,
                            "connectionType": "websocket",
                            "advice": {"timeout": 0},
                        },
                        {"channel": "/meta/subscribe", "clientId": cid, "subscription": "/tls"},
                        {"channel": "/tls", "clientId": cid, "data": "secret", "id": "p"},
                    ]
                )
            )
            received: list = []
            while not any("data" in m for m in received):
                received += json.loads(await next_frame(ws, 5))
            ws.close()
            return next(m for m in received if "data" in m)

        assert asyncio.run(over_wss()) == {"channel": "/tls", "data": "secret"}
        # Plain HTTP on the TLS port gets nothing Bayeux.
        plain = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
            plain.request("POST", "/cometd", "[]")
            plain.getresponse().read()
    finally:
        assert stop_process(process) == 0


def test_client_certificates_required_with_a_ca(tmp_path: Path, ca: trustme.CA) -> None:
    clients = trustme.CA()
    ca_file = tmp_path / "clients-ca.pem"
    clients.cert_pem.write_to_path(str(ca_file))
    process, port = start_tls(tmp_path, ca, "--ca-file", str(ca_file))
    try:
        anonymous = client_context(ca)
        with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
            https_handshake(port, anonymous)
        known = client_context(ca)
        clients.issue_cert("client@example").configure_cert(known)
        assert https_handshake(port, known)["successful"] is True
    finally:
        assert stop_process(process) == 0


def test_tls_options_are_checked_before_serving(tmp_path: Path) -> None:
    missing = subprocess.run(
        [sys.executable, "-m", "bayeux", "--certfile", str(tmp_path / "nope.pem")],
        capture_output=True,
        text=True,
    )
    assert missing.returncode == 2 and "TLS" in missing.stderr
    alone = subprocess.run(
        [sys.executable, "-m", "bayeux", "--keyfile", "k.pem"], capture_output=True, text=True
    )
    assert alone.returncode == 2 and "need --certfile" in alone.stderr


def test_a_client_that_never_starts_its_tls_handshake_is_dropped(
    tmp_path: Path, ca: trustme.CA
) -> None:
    # Silent sockets count against --max-connections while their handshake is awaited, and are
    # closed after --idle-timeout like a client that sends no request.
    import socket
    import time

    process, port = start_tls(tmp_path, ca, "--idle-timeout", "1000", "--max-connections", "2")
    try:
        time.sleep(1.5)  # the start-up probe's connection is gone by now, whatever it did
        silent = [socket.create_connection(("127.0.0.1", port)) for _ in range(2)]
        time.sleep(0.3)
        with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
            https_handshake(port, client_context(ca))  # a third: refused, both are counted
        started = time.monotonic()
        for sock in silent:
            sock.settimeout(5)
            assert sock.recv(1) == b""  # closed by the server
        assert time.monotonic() - started < 3
        assert https_handshake(port, client_context(ca))["successful"] is True
    finally:
        assert stop_process(process) == 0
