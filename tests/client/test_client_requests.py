"""What the client sends besides messages: its headers and cookies reach the server's policy
(the request context) on both transports, and TLS is verified against the context given."""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import pytest
import trustme

from bayeux import Endpoint, SecurityPolicy, ServerSession, Settings, current_request
from bayeux.client import BayeuxError, Client, TransportError
from bayeux.connection.listener import tls_context
from bayeux.testing import ServerThread


class NeedsKeyAndCookie(SecurityPolicy):
    def can_handshake(self, session: ServerSession, message: dict[str, Any]) -> bool:
        request = current_request()
        return (
            request is not None
            and request.header("x-api-key") == "k1"
            and request.cookie("team") == "blue"
        )


@pytest.mark.parametrize("transport", ["websocket", "long-polling"])
def test_headers_and_cookies_reach_the_policy(transport: str) -> None:
    endpoint = Endpoint(Settings(timeout=1500))
    endpoint.server.policy = NeedsKeyAndCookie()
    with ServerThread(endpoint=endpoint) as server:

        async def scenario() -> None:
            allowed = Client(
                server.url,
                transports=[transport],
                headers={"X-Api-Key": "k1"},
                cookies={"team": "blue"},
            )
            async with allowed:
                assert allowed.transport is not None and allowed.transport.name == transport
                await allowed.publish("/ok", 1)
            for headers, cookies in (({"X-Api-Key": "k1"}, {}), ({}, {"team": "blue"})):
                refused = Client(
                    server.url, transports=[transport], headers=headers, cookies=cookies
                )
                with pytest.raises(BayeuxError, match="403::Handshake denied"):
                    await refused.open()

        asyncio.run(asyncio.wait_for(scenario(), 30))


def test_tls_is_verified_against_the_given_context(tmp_path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    chain, key = tmp_path / "chain.pem", tmp_path / "key.pem"
    cert.private_key_pem.write_to_path(str(key))
    chain.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    server_context = tls_context(str(chain), str(key), None)
    with ServerThread(Settings(timeout=1500), ssl_options=server_context) as server:
        assert server.url.startswith("https://")

        async def scenario() -> None:
            trusting = ssl.create_default_context()
            ca.configure_trust(trusting)
            for transport in ("websocket", "long-polling"):
                got: list[dict] = []
                async with Client(server.url, transports=[transport], ssl=trusting) as c:
                    assert c.transport is not None and c.transport.name == transport
                    await c.subscribe("/tls", got.append)
                    await c.publish("/tls", transport)
                    while not got:
                        await asyncio.sleep(0.02)
                    assert got[0]["data"] == transport
            # The system's trust store does not know the test CA: refused.
            with pytest.raises(TransportError, match="no transport reached the server"):
                await Client(server.url, request_timeout=5).open()

        asyncio.run(asyncio.wait_for(scenario(), 30))
