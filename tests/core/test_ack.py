"""The ack extension: batches numbered, redelivered until acknowledged."""

from __future__ import annotations

from bayeux import (
    BayeuxServer,
    Settings,
)

from ..helpers.core import HS, client, held, one, run

# -------------------------------------------------------------------------------------- ack


def test_ack_batches_and_redelivery() -> None:
    async def scenario() -> None:
        server = BayeuxServer()
        reply = await one(server, **HS, ext={"ack": True})
        assert reply["ext"]["ack"] is True
        cid = reply["clientId"]
        session = server.sessions[cid]
        assert session.connect_delivery_only
        pub = await client(server)
        await one(server, channel="/meta/subscribe", clientId=cid, subscription="/a")

        async def connect(ack: int):
            outcome = await server.handle(
                [
                    {
                        "channel": "/meta/connect",
                        "clientId": cid,
                        "connectionType": "long-polling",
                        "ext": {"ack": ack},
                    }
                ]
            )
            return server.finish_connect(held(outcome))

        deliveries, reply = await connect(0)
        assert deliveries == [] and reply["ext"]["ack"] == 1
        await one(server, channel="/a", clientId=pub, data=1)
        deliveries, reply = await connect(1)
        assert [d.message["data"] for d in deliveries] == [1] and reply["ext"]["ack"] == 2
        # The reply carrying batch 2 is lost: the client acknowledges 1 again.
        await one(server, channel="/a", clientId=pub, data=2)
        deliveries, reply = await connect(1)
        assert [d.message["data"] for d in deliveries] == [1, 2] and reply["ext"]["ack"] == 3
        deliveries, reply = await connect(3)
        assert session.ack is not None
        assert deliveries == [] and session.ack.pending() == 0

    run(scenario())


def test_no_ack_without_client_request_or_when_disabled() -> None:
    async def scenario() -> None:
        assert "ext" not in await one(BayeuxServer(), **HS)
        reply = await one(BayeuxServer(Settings(ack_extension=False)), **HS, ext={"ack": True})
        assert "ack" not in reply.get("ext", {})

    run(scenario())
