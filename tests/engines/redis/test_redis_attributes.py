"""Session attributes follow the session across a deployment on a real redis-server: set on
one process, read by an authorizer on another, carried through a handoff and a SIGKILL."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any
from urllib.parse import urlencode

import pytest

from bayeux import ServerSession
from bayeux.testing import child_pids, free_port, stop_process, wait_for_port

from ...helpers.app_hooks import install
from ...helpers.http import post_json, request
from ...helpers.rawws import RawWebSocket
from ...helpers.redis_nodes import OPTIONS, Client, node, serve, wait_healthy, wait_ready

pytestmark = pytest.mark.redis


class AppClient(Client):
    made_by: int | None = None  # the process that answered its handshake (ext.pid)


def handshake_as(url: str, user: str) -> AppClient:
    client = AppClient.__new__(AppClient)
    (reply,) = post_json(
        url,
        [
            {
                "channel": "/meta/handshake",
                "version": "1.0",
                "supportedConnectionTypes": ["long-polling"],
                "ext": {"user": user},
            }
        ],
    ).json()
    assert reply["successful"] is True, reply
    client.id, client.ack, client.received = reply["clientId"], None, []
    client.made_by = reply.get("ext", {}).get("pid")
    return client


def call(client: Client, url: str, service: str, data: Any = None, *, served: str = "") -> Any:
    """Calls a service on `url`; its reply comes through the session's queue, read by
    connects on `served` (where the session is served: `url` unless said)."""
    replies = client.send(url, channel=service, data=data, id="1")
    reply = next(r for r in replies if r.get("id") == "1" and r["channel"] == service)
    assert reply["successful"] is True, reply
    if "data" in reply:
        return reply["data"]
    # Answered through the session's queue: the next connect carries it.
    connect = {"channel": "/meta/connect", "connectionType": "long-polling"}
    for _ in range(20):
        for message in client.send(served or url, **connect, advice={"timeout": 0}):
            if message["channel"] == service and "data" in message:
                return message["data"]
    raise AssertionError(f"no reply from {service}")


def test_attributes_follow_the_session_to_every_process(redis_server) -> None:
    with node(redis_server.url) as a, node(redis_server.url) as b:
        wait_ready(a, b)
        for n in (a, b):
            n.call(lambda n=n: install(n.endpoint.server))
        alice, bob = handshake_as(a.url, "alice"), handshake_as(a.url, "bob")
        alice.connect(a.url)
        # Set by a's policy at handshake, read by b's authorizer from the record.
        assert alice.publish(b.url, "/private/news", 1)["successful"] is True
        assert bob.publish(b.url, "/private/news", 1)["error"] == "403:/private/news:Publish denied"
        # Changed on b through a view: the record, and a (serving it), take the change.
        assert call(alice, b.url, "/service/remember", "red", served=a.url) == "remembered"
        session: ServerSession = a.call(lambda: a.endpoint.server.sessions[alice.id])
        deadline = time.monotonic() + 5
        while a.call(lambda: session.attributes.get("color")) != "red":
            assert time.monotonic() < deadline, "the serving process never took the change"
            time.sleep(0.02)
        # Taken over by b: the session there has them all.
        alice.connect(b.url)
        taken = b.call(lambda: dict(b.endpoint.server.sessions[alice.id].attributes))
        assert taken == {"user": "alice", "color": "red"}
        # Changed where it is served (b), read through a view on a.
        assert call(alice, b.url, "/service/remember", "blue") == "remembered"
        whoami = call(alice, a.url, "/service/whoami", served=b.url)
        assert whoami == {"user": "alice", "color": "blue"}


def test_attributes_survive_a_sigkill_of_the_serving_process(redis_server) -> None:
    app = ("--app", "tests.helpers.app_hooks:install")
    a, url_a = serve(redis_server.url, *app)
    b, url_b = serve(redis_server.url, *app)
    try:
        alice = handshake_as(url_a, "alice")
        alice.connect(url_a)
        assert call(alice, url_a, "/service/remember", "green") == "remembered"
        a.kill()
        a.wait(10)
        # b takes the session over (its process is gone): everything set on a is there.
        deadline = time.monotonic() + 15
        while not alice.connect(url_b, timeout=0).get("successful"):
            assert time.monotonic() < deadline, "the session was never taken over"
            time.sleep(0.1)
        assert call(alice, url_b, "/service/whoami") == {"user": "alice", "color": "green"}
        assert alice.publish(url_b, "/private/news", 1)["successful"] is True
    finally:
        stop_process(a)
        stop_process(b)


def test_with_two_workers_an_authorizer_reads_what_the_other_worker_set(redis_server) -> None:
    """python -m bayeux --workers 2: every transport's clients spread over both workers, and an
    attribute set at handshake by one is read by an authorizer on the other."""
    port = free_port()
    parent = subprocess.Popen(
        [sys.executable, "-m", "bayeux", "--port", str(port), "--log-level", "warning"]
        + ["--redis", redis_server.url, "--workers", "2", *OPTIONS]
        + ["--app", "tests.helpers.app_hooks:install"]
    )
    try:
        wait_for_port(port, parent)
        url = f"http://127.0.0.1:{port}/cometd"
        wait_healthy(url)
        workers = set(child_pids(parent.pid))
        assert len(workers) == 2
        seen: dict[str, set[int]] = {
            "long-polling": set(),
            "websocket": set(),
            "callback-polling": set(),
        }
        crossed = 0
        for _ in range(40):
            # Each request on a new connection: the kernel picks the worker.
            alice = handshake_as(url, "alice")
            assert alice.made_by is not None
            seen["long-polling"].add(alice.made_by)
            reply = alice.publish(url, "/private/news", 1)
            assert reply["successful"] is True, reply
            crossed += reply["ext"]["pid"] != alice.made_by
            ws = RawWebSocket(f"ws://127.0.0.1:{port}/cometd")
            try:
                hs = {
                    "channel": "/meta/handshake",
                    "version": "1.0",
                    "supportedConnectionTypes": ["websocket"],
                    "ext": {"user": "alice"},
                }
                ws.send([hs])
                seen["websocket"].add(ws.read()[0]["ext"]["pid"])
            finally:
                ws.close()
            jsonp = {
                "channel": "/meta/handshake",
                "version": "1.0",
                "supportedConnectionTypes": ["callback-polling"],
                "ext": {"user": "alice"},
            }
            query = urlencode({"jsonp": "cb", "message": json.dumps([jsonp])})
            answer = request(url, "GET", path=f"?{query}").body.decode()
            seen["callback-polling"].add(
                json.loads(answer[answer.index("(") + 1 : answer.rindex(")")])[0]["ext"]["pid"]
            )
            if crossed and all(pids == workers for pids in seen.values()):
                break
        assert seen == dict.fromkeys(seen, workers)
        assert crossed > 0, "no publish reached the other worker in 40 tries"
    finally:
        stop_process(parent)
