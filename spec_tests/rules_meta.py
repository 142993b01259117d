"""Rules for the meta channels: handshake, connect, disconnect, subscribe, unsubscribe."""

from __future__ import annotations

import asyncio
import time

from .client import SpecFailure, expect
from .rules import MAX_WAIT, CannotCheck, Context, rule
from .wire import Message, WireError

HANDSHAKE = "_bayeux_meta_handshake"
CONNECT = "_bayeux_meta_connect"
DISCONNECT = "_bayeux_meta_disconnect"
SUBSCRIBE = "_bayeux_meta_subscribe"
UNSUBSCRIBE = "_bayeux_meta_unsubscribe"


def unknown_client_refused(reply: Message) -> None:
    expect(reply.get("successful") is False, "request with an unknown clientId succeeded", reply)
    expect(isinstance(reply.get("error"), str), "unsuccessful reply without error", reply)


def unknown_client_advice(reply: Message) -> None:
    unknown_client_refused(reply)
    advice = reply.get("advice") or {}
    expect(
        advice.get("reconnect") == "handshake",
        "unknown clientId not answered with advice reconnect=handshake",
        reply,
    )


# ------------------------------------------------------------------------------ handshake


@rule("handshake.successful_reply_fields", section=HANDSHAKE)
async def _(ctx: Context) -> None:
    """A successful handshake reply carries channel, version, supportedConnectionTypes (an array
    including the transport asked for), clientId and successful=true."""
    client = ctx.client()
    reply = await client.handshake()
    expect(reply.get("successful") is True, "handshake failed", reply)
    for name in ("version", "supportedConnectionTypes", "clientId"):
        expect(name in reply, f"handshake reply lacks {name}", reply)
    expect(
        ctx.transport in reply["supportedConnectionTypes"],
        f"supportedConnectionTypes does not list {ctx.transport}",
        reply,
    )


@rule("handshake.id_echoed", section="_bayeux_id")
async def _(ctx: Context) -> None:
    """A reply to a meta message carries the request's id."""
    client = ctx.client()
    received = await client.send(client.handshake_message(id="hs42"))
    replies = [m for m in received if m.get("channel") == "/meta/handshake"]
    expect(len(replies) == 1 and replies[0].get("id") == "hs42", "id not echoed", received)


@rule("handshake.client_ids_unique", section="_bayeux_clientid")
async def _(ctx: Context) -> None:
    """Every handshake gets a new clientId, alphanumeric and long enough to carry 128 random
    bits (at least 22 characters)."""
    ids = set()
    for _ in range(5):
        reply = await ctx.client().handshake()
        expect(reply.get("successful") is True, "handshake failed", reply)
        client_id = reply["clientId"]
        expect(client_id.isalnum(), "clientId is not alphanumeric", client_id)
        expect(len(client_id) >= 22, "clientId too short to hold 128 random bits", client_id)
        ids.add(client_id)
    expect(len(ids) == 5, "clientIds repeat", ids)


@rule("handshake.no_common_connection_type_fails", section=HANDSHAKE)
async def _(ctx: Context) -> None:
    """A handshake offering no connection type the server supports is unsuccessful."""
    reply = await ctx.client().handshake(supportedConnectionTypes=["carrier-pigeon"])
    expect(reply.get("successful") is False, "handshake with no common type succeeded", reply)
    expect(isinstance(reply.get("error"), str), "unsuccessful handshake without error", reply)


@rule("handshake.missing_version_fails", section=HANDSHAKE, profile="robustness")
async def _(ctx: Context) -> None:
    """A handshake without the required version field is refused with an error."""
    client = ctx.client()
    reply = await client.request(
        {"channel": "/meta/handshake", "supportedConnectionTypes": [ctx.transport]}
    )
    expect(reply.get("successful") is False, "handshake without version succeeded", reply)


@rule(
    "handshake.other_messages_ignored",
    section=HANDSHAKE,
    transports=("long-polling", "callback-polling"),
)
async def _(ctx: Context) -> None:
    """A server ignores other messages sent in the same request as a handshake."""
    client = ctx.client()
    received = await client.send(
        client.handshake_message(id="h1"), {"channel": ctx.ch("ignored"), "data": {}, "id": "p1"}
    )
    expect(
        any(m.get("id") == "h1" and m.get("successful") for m in received),
        "handshake not answered",
        received,
    )
    expect(
        not any(m.get("successful") is True and m.get("id") == "p1" for m in received),
        "message batched with a handshake was processed",
        received,
    )


# -------------------------------------------------------------------------------- connect


@rule("connect.successful_reply_fields", section=CONNECT)
async def _(ctx: Context) -> None:
    """A connect reply carries channel /meta/connect and successful=true for a live session."""
    client = ctx.client()
    await client.handshake()
    reply = await client.connect(advice={"timeout": 0})
    expect(
        reply.get("channel") == "/meta/connect" and reply.get("successful") is True,
        "connect failed",
        reply,
    )


