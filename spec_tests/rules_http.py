"""Rules for the transports' framing: long-polling HTTP, callback-polling JSONP, WebSocket."""

from __future__ import annotations

import asyncio
import json
import re
from typing import TypeVar
from urllib.parse import urlsplit

from .client import SpecFailure, expect
from .rules import CannotCheck, Context, NotApplicable, rule
from .wire import CallbackPolling, LongPolling, Transport, WebSocket

W = TypeVar("W", bound=Transport)

LONG_POLLING = "_bayeux_long_polling"
CALLBACK_POLLING = "_bayeux_callback_polling"
HANDSHAKE = {
    "channel": "/meta/handshake",
    "version": "1.0",
    "supportedConnectionTypes": ["long-polling"],
    "id": "1",
}


def _wire(ctx: Context, cls: type[W]) -> W:
    wire = ctx.client().wire
    assert isinstance(wire, cls)
    return wire


@rule("long_polling.json_content_type", section=LONG_POLLING, transports=("long-polling",))
async def _(ctx: Context) -> None:
    """Replies are application/json."""
    wire = _wire(ctx, LongPolling)
    response = await wire.post(json.dumps([HANDSHAKE]))
    expect(response.code == 200, f"HTTP {response.code}")
    expect(
        response.headers.get("Content-Type", "").startswith("application/json"),
        "Content-Type",
        response.headers.get("Content-Type"),
    )


@rule(
    "long_polling.session_bound_to_its_browser",
    section=LONG_POLLING,
    profile="robustness",
    transports=("long-polling",),
)
async def _(ctx: Context) -> None:
    """A server that identifies browsers with the BAYEUX_BROWSER cookie (CometD's) refuses a
    session's clientId when another browser's cookie comes with it: the clientId seen in a log
    is not enough to use the session. Not applicable to a server that sets no such cookie."""
    wire = _wire(ctx, LongPolling)
    response = await wire.post(json.dumps([HANDSHAKE]))
    expect(response.code == 200, f"HTTP {response.code}", response.body)
    client_id = json.loads(response.body)[0].get("clientId")
    mine = next(
        (
            value.split(";")[0].strip()
            for value in response.headers.get_list("Set-Cookie")
            if value.strip().startswith("BAYEUX_BROWSER=")
        ),
        None,
    )
    if mine is None:
        raise NotApplicable("the server sets no BAYEUX_BROWSER cookie")
    connect = {
        "channel": "/meta/connect",
        "clientId": client_id,
        "connectionType": "long-polling",
        "advice": {"timeout": 0},
    }
    for cookie, owner in (("BAYEUX_BROWSER=0f0f0f0f0f0f0f0f0f0f", False), (mine, True)):
        answer = await wire.post(json.dumps([connect]), headers={"Cookie": cookie})
        expect(answer.code == 200, f"HTTP {answer.code}", answer.body)
        reply = json.loads(answer.body)[-1]
        expect(
            reply.get("successful") is owner,
            "another browser used the session" if not owner else "its own browser was refused",
            reply,
        )


