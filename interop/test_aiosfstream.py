"""aiosfstream-ng, a Salesforce Streaming API client, against this server over its real code
path: its own URL scheme (`<instance_url>/cometd/<api version>`), its replay extension
(`ext.replay` on subscribe, replay ids read from `data.event.replayId`) and its replay fallback
on an id the server no longer retains. Only the authenticator is ours: it points the client at
the local server instead of login.salesforce.com."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from typing import Any

import pytest
from aiosfstream_ng import Client, ReplayMarker, ReplayOption
from aiosfstream_ng.auth import AuthenticatorBase

from bayeux.testing import start_cli, stop_process

CHANNEL = "/event/Order_Placed__e"


class LocalAuthenticator(AuthenticatorBase):
    """Authenticates against nothing: the 'instance' is the local server."""

    def __init__(self, instance_url: str) -> None:
        super().__init__()
        self._instance_url = instance_url

    async def _authenticate(self) -> tuple[int, dict[str, Any]]:
        return 200, {
            "access_token": "local-test-token",
            "token_type": "Bearer",
            "instance_url": self._instance_url,
        }


@pytest.fixture(scope="module")
def replay_server():
    process, url = start_cli("--replay-channels", "/event/**")
    try:
        yield url
    finally:
        assert stop_process(process) == 0


def _post(url: str, messages: list[dict]) -> list[dict]:
    request = urllib.request.Request(
        url, json.dumps(messages).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def publish(url: str, *payloads: Any) -> None:
    """Publishes each payload on CHANNEL from a plain long-polling client."""
    (reply,) = _post(
        url,
        [
            {
                "channel": "/meta/handshake",
                "version": "1.0",
                "supportedConnectionTypes": ["long-polling"],
            }
        ],
    )
    for payload in payloads:
        (ack,) = _post(url, [{"channel": CHANNEL, "clientId": reply["clientId"], "data": payload}])
        assert ack["successful"] is True, ack


async def receive(client: Client, count: int) -> list[dict]:
    messages: list[dict[str, Any]] = []
    while len(messages) < count:
        message = await asyncio.wait_for(client.receive(), 10)
        if message.get("channel") == CHANNEL:
            messages.append(message)
    return messages


async def _resume_scenario(url: str) -> None:
    instance = url.rsplit("/cometd", 1)[0]
    markers: dict[str, ReplayMarker] = {}
    publish(url, {"n": 1}, {"n": 2})
    async with Client(LocalAuthenticator(instance), replay=markers) as client:
        # No marker yet: aiosfstream asks for new events only (-1) by default...
        await client.subscribe(CHANNEL)
        publish(url, {"n": 3})
        (live,) = await receive(client, 1)
        assert live["data"]["payload"] == {"n": 3}
        assert isinstance(live["data"]["event"]["replayId"], int)
        assert live["data"]["event"]["createdDate"].endswith("Z")
    assert markers[CHANNEL].replay_id == live["data"]["event"]["replayId"]
    # ... away for a while; what is published meanwhile is what the next run must get.
    publish(url, {"n": 4}, {"n": 5})
    async with Client(LocalAuthenticator(instance), replay=markers) as client:
        await client.subscribe(CHANNEL)
        missed = await receive(client, 2)
        assert [m["data"]["payload"] for m in missed] == [{"n": 4}, {"n": 5}]
        publish(url, {"n": 6})
        (live,) = await receive(client, 1)
        assert live["data"]["payload"] == {"n": 6}  # no gap, no duplicate at the seam


async def _fallback_scenario(url: str) -> None:
    instance = url.rsplit("/cometd", 1)[0]
    # A marker from before this server's history began: the subscribe fails with Salesforce's
    # 400 and aiosfstream resubscribes with its fallback (everything retained).
    markers = {CHANNEL: ReplayMarker(date="2020-01-01T00:00:00.000Z", replay_id=12)}
    async with Client(
        LocalAuthenticator(instance), replay=markers, replay_fallback=ReplayOption.ALL_EVENTS
    ) as client:
        await client.subscribe(CHANNEL)
        retained = await receive(client, 6)
        assert [m["data"]["payload"]["n"] for m in retained] == [1, 2, 3, 4, 5, 6]


def test_aiosfstream_resumes_from_its_replay_id_and_falls_back_on_an_expired_one(
    replay_server: str,
) -> None:
    asyncio.run(_resume_scenario(replay_server))
    asyncio.run(_fallback_scenario(replay_server))
