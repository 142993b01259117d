"""Optional profile `cometd`: the extensions CometD clients register. A server that does not
negotiate an extension gets n/a for its rules, never a core failure."""

from __future__ import annotations

import time

from .client import expect
from .rules import Context, NotApplicable, rule
from .wire import Message

ACK = "_extensions_acknowledge"
TIMESYNC = "_extensions_timesync"


def _ack_enabled(reply: Message) -> bool:
    ack = (reply.get("ext") or {}).get("ack")
    return ack is True or (isinstance(ack, dict) and ack.get("enabled") is True)


@rule("ack.negotiated_and_batches_numbered", section=ACK, profile="cometd")
async def _(ctx: Context) -> None:
    """A server offering ack answers `ext.ack` in the handshake and numbers connect replies with
    an integer `ext.ack` batch id."""
    client = ctx.client()
    reply = await client.handshake(ext={"ack": True})
    expect(reply.get("successful") is True, "handshake failed", reply)
    if not _ack_enabled(reply):
        raise NotApplicable("the server does not offer the ack extension")
    first = await client.connect(advice={"timeout": 0}, ext={"ack": 0})
    batch = (first.get("ext") or {}).get("ack")
    expect(isinstance(batch, int) and not isinstance(batch, bool), "connect without ack id", first)


@rule("ack.unacknowledged_batch_redelivered", section=ACK, profile="cometd")
async def _(ctx: Context) -> None:
    """When a connect acknowledges an older batch than the last one sent (its reply was lost),
    the messages of the lost batch are sent again, in order."""
    client = ctx.client()
    reply = await client.handshake(ext={"ack": True})
    if not _ack_enabled(reply):
        raise NotApplicable("the server does not offer the ack extension")
    await client.subscribe(ctx.ch("ack"))
    first = await client.connect(advice={"timeout": 0}, ext={"ack": 0})
    acked = first["ext"]["ack"]
    publisher = await ctx.started()
    for n in (1, 2):
        await publisher.publish(ctx.ch("ack"), {"n": n})
    lost = await client.connect(advice={"timeout": 0}, ext={"ack": acked})
    got = [m["data"]["n"] for m in client.wire.inbox if m.get("channel") == ctx.ch("ack")]
    if ctx.transport == "websocket" and not got:
        got = [m["data"]["n"] for m in await client.deliveries(2, within=3)]
    expect(got == [1, 2], "messages not delivered with the connect", got)
    client.wire.inbox.clear()
    # The reply carrying that batch "was lost": acknowledge the old batch id again.
    await client.connect(advice={"timeout": 0}, ext={"ack": acked})
    again = [m["data"]["n"] for m in client.wire.inbox if m.get("channel") == ctx.ch("ack")]
    if ctx.transport == "websocket" and not again:
        again = [m["data"]["n"] for m in await client.deliveries(2, within=3)]
    expect(again == [1, 2], "lost batch not redelivered", {"lost_reply": lost, "got": again})


@rule("timesync.answered", section=TIMESYNC, profile="cometd")
async def _(ctx: Context) -> None:
    """A server offering timesync answers `ext.timesync: {tc, l, o}` with `{tc, ts, p, a}`,
    `tc` echoed and `ts` the server's clock in ms since the epoch."""
    client = ctx.client()
    tc = int(time.time() * 1000)
    reply = await client.handshake(ext={"timesync": {"tc": tc, "l": 0, "o": 0}})
    expect(reply.get("successful") is True, "handshake failed", reply)
    sync = (reply.get("ext") or {}).get("timesync")
    if sync is None:
        raise NotApplicable("the server does not answer the timesync extension")
    expect(
        isinstance(sync, dict)
        and all(isinstance(sync.get(k), int) for k in ("tc", "ts", "p", "a")),
        "timesync reply lacks tc, ts, p or a",
        sync,
    )
    expect(sync["tc"] == tc, "tc not echoed", sync)
    expect(abs(sync["ts"] - tc) < 60_000, "ts is not the server clock in ms", sync)
    expect(sync["a"] == tc - sync["ts"], "a is not tc + o + l - ts", sync)
