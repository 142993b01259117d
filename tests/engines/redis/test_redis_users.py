"""Users across a deployment of two processes on a real redis-server: a user's sessions on
both processes get what is sent to the user; presence is told once for the deployment, also
when the process serving a user's last session is killed; and so is the end of a session whose
process was killed."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from bayeux import Ended, Extension, TooManySessions
from bayeux.testing import ServerThread, stop_process

from ...helpers.app_hooks import UserFromExt
from ...helpers.http import post_json
from ...helpers.rawws import RawWebSocket
from ...helpers.redis_nodes import Client, node, serve, wait_ready

pytestmark = pytest.mark.redis


class Tagging(Extension):
    def outgoing(self, session: Any, message: dict[str, Any]) -> bool:
        if message["channel"] == "/inbox":
            message["ext"] = {"tag": "mine"}
        return True


def install(n: ServerThread, presence: list) -> None:
    server = n.endpoint.server
    server.policy = UserFromExt(server)
    server.on_presence(lambda user, online: presence.append((user, online)))


def handshake(url: str, user: str, transport: str = "long-polling") -> dict[str, Any]:
    message = {
        "channel": "/meta/handshake",
        "version": "1.0",
        "supportedConnectionTypes": [transport],
        "ext": {"user": user},
    }
    (reply,) = post_json(url, [message]).json()
    assert reply["successful"] is True, reply
    return reply


def as_client(client_id: str) -> Client:
    client = Client.__new__(Client)
    client.id, client.ack, client.received = client_id, None, []
    return client


def wait_for(condition: Any, within: float = 10, what: str = "") -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def test_a_users_sessions_on_both_processes_get_what_is_sent_to_it(redis_server) -> None:
    with node(redis_server.url) as a, node(redis_server.url) as b:
        wait_ready(a, b)
        presence: list = []
        for n in (a, b):
            n.call(lambda n=n: install(n, presence))
        # A WebSocket on a, a long-poll on b.
        ws = RawWebSocket(f"ws://127.0.0.1:{a.port}/cometd")
        try:
            ws.send(
                [
                    {
                        "channel": "/meta/handshake",
                        "version": "1.0",
                        "supportedConnectionTypes": ["websocket"],
                        "ext": {"user": "alice"},
                    }
                ]
            )
            on_ws = ws.read()[0]["clientId"]
            connect = {"channel": "/meta/connect", "clientId": on_ws, "connectionType": "websocket"}
            ws.send([connect])
            ws.read()  # the first connect's reply
            ws.send([connect])  # held
            polling = as_client(handshake(b.url, "alice")["clientId"])
            polling.connect(b.url)
            bob = as_client(handshake(b.url, "bob")["clientId"])
            bob.connect(b.url)
            assert presence == [("alice", True), ("bob", True)]  # once, though on two processes
            assert a.await_(lambda: a.endpoint.server.online_users()) == ["alice", "bob"]
            reached = b.await_(
                lambda: b.endpoint.server.deliver_to_user("alice", "/inbox", {"n": 1})
            )
            assert reached == 2
            assert polling.poll_until([b.url], 1) == [{"n": 1}]
            # The session's own outgoing extensions see what comes through the log.
            b.call(lambda: b.endpoint.server.sessions[polling.id].add_extension(Tagging()))
            b.await_(lambda: b.endpoint.server.deliver_to_user("alice", "/inbox", {"n": 2}))
            tagged: list = []
            while not tagged:
                replies = polling.send(
                    b.url, channel="/meta/connect", connectionType="long-polling"
                )
                tagged = [m for m in replies if m.get("channel") == "/inbox"]
            assert tagged[0]["ext"] == {"tag": "mine"} and tagged[0]["data"] == {"n": 2}
            frames: list = []
            while not any(m.get("channel") == "/inbox" for m in frames):
                frames.extend(ws.read())
            inbox = [m["data"] for m in frames if m.get("channel") == "/inbox"]
            assert inbox in ([{"n": 1}], [{"n": 1}, {"n": 2}])  # n: 2 may share the frame
            bob.connect(b.url, timeout=0)
            assert bob.received == []
            # deliver_to_client from the other process.
            assert a.await_(lambda: a.endpoint.server.deliver_to_client(bob.id, "/direct", "hi"))
            assert bob.poll_until([b.url], 1) == ["hi"]
            # Her WebSocket session leaves: still online (the long-poll); then that one too.
            ws.send([{"channel": "/meta/disconnect", "clientId": on_ws}])
            polling.send(a.url, channel="/meta/disconnect")  # ended from the other process
            wait_for(lambda: ("alice", False) in presence, what="alice never went offline")
            time.sleep(0.2)
            assert presence.count(("alice", False)) == 1
            assert b.await_(lambda: b.endpoint.server.online_users()) == ["bob"]
        finally:
            ws.close()


def test_a_crash_flips_presence_and_loses_no_user_message_for_an_ack_client(redis_server) -> None:
    app = ("--app", "tests.helpers.app_hooks:install_users", "--redis-prefix", "bayeux-test")
    a, url_a = serve(redis_server.url, *app)
    try:
        with node(redis_server.url) as b:
            wait_ready(b)
            presence: list = []
            b.call(lambda: install(b, presence))
            removed: list = []
            b.call(
                lambda: b.endpoint.server.on_session_removed(
                    lambda session, reason: removed.append((session.id, session.user, reason))
                )
            )
            frank = handshake(url_a, "frank")["clientId"]  # frank's only session, on a
            message = {
                "channel": "/meta/handshake",
                "version": "1.0",
                "supportedConnectionTypes": ["long-polling"],
                "ext": {"user": "erin", "ack": True},
            }
            (reply,) = post_json(url_a, [message]).json()
            erin = as_client(reply["clientId"])
            erin.ack = -1
            erin.connect(url_a)
            for n in range(5):
                b.await_(lambda n=n: b.endpoint.server.deliver_to_user("erin", "/inbox", n))
            time.sleep(0.3)  # queued on a, not yet fetched
            a.kill()
            a.wait(10)
            # The ack client gets every message, from b, nothing twice.
            assert erin.poll_until([b.url], 5) == [0, 1, 2, 3, 4]
            erin.connect(b.url, timeout=0)
            assert erin.received == [0, 1, 2, 3, 4]
            # frank's only session was on the killed process: offline within maxInterval
            # (3 s here) and a sweep, told once, by the process that found out.
            deadline = time.monotonic() + 15
            while ("frank", False) not in presence:
                assert time.monotonic() < deadline, "frank stayed online"
                erin.connect(b.url, timeout=0)  # erin stays: she must not expire meanwhile
                time.sleep(0.2)
            assert ("erin", False) not in presence and presence.count(("frank", False)) == 1
            # Session listeners hear of frank's session once, with the reason and its record.
            assert removed == [(frank, "frank", Ended.EXPIRED)]
            assert b.await_(lambda: b.endpoint.server.online_users()) == ["erin"]
    finally:
        stop_process(a)


def test_max_sessions_per_user_holds_across_the_deployment(redis_server) -> None:
    with (
        node(redis_server.url, max_sessions_per_user=3) as a,
        node(redis_server.url, max_sessions_per_user=3) as b,
    ):
        wait_ready(a, b)
        presence: list = []
        for n in (a, b):
            n.call(lambda n=n: install(n, presence))
        handshake(a.url, "dave")
        handshake(b.url, "dave")
        handshake(a.url, "dave")
        # A fourth, on either process: the policy's associate is refused, and so the handshake.
        message = {
            "channel": "/meta/handshake",
            "version": "1.0",
            "supportedConnectionTypes": ["long-polling"],
            "ext": {"user": "dave"},
        }
        for url in (a.url, b.url):
            (reply,) = post_json(url, [message]).json()
            assert reply["successful"] is False
            assert reply["error"] == "403::Too many sessions for this user"
        assert presence == [("dave", True)]
        assert b.await_(lambda: b.endpoint.server.deliver_to_user("dave", "/inbox", 1)) == 3

        # Processes associating at once do not pass the limit together: the count and the
        # record are one script.
        def associate_many(n: ServerThread, user: str) -> list[Any]:
            server = n.endpoint.server

            async def many() -> list[Any]:
                sessions = [server.create_session() for _ in range(4)]
                return await asyncio.gather(
                    *(server.associate(user, s) for s in sessions), return_exceptions=True
                )

            return n.await_(many)

        with ThreadPoolExecutor(2) as pool:
            outcomes = [
                o
                for f in [pool.submit(associate_many, n, "carol") for n in (a, b)]
                for o in f.result()
            ]
        assert sum(o is None for o in outcomes) == 3
        assert all(isinstance(o, TooManySessions) for o in outcomes if o is not None)
        assert a.await_(lambda: a.endpoint.server.deliver_to_user("carol", "/inbox", 1)) == 3

        # A refused move leaves the session with its user, in Redis too.
        erins = b.call(b.endpoint.server.create_session)
        b.await_(lambda: b.endpoint.server.associate("erin", erins))
        with pytest.raises(TooManySessions):
            b.await_(lambda: b.endpoint.server.associate("carol", erins))
        assert erins.user == "erin"
        assert a.await_(lambda: a.endpoint.server.deliver_to_user("erin", "/inbox", 1)) == 1
