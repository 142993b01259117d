"""Rules for publishing and delivery, and for /service channels."""

from __future__ import annotations

from .client import expect
from .rules import Context, rule
from .wire import Message

PUBLISH = "_bayeux_publish"


@rule("publish.reply_successful_with_id", section=PUBLISH)
async def _(ctx: Context) -> None:
    """A publish is answered on its channel with successful=true and the request's id, and the
    reply carries no data (it is not a delivery)."""
    client = await ctx.started()
    reply = await client.publish(ctx.ch("pub"), {"x": 1}, id="pub7")
    expect(reply.get("channel") == ctx.ch("pub"), "reply on another channel", reply)
    expect(reply.get("successful") is True and reply.get("id") == "pub7", "bad reply", reply)
    expect("data" not in reply, "publish reply carries data", reply)


@rule("publish.delivered_to_subscriber", section="_bayeux_publish")
async def _(ctx: Context) -> None:
    """A message published to a channel is delivered to its subscriber with channel and data,
    and without the publisher's clientId."""
    subscriber = await ctx.started()
    await subscriber.subscribe(ctx.ch("deliver"))
    publisher = await ctx.started()
    await publisher.publish(ctx.ch("deliver"), {"text": "hi"})
    got = await subscriber.deliveries(1)
    expect(len(got) == 1, "nothing delivered")
    message = got[0]
    expect(
        message.get("channel") == ctx.ch("deliver") and message.get("data") == {"text": "hi"},
        "wrong delivery",
        message,
    )
    expect(
        message.get("clientId") != publisher.client_id,
        "delivery leaks the publisher's clientId",
        message,
    )


@rule("publish.delivered_once_across_overlapping_subscriptions", section=PUBLISH)
async def _(ctx: Context) -> None:
    """A session subscribed through several matching patterns receives a message once."""
    subscriber = await ctx.started()
    for pattern in (ctx.ch("once/a"), ctx.ch("once/*"), ctx.ch("once/**"), ctx.ch("**")):
        reply = await subscriber.subscribe(pattern)
        expect(reply.get("successful") is True, "subscribe failed", reply)
    publisher = await ctx.started()
    await publisher.publish(ctx.ch("once/a"), {"n": 1})
    got = await subscriber.deliveries(2, within=1.5)
    expect(len(got) == 1, f"delivered {len(got)} times", got)


@rule("publish.order_preserved", section=PUBLISH)
async def _(ctx: Context) -> None:
    """Messages from one publisher on one channel reach a subscriber in publish order."""
    subscriber = await ctx.started()
    await subscriber.subscribe(ctx.ch("order"))
    publisher = await ctx.started()
    await publisher.send(
        *[
            {
                "channel": ctx.ch("order"),
                "clientId": publisher.client_id,
                "data": {"i": i},
                "id": f"o{i}",
            }
            for i in range(50)
        ]
    )
    got = await subscriber.deliveries(50, within=10)
    expect(
        [m["data"]["i"] for m in got] == list(range(50)),
        "out of order or missing",
        [m["data"]["i"] for m in got],
    )


@rule("publish.unknown_client_refused", section=PUBLISH, profile="robustness")
async def _(ctx: Context) -> None:
    """A publish with an unknown (forged) clientId is unsuccessful and not delivered. The
    specification lets servers accept publishes from unconnected clients, so this is not core."""
    subscriber = await ctx.started()
    await subscriber.subscribe(ctx.ch("forged"))
    forger = ctx.client()
    forger.client_id = "0123456789abcdef0123456789abcdef"
    reply = await forger.publish(ctx.ch("forged"), {"evil": True})
    expect(reply.get("successful") is False, "publish with unknown clientId accepted", reply)
    got = await subscriber.deliveries(1, within=0.7)
    expect(got == [], "forged publish delivered", got)


