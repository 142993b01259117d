"""--max-sessions-per-user end to end: `python -m bayeux` with a policy that associates each
handshake with its `ext.user`, and the Python client over long-polling and WebSocket. A user's
sessions past the bound are refused with 403::Too many sessions for this user; once one of
them ends, there is room again."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator

import pytest

from bayeux.client import BayeuxError, Client
from bayeux.testing import start_cli, stop_process

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    process, url = start_cli(
        *("--max-sessions-per-user", "2", "--app", "tests.helpers.app_hooks:install_users"),
        cwd=ROOT,
    )
    try:
        yield url
    finally:
        stop_process(process)


@pytest.mark.parametrize("transport", ["long-polling", "websocket"])
def test_a_users_session_past_the_bound_is_refused_with_403(url: str, transport: str) -> None:
    user = f"dave-{transport}"

    def client() -> Client:
        return Client(url, transports=[transport], handshake_ext={"user": user})

    async def scenario() -> None:
        first, second = client(), client()
        await first.open()
        await second.open()
        refused = client()
        with pytest.raises(BayeuxError, match="403::Too many sessions for this user") as error:
            await refused.open()
        assert error.value.code == 403
        assert refused.state == "closed"
        # Another user is not affected.
        other = Client(url, transports=[transport], handshake_ext={"user": f"eve-{transport}"})
        await other.open()
        await other.disconnect()
        # One of dave's sessions ends (disconnect): there is room for one more.
        await first.disconnect()
        again = client()
        await again.open()
        await again.disconnect()
        await second.disconnect()

    asyncio.run(asyncio.wait_for(scenario(), 30))