@rule("connect.first_answered_at_once", section=CONNECT, profile="cometd")
async def _(ctx: Context) -> None:
    """The first connect after a handshake is answered without waiting for the timeout, even
    without `advice.timeout: 0` (CometD does; aiocometd's open() waits for that reply)."""
    client = ctx.client()
    await client.handshake()
    started = time.monotonic()
    reply = await client.connect()
    elapsed = time.monotonic() - started
    expect(reply.get("successful") is True, "connect failed", reply)
    expect(elapsed < 2.0, f"first connect held {elapsed:.1f}s")


@rule("connect.unknown_client_rehandshake", section="_bayeux_advice")
async def _(ctx: Context) -> None:
    """A connect with an unknown clientId fails with advice reconnect=handshake."""
    client = ctx.client()
    client.client_id = "0123456789abcdef0123456789abcdef"
    unknown_client_advice(await client.connect())


@rule("connect.held_until_message", section=CONNECT)
async def _(ctx: Context) -> None:
    """While a connect is held, a message for its session is delivered at once: in the connect's
    reply over HTTP, on the socket over WebSocket (where the connect may stay held)."""
    subscriber = await ctx.started()
    expect((await subscriber.subscribe(ctx.ch("held")))["successful"] is True, "subscribe failed")
    timeout = (subscriber.advice.get("timeout") or 0) / 1000
    if timeout < 1.5:
        raise CannotCheck(f"server timeout {timeout}s too short to tell holding from answering")
    publisher = await ctx.started()
    poll = ctx.spawn(subscriber.connect())
    await asyncio.sleep(0.3)
    expect(not poll.done(), "second connect was not held", poll.done() and poll.result())
    started = time.monotonic()
    await publisher.publish(ctx.ch("held"), {"n": 1})
    if ctx.transport == "websocket":
        # Pushed while the connect stays held: sending anything now (another connect) could
        # hide a server that delivers only when asked.
        delivered = await subscriber.pushed(1, within=timeout - 0.5)
        elapsed = time.monotonic() - started
        expect(
            len(delivered) == 1 and delivered[0].get("data") == {"n": 1},
            "message missing",
            delivered,
        )
        expect(elapsed < timeout - 0.5, f"message delivered after {elapsed:.1f}s")
        poll.cancel()
        return
    reply = await asyncio.wait_for(poll, timeout + 5)
    elapsed = time.monotonic() - started
    expect(reply.get("successful") is True, "held connect failed", reply)
    expect(elapsed < timeout - 0.5, f"held connect answered after {elapsed:.1f}s, not at delivery")
    delivered = [m for m in subscriber.wire.inbox if m.get("channel") == ctx.ch("held")]
    expect(
        len(delivered) == 1 and delivered[0].get("data") == {"n": 1},
        "message missing",
        subscriber.wire.inbox,
    )


@rule("connect.held_until_timeout", section="_bayeux_long_polling")
async def _(ctx: Context) -> None:
    """With nothing to deliver, a connect is held for about the advised timeout."""
    client = await ctx.started()
    timeout = (client.advice.get("timeout") or 0) / 1000
    if not 0.5 <= timeout <= MAX_WAIT:
        raise CannotCheck(f"server timeout {timeout}s outside 0.5-{MAX_WAIT:.0f}s")
    started = time.monotonic()
    reply = await client.connect()
    elapsed = time.monotonic() - started
    expect(reply.get("successful") is True, "connect failed", reply)
    expect(
        timeout * 0.8 <= elapsed <= timeout + 2,
        f"connect held {elapsed:.2f}s against an advised timeout of {timeout:.2f}s",
    )


@rule("connect.client_timeout_advice_honoured", section="_bayeux_advice", profile="cometd")
async def _(ctx: Context) -> None:
    """A connect carrying advice.timeout=0 is answered at once (CometD and Faye clients send it)."""
    client = await ctx.started()
    started = time.monotonic()
    reply = await client.connect(advice={"timeout": 0})
    elapsed = time.monotonic() - started
    expect(reply.get("successful") is True, "connect failed", reply)
    expect(elapsed < 1.0, f"connect with advice.timeout=0 held {elapsed:.1f}s")