@rule(
    "long_polling.form_encoded_message",
    section=LONG_POLLING,
    profile="cometd",
    transports=("long-polling",),
)
async def _(ctx: Context) -> None:
    """Messages may come as the `message` field of a form-encoded POST."""
    wire = _wire(ctx, LongPolling)
    from urllib.parse import urlencode

    response = await wire.post(
        urlencode({"message": json.dumps([HANDSHAKE])}),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    expect(response.code == 200, f"HTTP {response.code}", response.body)
    replies = json.loads(response.body)
    expect(replies[0].get("successful") is True, "form-encoded handshake failed", replies)


@rule(
    "long_polling.single_object_accepted",
    section="_bayeux_protocol_elements",
    transports=("long-polling",),
)
async def _(ctx: Context) -> None:
    """A server MAY accept one message not wrapped in an array; when it does, it answers an
    array."""
    wire = _wire(ctx, LongPolling)
    response = await wire.post(json.dumps(HANDSHAKE))
    expect(response.code in (200, 400), f"HTTP {response.code}")
    if response.code == 200:
        expect(isinstance(json.loads(response.body), list), "reply not an array", response.body)


@rule(
    "long_polling.message_type_subpaths",
    section=LONG_POLLING,
    profile="cometd",
    transports=("long-polling",),
)
async def _(ctx: Context) -> None:
    """The CometD JS client posts to <url>/handshake, <url>/connect, ...: accepted."""
    wire = _wire(ctx, LongPolling)
    response = await wire.post(json.dumps([HANDSHAKE]), path="/handshake")
    expect(response.code == 200, f"HTTP {response.code} for <url>/handshake", response.body)


@rule(
    "long_polling.malformed_json_rejected",
    section=LONG_POLLING,
    profile="robustness",
    transports=("long-polling",),
)
async def _(ctx: Context) -> None:
    """A body that is not JSON gets HTTP 400; JSON that is not Bayeux messages gets HTTP 400 or
    unsuccessful replies; never a server error."""
    wire = _wire(ctx, LongPolling)
    response = await wire.post("{not json")
    expect(response.code == 400, f"HTTP {response.code} for a body that is not JSON", response.body)
    for body in ("[1, 2, 3]", '"text"', '[{"no": "channel"}]'):
        response = await wire.post(body)
        expect(response.code < 500, f"HTTP {response.code} for body {body!r}", response.body)
        if response.code == 200:
            replies = json.loads(response.body)
            refused = isinstance(replies, list) and all(
                isinstance(r, dict) and r.get("successful") is False for r in replies
            )
            expect(refused, f"body {body!r} not refused", replies)
        else:
            expect(response.code == 400, f"HTTP {response.code} for body {body!r}", response.body)


@rule(
    "long_polling.oversized_body_rejected",
    section=LONG_POLLING,
    profile="robustness",
    transports=("long-polling",),
)
async def _(ctx: Context) -> None:
    """A request announcing a 64 MiB body is refused with HTTP 413 before the body is sent."""
    url = urlsplit(ctx.url)
    reader, writer = await asyncio.open_connection(url.hostname, url.port or 80)
    try:
        writer.write(
            f"POST {url.path or '/'} HTTP/1.1\r\nHost: {url.netloc}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {64 << 20}\r\n\r\n".encode()
        )
        await writer.drain()
        try:
            status = await asyncio.wait_for(reader.readline(), 10)
        except TimeoutError:
            raise SpecFailure(
                "no answer within 10 s to a request announcing 64 MiB: the server"
                " waits for the whole body"
            ) from None
    finally:
        writer.close()
    expect(status.split(b" ")[1:2] == [b"413"], "oversized request not answered 413", status)


@rule(
    "long_polling.cors_credentials",
    section=LONG_POLLING,
    profile="cometd",
    transports=("long-polling",),
)
async def _(ctx: Context) -> None:
    """Cross-origin requests with credentials work: the Origin is echoed (never `*`) with
    Access-Control-Allow-Credentials, and OPTIONS preflights are answered."""
    wire = _wire(ctx, LongPolling)
    origin = {"Origin": "http://client.example"}
    response = await wire.post(json.dumps([HANDSHAKE]), headers=origin)
    expect(
        response.headers.get("Access-Control-Allow-Origin") == "http://client.example",
        "Origin not echoed",
        dict(response.headers),
    )
    expect(
        response.headers.get("Access-Control-Allow-Credentials") == "true",
        "credentials not allowed",
        dict(response.headers),
    )
    preflight = await wire.post(
        "",
        method="OPTIONS",
        headers={
            **origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    expect(preflight.code in (200, 204), f"preflight answered HTTP {preflight.code}")
    expect(
        "POST" in preflight.headers.get("Access-Control-Allow-Methods", ""),
        "preflight does not allow POST",
        dict(preflight.headers),
    )


@rule("callback_polling.jsonp_wrapping", section=CALLBACK_POLLING, transports=("callback-polling",))
async def _(ctx: Context) -> None:
    """Replies are JavaScript calling the callback named by `jsonp` with the message array."""
    wire = _wire(ctx, CallbackPolling)
    hs = {**HANDSHAKE, "supportedConnectionTypes": ["callback-polling"]}
    response = await wire.get({"jsonp": "myCallback", "message": json.dumps([hs])})
    expect(response.code == 200, f"HTTP {response.code}")
    expect(
        "javascript" in response.headers.get("Content-Type", ""),
        "Content-Type",
        response.headers.get("Content-Type"),
    )
    match = re.match(r"^\s*(?:/\*\*/)?\s*myCallback\((.*)\)\s*;?\s*$", response.body.decode(), re.S)
    expect(match is not None, "not a call of myCallback", response.body[:200])
    assert match is not None
    expect(json.loads(match.group(1))[0].get("successful") is True, "handshake failed")


@rule(
    "callback_polling.default_callback_name",
    section=CALLBACK_POLLING,
    transports=("callback-polling",),
)
async def _(ctx: Context) -> None:
    """Without a `jsonp` parameter the callback is named `jsonpcallback`."""
    wire = _wire(ctx, CallbackPolling)
    hs = {**HANDSHAKE, "supportedConnectionTypes": ["callback-polling"]}
    response = await wire.get({"message": json.dumps([hs])})
    expect(response.code == 200, f"HTTP {response.code}")
    expect(
        re.match(r"^\s*(?:/\*\*/)?\s*jsonpcallback\(", response.body.decode()) is not None,
        "default callback not used",
        response.body[:200],
    )


@rule(
    "callback_polling.hostile_callback_refused",
    section=CALLBACK_POLLING,
    profile="robustness",
    transports=("callback-polling",),
)
async def _(ctx: Context) -> None:
    """A callback name that is not a JavaScript identifier is refused, never reflected."""
    wire = _wire(ctx, CallbackPolling)
    hs = {**HANDSHAKE, "supportedConnectionTypes": ["callback-polling"]}
    evil = "alert(1);//"
    response = await wire.get({"jsonp": evil, "message": json.dumps([hs])})
    expect(
        evil.encode() not in (response.body or b""),
        "hostile callback reflected",
        response.body[:200],
    )


@rule(
    "websocket.batched_messages_in_one_frame",
    section="_bayeux_operation",
    transports=("websocket",),
)
async def _(ctx: Context) -> None:
    """Several messages in one frame are all answered."""
    client = await ctx.started()
    replies = await client.send(
        {"channel": "/meta/subscribe", "clientId": client.client_id, "subscription": ctx.ch("f1")},
        {"channel": "/meta/subscribe", "clientId": client.client_id, "subscription": ctx.ch("f2")},
        {"channel": ctx.ch("f1"), "clientId": client.client_id, "data": 1},
    )
    expect(all(r.get("successful") is True for r in replies), "batch not all answered", replies)


@rule(
    "websocket.malformed_frame_closes_cleanly",
    section="_bayeux_operation",
    profile="robustness",
    transports=("websocket",),
)
async def _(ctx: Context) -> None:
    """A frame that is not JSON ends the connection with a WebSocket close code, and the
    server keeps serving others."""
    wire = _wire(ctx, WebSocket)
    await wire.send_raw("{definitely not json")
    try:
        code = await wire.wait_closed(5)
    except TimeoutError:
        raise SpecFailure("connection still open 5 s after a frame that is not JSON") from None
    expect(code is not None and code >= 1000, f"close code {code}")
    other = await ctx.started()
    expect(other.client_id is not None, "server stopped serving after a bad frame")


@rule(
    "websocket.second_connect_answers_held_one",
    section="_bayeux_meta_connect",
    transports=("websocket",),
)
async def _(ctx: Context) -> None:
    """A second connect on the same socket answers the one held before it at once (one
    outstanding connect per session), and is itself held."""
    client = await ctx.started()
    timeout = (client.advice.get("timeout") or 0) / 1000
    if timeout < 2:
        raise CannotCheck(f"server timeout {timeout}s too short")
    first = ctx.spawn(client.connect())
    await asyncio.sleep(0.3)
    expect(not first.done(), "connect not held", first.done() and first.result())
    second = ctx.spawn(client.connect())
    try:
        reply = await asyncio.wait_for(first, min(timeout - 0.5, 5))
    except TimeoutError:
        raise SpecFailure("a second connect on the same socket left the first one held") from None
    expect(reply.get("channel") == "/meta/connect", "first connect not answered", reply)
    await asyncio.sleep(0.3)
    expect(not second.done(), "the second connect was not held", second.done() and second.result())


@rule(
    "long_polling.advertised_callback_polling_wraps",
    section=CALLBACK_POLLING,
    transports=("long-polling",),
)
async def _(ctx: Context) -> None:
    """A server that lists callback-polling in its handshake reply answers a JSONP request with
    JavaScript calling the named callback (checked even when only long-polling is selected)."""
    client = ctx.client()
    reply = await client.handshake()
    if "callback-polling" not in (reply.get("supportedConnectionTypes") or []):
        raise NotApplicable("the server does not list callback-polling")
    wire = CallbackPolling(ctx.url, timeout=ctx.timeout)  # while the rule runs long-polling
    hs = {**HANDSHAKE, "supportedConnectionTypes": ["callback-polling"]}
    response = await wire.get({"jsonp": "specCallback", "message": json.dumps([hs])})
    expect(response.code == 200, f"HTTP {response.code}")
    match = re.match(
        r"^\s*(?:/\*\*/)?\s*specCallback\((.*)\)\s*;?\s*$", response.body.decode(), re.S
    )
    expect(match is not None, "not a call of specCallback", response.body[:200])
    assert match is not None
    expect(json.loads(match.group(1))[0].get("successful") is True, "JSONP handshake failed")
