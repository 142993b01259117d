"""The timesync extension's replies."""

from __future__ import annotations

from bayeux import (
    BayeuxServer,
)
from bayeux.testing import ManualClock as Clock

from ..helpers.core import HS, held, one, run

# --------------------------------------------------------------------------------- timesync


def test_timesync_reply_fields() -> None:
    async def scenario() -> None:
        wall = Clock(2_000_000.000)
        server = BayeuxServer(wall_clock=wall)
        reply = await one(server, **HS, ext={"timesync": {"tc": 1_999_999_990, "l": 4, "o": 3}})
        assert reply["ext"]["timesync"] == {
            "tc": 1_999_999_990,
            "ts": 2_000_000_000,
            "p": 0,
            "a": -3,
        }
        cid = reply["clientId"]
        await server.handle(
            [{"channel": "/meta/connect", "clientId": cid, "connectionType": "long-polling"}]
        )
        outcome = await server.handle(
            [
                {
                    "channel": "/meta/connect",
                    "clientId": cid,
                    "connectionType": "long-polling",
                    "ext": {"timesync": {"tc": 1_999_999_995, "l": 5, "o": 0}},
                }
            ]
        )
        wall.now += 1.5  # the connect is held 1.5 s
        _, reply = server.finish_connect(held(outcome))
        assert reply["ext"]["timesync"] == {
            "tc": 1_999_999_995,
            "ts": 2_000_000_000,
            "p": 1500,
            "a": 0,
        }

    run(scenario())