@rule("connect.second_connect_releases_first", section=CONNECT, profile="cometd")
async def _(ctx: Context) -> None:
    """A transport keeps one outstanding connect: a second one for the same session makes the
    server answer the first, without an HTTP error."""
    client = await ctx.started()
    timeout = (client.advice.get("timeout") or 0) / 1000
    if timeout < 1.5:
        raise CannotCheck(f"server timeout {timeout}s too short")
    other = ctx.client(same_browser_as=client)  # a second connection of the same session
    first = ctx.spawn(client.connect())
    await asyncio.sleep(0.3)
    second = ctx.spawn(other.connect(advice={"timeout": 0}))
    try:
        reply = await asyncio.wait_for(first, timeout - 0.5)
    except TimeoutError:
        raise SpecFailure(
            f"first connect still held {timeout - 0.5:.1f}s after a second connect of its session"
        ) from None
    expect(reply.get("channel") == "/meta/connect", "first connect not answered", reply)
    await asyncio.wait_for(second, timeout + 5)


# ----------------------------------------------------------------------------- disconnect


@rule("disconnect.reply_and_session_gone", section=DISCONNECT)
async def _(ctx: Context) -> None:
    """A disconnect is answered successfully, after which the clientId is unknown."""
    client = await ctx.started()
    reply = await client.disconnect()
    expect(reply.get("successful") is True, "disconnect failed", reply)
    unknown_client_advice(await client.connect(advice={"timeout": 0}))


async def _disconnect_while_held(ctx: Context) -> tuple[Message | None, float, float]:
    """Disconnects a session while its connect is held; returns the held connect's reply (None
    when the server closed the WebSocket instead), the seconds it took, and the timeout."""
    client = await ctx.started()
    timeout = (client.advice.get("timeout") or 0) / 1000
    if timeout < 2:
        raise CannotCheck(f"server timeout {timeout}s too short")
    closer = ctx.client(same_browser_as=client)
    poll = ctx.spawn(client.connect())
    await asyncio.sleep(0.3)
    started = time.monotonic()
    expect((await closer.disconnect()).get("successful") is True, "disconnect failed")
    try:
        reply = await asyncio.wait_for(poll, timeout + 5)
    except WireError:
        if ctx.transport != "websocket":
            raise
        reply = None  # closing the socket releases a WebSocket connect too
    return reply, time.monotonic() - started, timeout


@rule("disconnect.releases_held_connect", section=DISCONNECT)
async def _(ctx: Context) -> None:
    """The server releases a held connect when its session disconnects."""
    reply, elapsed, timeout = await _disconnect_while_held(ctx)
    expect(elapsed < timeout - 1, f"held connect answered {elapsed:.1f}s after disconnect", reply)


@rule("disconnect.released_connect_advises_no_retry", section=DISCONNECT, profile="cometd")
async def _(ctx: Context) -> None:
    """The connect released by a disconnect does not advise the client to retry connecting a
    session that no longer exists."""
    reply, _, _ = await _disconnect_while_held(ctx)
    if reply is not None:
        expect(
            (reply.get("advice") or {}).get("reconnect") != "retry",
            "released connect advises retrying a disconnected session",
            reply,
        )


@rule("disconnect.unknown_client", section=DISCONNECT)
async def _(ctx: Context) -> None:
    """A disconnect for an unknown clientId is unsuccessful."""
    client = ctx.client()
    client.client_id = "0123456789abcdef0123456789abcdef"
    reply = await client.disconnect()
    expect(reply.get("successful") is False, "disconnect of unknown client succeeded", reply)


# ---------------------------------------------------------------------- (un)subscribe


@rule("subscribe.reply_echoes_subscription", section=SUBSCRIBE)
async def _(ctx: Context) -> None:
    """A subscribe reply carries successful=true and the subscription asked for."""
    client = await ctx.started()
    reply = await client.subscribe(ctx.ch("echo"))
    expect(reply.get("successful") is True, "subscribe failed", reply)
    expect(reply.get("subscription") == ctx.ch("echo"), "subscription not echoed", reply)


@rule("subscribe.unknown_client_refused", section=SUBSCRIBE)
async def _(ctx: Context) -> None:
    """A subscribe with an unknown clientId is unsuccessful, with an error."""
    client = ctx.client()
    client.client_id = "0123456789abcdef0123456789abcdef"
    unknown_client_refused(await client.subscribe(ctx.ch("x")))


@rule("unknown_client.advises_handshake", section="_bayeux_advice", profile="cometd")
async def _(ctx: Context) -> None:
    """Every request with an unknown clientId is answered with advice reconnect=handshake, the
    signal clients act on (CometD JS, Faye, aiocometd)."""
    client = ctx.client()
    client.client_id = "0123456789abcdef0123456789abcdef"
    unknown_client_advice(await client.subscribe(ctx.ch("x")))
    unknown_client_advice(await client.unsubscribe(ctx.ch("x")))
    unknown_client_advice(await client.publish(ctx.ch("x"), {}))


