"""Optional profile `replay`: durable replay as Salesforce Streaming API clients speak it
(`ext.replay` on the handshake and on /meta/subscribe; events shaped as `data.event.replayId`,
`data.event.createdDate`, `data.payload`). The rules publish on `/event/...` channels, where
Salesforce's platform events live; a server that does not answer `ext.replay` in the handshake,
or has replay off there, gets n/a."""

from __future__ import annotations

import secrets
from typing import Any

from .client import Client, expect
from .rules import Context, NotApplicable, rule

SECTION = "_extensions_replay"
INVALID_PREFIX = "400::The replayId {"


def _channel() -> str:
    return f"/event/Spec_{secrets.token_hex(4)}__e"


async def _offering(ctx: Context) -> Client:
    """A started client whose handshake asked for replay; n/a when the server does not offer it."""
    client = ctx.client()
    reply = await client.handshake(ext={"replay": True})
    expect(reply.get("successful") is True, "handshake failed", reply)
    if (reply.get("ext") or {}).get("replay") is not True:
        raise NotApplicable("the server does not answer ext.replay in the handshake")
    first = await client.connect(advice={"timeout": 0})
    expect(first.get("successful") is True, "first connect failed", first)
    return client


async def _publish_events(ctx: Context, channel: str, count: int) -> list[dict[str, Any]]:
    """Publishes `count` events and returns them as a subscriber received them (n/a when the
    channel has no replay: the events come back unshaped)."""
    watcher = await _offering(ctx)
    expect((await watcher.subscribe(channel))["successful"] is True, "subscribe failed")
    publisher = await ctx.started()
    for n in range(count):
        ack = await publisher.publish(channel, {"n": n})
        expect(ack.get("successful") is True, "publish failed", ack)
    got = await watcher.deliveries(count, within=5)
    expect(len(got) == count, "events not delivered", got)
    if not all(isinstance((m.get("data") or {}).get("event"), dict) for m in got):
        raise NotApplicable(f"replay is off on {channel}")
    return got


def _payloads(messages: list[dict[str, Any]]) -> list[Any]:
    return [m["data"]["payload"]["n"] for m in messages]


@rule("replay.handshake_answered", section=SECTION, profile="replay")
async def _(ctx: Context) -> None:
    """A server offering replay answers a handshake's `ext.replay: true` with `ext.replay: true`."""
    await _offering(ctx)


@rule("replay.events_shaped", section=SECTION, profile="replay")
async def _(ctx: Context) -> None:
    """Events on replay channels carry an integer `data.event.replayId`, increasing from one
    event to the next, a `data.event.createdDate` in ISO 8601 UTC, and the published data under
    `data.payload`."""
    await _offering(ctx)
    got = await _publish_events(ctx, _channel(), 2)
    ids = [m["data"]["event"]["replayId"] for m in got]
    expect(all(isinstance(i, int) and not isinstance(i, bool) for i in ids), "replayId type", ids)
    expect(ids[0] < ids[1], "replay ids do not increase", ids)
    dates = [m["data"]["event"].get("createdDate") for m in got]
    expect(all(isinstance(d, str) and d.endswith("Z") for d in dates), "createdDate", dates)
    expect(_payloads(got) == [0, 1], "payload not under data.payload", got)


@rule("replay.all_retained_then_live", section=SECTION, profile="replay")
async def _(ctx: Context) -> None:
    """A subscribe with replay id -2 gets every retained event, in order, then the live ones,
    with nothing missing or repeated between them."""
    channel = _channel()
    await _publish_events(ctx, channel, 3)
    late = await _offering(ctx)
    reply = await late.subscribe(channel, ext={"replay": {channel: -2}})
    expect(reply.get("successful") is True, "subscribe with -2 failed", reply)
    publisher = await ctx.started()
    await publisher.publish(channel, {"n": 3})
    got = await late.deliveries(4, within=5)
    expect(_payloads(got) == [0, 1, 2, 3], "not every event once, in order", got)
    more = await late.deliveries(1, within=0.5)
    expect(not more, "an event was delivered twice", more)


@rule("replay.resumes_after_an_id", section=SECTION, profile="replay")
async def _(ctx: Context) -> None:
    """A subscribe with the replay id of an event gets the events after it, and -1 only new
    events."""
    channel = _channel()
    got = await _publish_events(ctx, channel, 3)
    resumed = await _offering(ctx)
    first_id = got[0]["data"]["event"]["replayId"]
    reply = await resumed.subscribe(channel, ext={"replay": {channel: first_id}})
    expect(reply.get("successful") is True, "subscribe with a replay id failed", reply)
    expect(_payloads(await resumed.deliveries(2, within=5)) == [1, 2], "not the events after it")
    fresh = await _offering(ctx)
    reply = await fresh.subscribe(channel, ext={"replay": {channel: -1}})
    expect(reply.get("successful") is True, "subscribe with -1 failed", reply)
    old = await fresh.deliveries(1, within=0.5)
    expect(not old, "-1 replayed old events", old)


@rule("replay.unknown_id_refused", section=SECTION, profile="replay")
async def _(ctx: Context) -> None:
    """A replay id the server does not retain fails the subscribe with a 400 whose text is
    Salesforce's ("The replayId {X} you provided was invalid..."): clients' replay fallback
    depends on it."""
    channel = _channel()
    await _publish_events(ctx, channel, 1)
    client = await _offering(ctx)
    reply = await client.subscribe(channel, ext={"replay": {channel: 1}})
    expect(reply.get("successful") is False, "an unknown replay id was accepted", reply)
    expect(
        str(reply.get("error", "")).startswith(INVALID_PREFIX + "1} you provided was invalid"),
        "not Salesforce's error text",
        reply,
    )
