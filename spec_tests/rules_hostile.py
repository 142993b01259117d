"""Rules for hostile input that a server put on the internet must survive: huge or malformed
channel names, handshake floods in one batch, out-of-range numbers, error strings that echo
input, and a connect that displaces another. Each was a real bug in a real server."""

from __future__ import annotations

import asyncio
import json
import re

from .client import SpecFailure, expect
from .rules import CannotCheck, Context, rule
from .wire import CallbackPolling, WebSocket

CHANNELS = "_channels"
ERRORS = "_bayeux_error"
HANDSHAKE = "_bayeux_meta_handshake"
CONNECT = "_bayeux_meta_connect"
# code:args:text, where args are comma-separated and hold no colon.
_ERROR_RE = re.compile(r"^\d{3}:[^:]*:.*$")


@rule("channel.control_characters_refused", section=CHANNELS, profile="robustness")
async def _(ctx: Context) -> None:
    """A channel name with a newline or another control character is not a valid channel: the
    publish is refused (log lines and downstream systems would otherwise carry it)."""
    client = await ctx.started()
    for bad in (ctx.ch("log") + "\n", ctx.ch("a\rb"), ctx.ch("x\x00")):
        reply = await client.publish(bad, {"n": 1})
        expect(reply.get("successful") is False, f"publish to {bad!r} accepted", reply)


@rule(
    "channel.huge_name_refused_promptly",
    section=CHANNELS,
    profile="robustness",
    # Not callback-polling: a 16 KiB name does not fit in a URL within MAX_URL_LENGTH.
    transports=("long-polling", "websocket"),
)
async def _(ctx: Context) -> None:
    """A publish to a 16 KiB channel name of 4096 segments is refused, and answered within 5 s
    (matching costs must not grow with the square of the name)."""
    client = await ctx.started()
    huge = ctx.ch("h") + "/a" * 8192
    try:
        reply = await asyncio.wait_for(client.publish(huge, 1), 5)
    except TimeoutError:
        raise SpecFailure(
            "a publish to a 16 KiB channel name was not answered within 5 s"
        ) from None
    expect(reply.get("successful") is False, "a 16 KiB, 8192-segment channel was accepted", reply)


@rule("handshake.one_session_per_batch", section=HANDSHAKE, profile="robustness")
async def _(ctx: Context) -> None:
    """A batch of handshakes creates at most one session (the specification has the server
    ignore what comes with a handshake; a batch must not be a session factory)."""
    client = ctx.client()
    batch = [client.handshake_message(id=f"h{i}") for i in range(20)]
    if isinstance(client.wire, CallbackPolling):
        # Split, the batch would be several batches: send as many as one URL carries.
        batch = client.wire.split(batch)[0]
        expect(len(batch) > 1, "fewer than two handshakes fit in one callback-polling URL")
    if isinstance(client.wire, WebSocket):
        # Replies to ignored handshakes never come: a probe sent after the batch is answered
        # after whatever the batch got.
        await client.wire.send_raw(json.dumps(batch))
        await client.request(client.handshake_message(id="probe"))
        received = client.wire.take_replies()
    else:
        received = await client.send(*batch)
    sessions = {m.get("clientId") for m in received if m.get("successful") is True}
    expect(
        len(sessions) <= 1, f"{len(sessions)} sessions from one batch of {len(batch)} handshakes"
    )


@rule("connect.invalid_advice_timeout_refused", section=CONNECT, profile="robustness")
async def _(ctx: Context) -> None:
    """A connect whose advice.timeout is negative or not a number is refused with an error, and
    the session still works afterwards."""
    client = await ctx.started()
    for bad in (-1, "30000", [1]):
        reply = await asyncio.wait_for(client.connect(advice={"timeout": bad}), 10)
        expect(reply.get("successful") is False, f"advice.timeout {bad!r} accepted", reply)
    reply = await client.connect(advice={"timeout": 0})
    expect(reply.get("successful") is True, "session unusable after a refused connect", reply)


@rule("error.arguments_escaped", section=ERRORS, profile="robustness")
async def _(ctx: Context) -> None:
    """An error string keeps its `code:args:text` form when the input it names holds `:` or
    `,`: the arguments are escaped, not echoed raw."""
    client = await ctx.started()
    reply = await client.subscribe("not:a,channel")
    expect(reply.get("successful") is False, "subscription 'not:a,channel' accepted", reply)
    error = reply.get("error")
    expect(isinstance(error, str) and _ERROR_RE.match(error) is not None, "malformed error", reply)
    expect("not:a" not in str(error), "error echoes the raw ':' of its argument", reply)


@rule("connect.displacing_connect_is_held", section=CONNECT, transports=("long-polling",))
async def _(ctx: Context) -> None:
    """A connect that displaces the session's held connect (a client back after a network
    blip, on a new connection) is itself held until its timeout and answered successfully:
    finishing the displaced one must not start the session's expiry under the new one."""
    client = await ctx.started()
    timeout = (client.advice.get("timeout") or 0) / 1000
    max_interval = (client.advice.get("maxInterval") or 0) / 1000
    # Hold the new connect well past maxInterval (plus the displaced connect's interval and a
    # sweep) so that an expiry started by the displaced one shows.
    hold = min(timeout, max_interval + 6)
    if hold <= max_interval:
        raise CannotCheck(f"server timeout {timeout}s not above maxInterval {max_interval}s")
    first = ctx.spawn(client.connect())
    await asyncio.sleep(0.3)
    other = ctx.client(same_browser_as=client)
    other.wire.cookies = {}  # another network path: no shared browser cookie
    second = ctx.spawn(other.connect(advice={"timeout": int(hold * 1000)}))
    await asyncio.wait_for(first, timeout + 5)
    reply = await asyncio.wait_for(second, hold + 10)
    expect(reply.get("successful") is True, "the displacing connect was refused", reply)