@rule("subscribe.invalid_channel_refused", section="_bayeux_protocol_elements")
async def _(ctx: Context) -> None:
    """Subscribing to something that is not a channel name or pattern fails with an error."""
    client = await ctx.started()
    for bad in ("no-slash", "/a//b", "/a/**/b", "/a/b*"):
        reply = await client.subscribe(bad)
        expect(reply.get("successful") is False, f"subscription to {bad!r} accepted", reply)


@rule("subscribe.meta_channel_refused", section="_bayeux_meta_channels")
async def _(ctx: Context) -> None:
    """A remote client cannot subscribe to a meta channel."""
    client = await ctx.started()
    reply = await client.subscribe("/meta/connect")
    expect(reply.get("successful") is False, "subscription to /meta/connect accepted", reply)


@rule("unsubscribe.reply_and_stops_delivery", section=UNSUBSCRIBE)
async def _(ctx: Context) -> None:
    """After a successful unsubscribe, messages on that channel are no longer delivered."""
    client = await ctx.started()
    await client.subscribe(ctx.ch("unsub"))
    reply = await client.unsubscribe(ctx.ch("unsub"))
    expect(reply.get("successful") is True, "unsubscribe failed", reply)
    expect(reply.get("subscription") == ctx.ch("unsub"), "subscription not echoed", reply)
    publisher = await ctx.started()
    await publisher.publish(ctx.ch("unsub"), {"late": True})
    got = await client.deliveries(1, within=0.7)
    expect(got == [], "message delivered after unsubscribe", got)


@rule("subscribe.array_subscribes_every_channel", section=SUBSCRIBE)
async def _(ctx: Context) -> None:
    """A subscribe whose subscription is an array of channels subscribes to every one of them,
    not only the first."""
    client = await ctx.started()
    channels = [ctx.ch("first"), ctx.ch("second"), ctx.ch("third")]
    reply = await client.subscribe(channels)
    expect(reply.get("successful") is True, "subscribe to an array of channels failed", reply)
    publisher = await ctx.started()
    for channel in channels:
        await publisher.publish(channel, {"on": channel})
    got = await client.deliveries(3)
    reached = sorted(str(m.get("channel")) for m in got)
    expect(reached == sorted(channels), "not every channel of the array was subscribed", got)


@rule("unsubscribe.leaves_other_sessions_subscribed", section=UNSUBSCRIBE)
async def _(ctx: Context) -> None:
    """One session's unsubscribe ends its own subscription only: another session subscribed to
    the same channel still receives."""
    leaving, staying = await ctx.started(), await ctx.started()
    for client in (leaving, staying):
        reply = await client.subscribe(ctx.ch("shared"))
        expect(reply.get("successful") is True, "subscribe failed", reply)
    reply = await leaving.unsubscribe(ctx.ch("shared"))
    expect(reply.get("successful") is True, "unsubscribe failed", reply)
    publisher = await ctx.started()
    await publisher.publish(ctx.ch("shared"), {"after": "unsubscribe"})
    got = await staying.deliveries(1)
    expect(len(got) == 1, "another session's unsubscribe ended this one's subscription", got)


@rule("unsubscribe.unknown_client_refused", section=UNSUBSCRIBE)
async def _(ctx: Context) -> None:
    """An unsubscribe with an unknown clientId is unsuccessful, with an error."""
    client = ctx.client()
    client.client_id = "0123456789abcdef0123456789abcdef"
    unknown_client_refused(await client.unsubscribe(ctx.ch("x")))


@rule(
    "session.works_without_cookies",
    section="_bayeux_clientid",
    profile="robustness",
    transports=("long-polling", "callback-polling"),
)
async def _(ctx: Context) -> None:
    """The clientId alone identifies a session: a client that keeps no cookies (many non-browser
    clients) can connect, subscribe and receive."""
    client = ctx.client()
    client.wire.send_cookies = False
    await client.start()
    expect((await client.subscribe(ctx.ch("nocookie")))["successful"] is True, "subscribe failed")
    publisher = await ctx.started()
    await publisher.publish(ctx.ch("nocookie"), {"n": 1})
    got = await client.deliveries(1)
    expect(len(got) == 1, "nothing delivered to a client without cookies")


@rule("session.expires_without_connect", section=CONNECT)
async def _(ctx: Context) -> None:
    """A session without an outstanding connect expires after the advised maxInterval."""
    client = await ctx.started()
    max_interval = client.advice.get("maxInterval")
    if not isinstance(max_interval, int) or max_interval > MAX_WAIT * 1000:
        raise CannotCheck(f"maxInterval {max_interval!r} not advised or over {MAX_WAIT:.0f}s")
    # maxInterval runs from the last connect reply; a server sweeps now and then (CometD: about
    # every second), so allow a few seconds more.
    await asyncio.sleep(max_interval / 1000 + 3)
    unknown_client_advice(await client.connect(advice={"timeout": 0}))
