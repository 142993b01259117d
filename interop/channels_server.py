"""The server the channel interop runs use (interop/test_cometd_channels.py): channels configured
as objects the way an application would (per-channel broadcast-to-publisher, a listener that
drops, an authorizer that refuses subscriptions, lazy channels with their own timeouts), a
session-added listener that turns broadcast-to-publisher off for the clients that ask (with
`?echo=no` in the URL), and remote calls that publish as a session, publish lazily, burst
inside `server.batch()` or not, and count a channel's subscribers.

`install(server)` is the whole application: `channels_server()` serves it from a thread, and
`python -m bayeux --app interop.channels_server:install` from a process of a deployment."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import parse_qs

from bayeux import (
    Authorization,
    BayeuxServer,
    Endpoint,
    Operation,
    ServerSession,
    ServiceError,
    Settings,
    current_request,
)
from bayeux.testing import ServerThread

# The two lazy timeouts the scenarios tell apart: a channel's own, and the server's.
CHANNEL_LAZY_TIMEOUT = 0.3
SERVER_LAZY_TIMEOUT_MS = 1200


def no_subscribers(operation, channel, session, message):
    return Authorization.DENY if operation is Operation.SUBSCRIBE else Authorization.GRANT


def drop_when_asked(session, channel, message):
    data = message.get("data")
    return not (isinstance(data, dict) and data.get("drop") is True)


def quiet_when_asked(session: ServerSession) -> None:
    """A session whose handshake came with `?echo=no` never gets its own messages back."""
    request = current_request()
    if request is not None and parse_qs(request.query).get("echo") == ["no"]:
        session.broadcast_to_publisher = False


def _channel_name(data: Any) -> str:
    if not isinstance(data, dict) or not isinstance(data.get("channel"), str):
        raise ServiceError("expected {channel: ...}")
    return data["channel"]


def install(server: BayeuxServer) -> None:
    server.channel("/interop/noecho/*").broadcast_to_publisher = False
    server.channel("/interop/echo/*").broadcast_to_publisher = True
    server.channel("/interop/filtered/*").add_listener(drop_when_asked)
    server.channel("/interop/guarded/*").add_authorizer(no_subscribers)
    # Not lazy itself, with a lazy timeout of its own for the messages published lazily on it.
    timed = server.channel("/interop/lazy/timed")
    timed.lazy_timeout = CHANNEL_LAZY_TIMEOUT
    timed.lazy = False
    server.channel("/interop/lazy/channel").lazy_timeout = CHANNEL_LAZY_TIMEOUT
    # A lazy pattern asked for before one of its channels that has its own timeout.
    server.channel("/interop/ticks/*").lazy = True
    server.channel("/interop/ticks/fast").lazy_timeout = CHANNEL_LAZY_TIMEOUT
    server.on_session_added(quiet_when_asked)

    @server.remote_call("/service/channels/publish")
    def publish(session, data):
        """Publishes `data.data` on `data.channel`: as the caller when `as_me`, lazily when
        `lazy`; returns how many sessions of this process it reached."""
        channel = server.channel(_channel_name(data))
        return channel.publish(
            data.get("data"),
            sender=session if data.get("as_me") else None,
            lazy=bool(data.get("lazy")),
        )

    @server.remote_call("/service/channels/deliver")
    def deliver(session, data):
        """Delivers `data.data` on `data.channel` to the caller, from the caller."""
        session.deliver(_channel_name(data), data.get("data"), sender=session)
        return "delivered"

    @server.remote_call("/service/channels/burst")
    async def burst(session, data):
        """Publishes `count` messages on `channel`, `gap_ms` apart, inside one `server.batch()`
        when `batched`."""
        name = _channel_name(data)
        count, gap = int(data.get("count", 3)), float(data.get("gap_ms", 0)) / 1000

        async def publish_all() -> None:
            for n in range(count):
                if n and gap:
                    await asyncio.sleep(gap)
                server.channel(name).publish({"n": n})

        if data.get("batched"):
            with server.batch():
                await publish_all()
        else:
            await publish_all()
        return count

    @server.remote_call("/service/channels/count")
    async def count(session, data):
        """The subscribers of `data.channel`: this process's count and listing, and the
        deployment's."""
        channel = server.channel(_channel_name(data))
        everyone = await channel.deployment_subscribers(limit=100)
        return {
            "local": channel.subscriber_count,
            "listed": sorted(s.id for s in channel.subscribers(limit=100)),
            "deployment": everyone.count,
            "deployment_ids": sorted(everyone.client_ids),
        }


def channels_server(*, broadcast_to_publisher: bool = True) -> ServerThread:
    """The application on a fresh server in a thread. Long-polls are held 20 s, so that no
    connect times out inside a timing window; no browser cookie, because the CometD clients of
    one Node process share a cookie jar and would otherwise count as one browser, all but one
    told to poll."""
    server = BayeuxServer(
        Settings(
            timeout=20000,
            browser_cookie="",
            max_lazy_timeout=SERVER_LAZY_TIMEOUT_MS,
            broadcast_to_publisher=broadcast_to_publisher,
        )
    )
    install(server)
    return ServerThread(endpoint=Endpoint(server=server))
