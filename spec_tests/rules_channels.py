"""Rules for channel names and wildcard subscriptions."""

from __future__ import annotations

from .client import expect
from .rules import Context, rule

CHANNELS = "_bayeux_protocol_elements"


async def _deliveries_for(ctx: Context, pattern: str, published: list[str]) -> list[str]:
    subscriber = await ctx.started()
    reply = await subscriber.subscribe(pattern)
    expect(reply.get("successful") is True, f"subscribe to {pattern} failed", reply)
    publisher = await ctx.started()
    for channel in published:
        reply = await publisher.publish(channel, {"to": channel})
        expect(reply.get("successful") is True, f"publish to {channel} failed", reply)
    got = await subscriber.deliveries(len(published) + 1, within=1.2)
    return [m["channel"] for m in got]


@rule("channels.single_segment_wildcard", section=CHANNELS)
async def _(ctx: Context) -> None:
    """`/a/*` matches `/a/b` but not `/a`, `/ab` or `/a/b/c`."""
    got = await _deliveries_for(
        ctx, ctx.ch("w1/*"), [ctx.ch("w1"), ctx.ch("w1x"), ctx.ch("w1/b/c"), ctx.ch("w1/b")]
    )
    expect(got == [ctx.ch("w1/b")], "wrong channels matched", got)


@rule("channels.multi_segment_wildcard", section=CHANNELS)
async def _(ctx: Context) -> None:
    """`/a/**` matches `/a/b` and `/a/b/c` but not `/a` or `/ab`."""
    got = await _deliveries_for(
        ctx, ctx.ch("w2/**"), [ctx.ch("w2"), ctx.ch("w2x"), ctx.ch("w2/b"), ctx.ch("w2/b/c")]
    )
    expect(sorted(got) == [ctx.ch("w2/b"), ctx.ch("w2/b/c")], "wrong channels matched", got)


@rule("channels.mark_characters_accepted", section=CHANNELS)
async def _(ctx: Context) -> None:
    """Segments may use the grammar's mark characters: - _ ! ~ ( ) $ @."""
    channel = ctx.ch("foo-bar/(foo_bar)!~$@")
    got = await _deliveries_for(ctx, channel, [channel])
    expect(got == [channel], "channel with mark characters not delivered", got)
