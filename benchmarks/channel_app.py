"""The fan-out benchmark's server with channel objects and decorators in use
(`benchmarks/fanout.py --server bayeux-channels`): what they cost a broadcast against a server
without them.

On the benchmark's channel: a channel object with its own broadcast-to-publisher and attributes,
a pattern's message listener that keeps every message (registered with the decorator, on a
template channel), a channel initializer and channel listeners (so every subscribed channel gets
an object), and a server-side subscription (one more recipient, a LocalSession).
"""

from __future__ import annotations

from typing import Any

from bayeux import BayeuxServer


def install(server: BayeuxServer) -> None:
    fanout = server.channel("/bench/fanout")
    fanout.broadcast_to_publisher = False
    fanout.attributes["benchmark"] = "fanout"
    server.add_channel_initializer("/bench/*", lambda channel: None)
    server.on_channel_added(lambda channel: None)
    server.on_channel_removed(lambda channel: None)

    @server.listener("/bench/{name}")
    def keep(session: Any, channel: str, message: Any, name: str) -> bool:
        return True

    @server.subscription("/bench/{name}")
    def seen(message: Any, name: str) -> None:
        pass