@rule("publish.to_wildcard_refused", section="_bayeux_protocol_elements")
async def _(ctx: Context) -> None:
    """Publishing to a wildcard pattern fails: patterns are for subscriptions only."""
    client = await ctx.started()
    for pattern in (ctx.ch("*"), ctx.ch("**")):
        reply = await client.publish(pattern, {})
        expect(reply.get("successful") is False, f"publish to {pattern} accepted", reply)


@rule("publish.to_meta_refused", section="_bayeux_meta_channels")
async def _(ctx: Context) -> None:
    """A client cannot publish to an unknown meta channel; meta names match exactly, so a
    `/meta/subscribe/extra` carrying a subscription subscribes to nothing (Faye once routed it
    as `/meta/subscribe`, past the checks keyed on the exact name)."""
    client = await ctx.started()
    for channel in ("/meta/spec", "/meta/subscribe/extra"):
        reply = await client.publish(channel, {}, subscription=ctx.ch("bypass"))
        expect(reply.get("successful") is False, f"publish to {channel} accepted", reply)
    publisher = await ctx.started()
    await publisher.publish(ctx.ch("bypass"), {"n": 1})
    got = await client.deliveries(1, within=0.7)
    expect(got == [], "/meta/subscribe/extra subscribed the client", got)


@rule("publish.missing_data_refused", section="_bayeux_publish", profile="robustness")
async def _(ctx: Context) -> None:
    """A publish without data is refused."""
    client = await ctx.started()
    reply = await client.request({"channel": ctx.ch("nodata"), "clientId": client.client_id})
    expect(reply.get("successful") is False, "publish without data accepted", reply)


@rule("service.not_broadcast", section="_bayeux_service_channels")
async def _(ctx: Context) -> None:
    """Messages published to /service/** channels are not delivered to other clients."""
    listener = await ctx.started()
    await listener.subscribe("/service/spec")  # servers SHOULD NOT record it; either way
    publisher = await ctx.started()
    reply = await publisher.publish("/service/spec", {"private": True})
    expect(reply.get("channel") == "/service/spec", "no reply to the service publish", reply)
    got = await listener.deliveries(1, within=0.7)
    expect(got == [], "service message broadcast to another client", got)


@rule("publish.unicode_and_nested_data_intact", section=PUBLISH)
async def _(ctx: Context) -> None:
    """Arbitrary JSON data (nested, unicode, numbers, null) arrives unchanged."""
    data = {"text": "héllo ☃ \U0001f600", "list": [1, 2.5, None, True], "nested": {"a": {"b": []}}}
    subscriber = await ctx.started()
    await subscriber.subscribe(ctx.ch("data"))
    publisher = await ctx.started()
    await publisher.publish(ctx.ch("data"), data)
    got = await subscriber.deliveries(1)
    expect(len(got) == 1 and got[0].get("data") == data, "data changed in transit", got)


@rule("service.not_delivered_to_wildcard_subscribers", section="_bayeux_service_channels")
async def _(ctx: Context) -> None:
    """A message published to a /service/** channel reaches no subscriber, not even one whose
    `/**` pattern matches every channel."""
    listener = await ctx.started()
    expect((await listener.subscribe("/**"))["successful"] is True, "subscribe to /** failed")
    publisher = await ctx.started()
    service = "/service/spec-" + ctx.prefix.rsplit("/", 1)[-1]
    await publisher.publish(service, {"private": True})
    # A broadcast published after it shows when everything before it has arrived.
    marker = ctx.ch("after-service")
    await publisher.publish(marker, {"marker": True})
    got: list[Message] = []
    for _ in range(40):  # other rules publish meanwhile: read until the marker
        got += await listener.deliveries(1, within=0.25)
        if any(m.get("channel") == marker for m in got):
            break
    expect(any(m.get("channel") == marker for m in got), "the broadcast marker never arrived")
    leaked = [m for m in got if m.get("channel") == service]
    expect(leaked == [], "service message delivered to a /** subscriber", leaked)
