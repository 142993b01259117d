"""Property tests: whatever a client sends, the core answers with well-formed Bayeux replies and
never raises, and other sessions keep working."""

from __future__ import annotations

import asyncio

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bayeux import BayeuxServer, Settings
from bayeux.core.message import ProtocolError, batch_from
from bayeux.schema import server_message_errors

from ..helpers.inputs import CHANNELS, FIELD, JSON_VALUES


@st.composite
def messages(draw, client_ids):
    message = {"channel": draw(CHANNELS)}
    for field in draw(st.lists(FIELD, max_size=6, unique=True)):
        message[field] = draw(JSON_VALUES)
    if draw(st.booleans()) and client_ids:
        message["clientId"] = draw(st.sampled_from(client_ids))
    if draw(st.booleans()):
        message["ext"] = {"ack": draw(JSON_VALUES), "timesync": draw(JSON_VALUES)}
    return message


async def _session(server: BayeuxServer) -> str:
    outcome = await server.handle(
        [
            {
                "channel": "/meta/handshake",
                "version": "1.0",
                "supportedConnectionTypes": ["long-polling"],
            }
        ]
    )
    return outcome.replies[0]["clientId"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_batch_gets_well_formed_replies_and_spares_other_sessions(data) -> None:
    async def scenario() -> None:
        server = BayeuxServer(Settings(max_queue=50))
        bystander, victim = await _session(server), await _session(server)
        await server.handle(
            [{"channel": "/meta/subscribe", "clientId": bystander, "subscription": "/watch"}]
        )
        batch = data.draw(st.lists(messages([victim, "nope"]), min_size=1, max_size=6))
        outcome = await server.handle(batch)
        replies = list(outcome.replies)
        if outcome.connect is not None:
            deliveries, reply = server.finish_connect(outcome.connect)
            replies += [d.message for d in deliveries] + [reply]
        for reply in replies:
            assert server_message_errors(reply) == [], reply
        # The bystander is untouched and still served.
        assert bystander in server.sessions
        await server.handle([{"channel": "/watch", "clientId": bystander, "data": "ok"}])
        assert [d.message["data"] for d in server.sessions[bystander].drain()] == ["ok"]

    asyncio.run(scenario())


@given(value=JSON_VALUES)
def test_batch_from_accepts_or_refuses_cleanly(value) -> None:
    try:
        batch = batch_from(value, 1000)
    except ProtocolError:
        return
    assert all(isinstance(m, dict) and isinstance(m["channel"], str) for m in batch)
