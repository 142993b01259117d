"""Hostile input over the wire: each case here was found against `./serve` with its defaults and
failed before the fix that it pins down (issue 8)."""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
import socket
import threading
import time

import msgpack
import pytest
import tornado.websocket

from bayeux import Endpoint, Extension, Settings
from bayeux.testing import ServerThread, start_cli, stop_process

from ..helpers.http import handshake, post_json, request
from ..helpers.rawws import RawWebSocket
from ..helpers.servers import handshake_message, next_frame, serve, ws_url

HANDSHAKE = handshake_message("websocket", "long-polling")

# Every case runs over the standalone connection layer and over Tornado embedding.
pytestmark = pytest.mark.usefixtures("both_layers")


# ---------------------------------------------------------------------------------- channels


def test_long_channel_names_are_refused_before_any_matching() -> None:
    with serve() as server:
        cid = handshake(server.url)
        huge = "/" + "a/" * 32767 + "b"  # 64 KiB, 32768 segments
        replies = post_json(
            server.url,
            [
                {"channel": huge, "clientId": cid, "data": 1, "id": "p"},
                {
                    "channel": "/meta/subscribe",
                    "clientId": cid,
                    "subscription": huge + "/**",
                    "id": "s",
                },
            ],
        ).json()
        assert [r["successful"] for r in replies] == [False, False]
        assert all(r["error"].startswith("405:") for r in replies)
        # The error's args are cut short: a huge name is not echoed back into the error text.
        assert all(len(r["error"]) < 200 for r in replies)


def test_many_segments_within_the_length_limit_are_refused() -> None:
    with serve(max_channel_segments=8) as server:
        cid = handshake(server.url)
        (reply,) = post_json(server.url, [{"channel": "/a" * 9, "clientId": cid, "data": 1}]).json()
        assert reply["error"] == "405:" + "/a" * 9 + ":Invalid channel"
        (reply,) = post_json(server.url, [{"channel": "/a" * 8, "clientId": cid, "data": 1}]).json()
        assert reply["successful"] is True


def test_a_trailing_newline_makes_a_channel_invalid() -> None:
    with serve() as server:
        cid = handshake(server.url)
        (reply,) = post_json(
            server.url, [{"channel": "/log/x\n", "clientId": cid, "data": 1}]
        ).json()
        assert reply["successful"] is False
        assert reply["error"].startswith("405:")
        assert "\n" not in reply["error"]


def test_error_text_keeps_its_three_fields_when_args_hold_colons_and_commas() -> None:
    with serve() as server:
        cid = handshake(server.url)
        (reply,) = post_json(
            server.url,
            [{"channel": "/meta/subscribe", "clientId": cid, "subscription": ["a:b,c", "/ok"]}],
        ).json()
        code, args, text = reply["error"].split(":")
        assert (code, text) == ("405", "Invalid channel")
        assert args == "a%3Ab%2Cc"


# ---------------------------------------------------------------------------------- sessions


def test_a_batch_of_handshakes_makes_one_session() -> None:
    with serve() as server:
        replies = post_json(server.url, [dict(HANDSHAKE, id=str(i)) for i in range(50)]).json()
        assert len(replies) == 1 and replies[0]["successful"] is True
        assert server.call(lambda: len(server.endpoint.server.sessions)) == 1


def test_sessions_per_websocket_connection_are_bounded() -> None:
    with serve(max_sessions_per_connection=3) as server:
        ws = RawWebSocket(ws_url(server))
        replies = []
        for i in range(5):
            ws.send([dict(HANDSHAKE, id=str(i))])
            replies.extend(ws.read())
        assert [r["successful"] for r in replies] == [True, True, True, False, False]
        refused = replies[3]
        assert refused["error"] == "503::Too many sessions on this connection"
        assert refused["advice"]["reconnect"] == "handshake"
        assert server.call(lambda: len(server.endpoint.server.sessions)) == 3
        # A disconnect frees a place on the connection.
        ws.send([{"channel": "/meta/disconnect", "clientId": replies[0]["clientId"]}])
        ws.read()
        ws.send([dict(HANDSHAKE, id="again")])
        assert ws.read()[0]["successful"] is True
        counted = server.call(lambda: dict(server.endpoint.server.stats.refused))
        assert counted == {"sessions-per-connection": 2}
        ws.close()


def test_handshakes_per_address_are_limited_over_a_window() -> None:
    with serve(max_handshakes_per_address=5, handshake_window=600) as server:
        outcomes = [post_json(server.url, [HANDSHAKE]).json()[0] for _ in range(7)]
        assert [o["successful"] for o in outcomes] == [True] * 5 + [False] * 2
        assert outcomes[5]["error"] == "429::Too many handshakes from this address"
        assert outcomes[5]["advice"]["reconnect"] == "handshake"
        assert 0 < outcomes[5]["advice"]["interval"] <= 600
        time.sleep(0.7)  # the window has passed
        assert post_json(server.url, [HANDSHAKE]).json()[0]["successful"] is True


def test_max_sessions_bounds_the_whole_server() -> None:
    with serve(max_sessions=4) as server:
        outcomes = [post_json(server.url, [HANDSHAKE]).json()[0] for _ in range(6)]
        assert [o["successful"] for o in outcomes] == [True] * 4 + [False] * 2
        assert outcomes[4]["error"] == "503::Too many sessions"
        assert server.call(lambda: len(server.endpoint.server.sessions)) == 4


def test_subscriptions_per_session_are_bounded() -> None:
    with serve(max_subscriptions=3) as server:
        cid = handshake(server.url)
        (ok,) = post_json(
            server.url,
            [{"channel": "/meta/subscribe", "clientId": cid, "subscription": ["/a", "/b", "/c"]}],
        ).json()
        assert ok["successful"] is True
        (refused,) = post_json(
            server.url, [{"channel": "/meta/subscribe", "clientId": cid, "subscription": "/d"}]
        ).json()
        assert refused["successful"] is False
        assert refused["error"] == "403:/d:Too many subscriptions"
        # Subscribing again to what it has is not a new subscription.
        (again,) = post_json(
            server.url, [{"channel": "/meta/subscribe", "clientId": cid, "subscription": "/a"}]
        ).json()
        assert again["successful"] is True


# ------------------------------------------------------------------------ numbers from the wire


def test_msgpack_infinite_timeout_is_refused_and_the_session_still_expires() -> None:
    with serve() as server:

        async def run() -> str:
            ws = await tornado.websocket.websocket_connect(
                ws_url(server), subprotocols=["bayeux-msgpack"]
            )
            await ws.write_message(msgpack.packb([HANDSHAKE]), binary=True)
            (reply,) = msgpack.unpackb(await next_frame(ws, 5))
            cid = reply["clientId"]
            connect = {"channel": "/meta/connect", "clientId": cid, "connectionType": "websocket"}
            await ws.write_message(msgpack.packb([dict(connect, id="1")]), binary=True)
            msgpack.unpackb(await next_frame(ws, 5))
            bad = dict(connect, id="2", advice={"timeout": float("inf")})
            await ws.write_message(msgpack.packb([bad]), binary=True)
            (refused,) = msgpack.unpackb(await next_frame(ws, 5))
            assert refused["successful"] is False
            assert refused["error"] == "400:advice.timeout:Invalid field"
            # The socket is still usable.
            await ws.write_message(
                msgpack.packb([dict(connect, id="3", advice={"timeout": 0})]), binary=True
            )
            (fine,) = msgpack.unpackb(await next_frame(ws, 5))
            assert fine["successful"] is True
            ws.close()
            return cid

        cid = asyncio.run(run())
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and server.call(
            lambda: cid in server.endpoint.server.sessions
        ):
            time.sleep(0.1)
        assert cid not in server.call(lambda: set(server.endpoint.server.sessions))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("advice", {"timeout": -1}),
        ("advice", {"timeout": "30000"}),
        ("advice", {"timeout": 1e300}),
        ("advice", {"interval": -5}),
        ("ext", {"ack": "7"}),
        ("ext", {"ack": 2**80}),
        ("ext", {"timesync": {"tc": 1e300, "l": 0, "o": 0}}),
        ("ext", {"timesync": {"tc": "now", "l": 0, "o": 0}}),
    ],
)
def test_out_of_range_numbers_get_a_400(field: str, value: dict) -> None:
    with serve() as server:
        cid = handshake(server.url)
        (reply,) = post_json(
            server.url,
            [
                {
                    "channel": "/meta/connect",
                    "clientId": cid,
                    "connectionType": "long-polling",
                    field: value,
                }
            ],
        ).json()
        assert reply["successful"] is False
        assert reply["error"].startswith("400:" + field + ".")


def test_msgpack_only_values_in_data_are_refused_with_a_bayeux_error() -> None:
    with serve() as server:

        async def run() -> list:
            ws = await tornado.websocket.websocket_connect(
                ws_url(server), subprotocols=["bayeux-msgpack"]
            )
            await ws.write_message(msgpack.packb([HANDSHAKE]), binary=True)
            (reply,) = msgpack.unpackb(await next_frame(ws, 5))
            cid = reply["clientId"]
            values = [float("nan"), float("inf"), 2**64 - 1, msgpack.ExtType(5, b"x"), b"raw"]
            batch = [
                {"channel": "/x", "clientId": cid, "id": str(i), "data": {"v": v}}
                for i, v in enumerate(values)
            ]
            await ws.write_message(msgpack.packb(batch, use_bin_type=True), binary=True)
            replies = msgpack.unpackb(await next_frame(ws, 5))
            ws.close()
            return replies

        replies = asyncio.run(run())
        assert [r["successful"] for r in replies] == [False] * 5
        assert all(r["error"].startswith("400:data") for r in replies)


# -------------------------------------------------------------------------- session lifecycle


def test_a_displaced_long_poll_leaves_the_new_one_held_to_its_timeout() -> None:
    with serve(timeout=2500, max_interval=500, multi_session_interval=300) as server:
        cid = handshake(server.url)
        connect = {"channel": "/meta/connect", "clientId": cid, "connectionType": "long-polling"}
        post_json(server.url, [connect])  # the first connect is answered at once
        results: dict[str, dict] = {}

        def poll(name: str) -> None:
            # No cookies: the browser budget is not what displaces here.
            results[name] = post_json(server.url, [dict(connect, id=name)]).json()[-1]

        first = threading.Thread(target=poll, args=("a",))
        first.start()
        time.sleep(0.3)
        second = threading.Thread(target=poll, args=("b",))
        started = time.monotonic()
        second.start()
        first.join(5)
        second.join(5)
        assert results["a"]["successful"] is True
        assert results["a"]["advice"]["multiple-clients"] is True
        assert results["b"]["successful"] is True, results["b"]
        assert time.monotonic() - started > 2.0  # held to its timeout, not expired under it


# ---------------------------------------------------------------------------------- memory


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


@pytest.mark.slow
def test_a_stalled_websocket_reader_costs_a_bounded_amount_of_memory_by_default() -> None:
    """One subscriber stops reading while 64 MiB are published to its channel; another reads
    everything. With the default settings the server grows by a few MiB, not by the backlog."""
    process, url = start_cli()
    try:
        wsurl = url.replace("http://", "ws://")
        stalled = RawWebSocket(wsurl, rcvbuf=4096)
        stalled.send([HANDSHAKE])
        stalled_id = stalled.read()[0]["clientId"]
        stalled.send(
            [
                {"channel": "/meta/subscribe", "clientId": stalled_id, "subscription": "/firehose"},
                {"channel": "/meta/connect", "clientId": stalled_id, "connectionType": "websocket"},
            ]
        )
        stalled.read()
        # From here on the stalled client reads nothing.
        payload = "x" * 65536
        count = 1024

        async def run() -> tuple[list, int]:
            reader = await tornado.websocket.websocket_connect(wsurl, max_message_size=64 << 20)
            await reader.write_message(json.dumps([HANDSHAKE]))
            cid = json.loads(await next_frame(reader))[0]["clientId"]
            await reader.write_message(
                json.dumps(
                    [
                        {
                            "channel": "/meta/subscribe",
                            "clientId": cid,
                            "subscription": "/firehose",
                        },
                        {
                            "channel": "/meta/connect",
                            "clientId": cid,
                            "connectionType": "websocket",
                            "advice": {"timeout": 0},
                        },
                    ]
                )
            )
            await reader.read_message()
            await reader.write_message(
                json.dumps(
                    [{"channel": "/meta/connect", "clientId": cid, "connectionType": "websocket"}]
                )
            )
            baseline = _rss_kib(process.pid)
            publisher = await tornado.websocket.websocket_connect(wsurl)
            await publisher.write_message(json.dumps([HANDSHAKE]))
            pid = json.loads(await next_frame(publisher))[0]["clientId"]
            got: list = []
            for i in range(count):
                await publisher.write_message(
                    json.dumps(
                        [{"channel": "/firehose", "clientId": pid, "data": {"i": i, "p": payload}}]
                    )
                )
                await publisher.read_message()
                while len(got) < i - 16:  # keep up, as a well-behaved reader does
                    frame = await next_frame(reader, 10)
                    got.extend(m["data"]["i"] for m in json.loads(frame) if "data" in m)
            while len(got) < count:
                frame = await next_frame(reader, 10)
                got.extend(m["data"]["i"] for m in json.loads(frame) if "data" in m)
            grown = _rss_kib(process.pid) - baseline
            reader.close()
            publisher.close()
            return got, grown

        got, grown_kib = asyncio.run(run())
        assert got == list(range(count))
        print(f"stalled reader: server grew by {grown_kib} KiB")
        assert grown_kib < 16 * 1024, f"server grew by {grown_kib} KiB"
        stalled.close()
    finally:
        stop_process(process)


def test_replies_to_a_client_that_does_not_read_are_not_buffered_without_bound() -> None:
    """A client sends request after request and reads nothing: the server stops reading its
    frames once one frame of replies waits, instead of buffering every reply."""
    with serve() as server:
        handled = []

        class Counting(Extension):
            def incoming(self, session: object, message: dict) -> bool:
                handled.append(message.get("id"))
                return True

        server.call(server.endpoint.server.add_extension, Counting())
        ws = RawWebSocket(ws_url(server), rcvbuf=4096)
        ws.send([HANDSHAKE])
        cid = ws.read()[0]["clientId"]
        patterns = [f"/topic/{i:05d}/{'x' * 40}" for i in range(700)]  # replies echo ~40 KiB
        frame_count = 400

        def flood() -> None:
            try:
                for i in range(frame_count):
                    ws.send(
                        [
                            {
                                "channel": "/meta/subscribe",
                                "clientId": cid,
                                "subscription": patterns,
                                "id": str(i),
                            }
                        ]
                    )
            except OSError:
                pass  # the server stopped reading us, as it should

        ws.sock.settimeout(3)
        sender = threading.Thread(target=flood, daemon=True)
        sender.start()
        sender.join(4)
        # ~16 MiB of replies were asked for; the server handled only what fits in the sockets.
        frames_handled = server.call(lambda: len(handled))
        print(f"frames handled: {frames_handled} of {frame_count}")
        assert frames_handled < frame_count // 2
        ws.close()


# ---------------------------------------------------------------------------- fault isolation


def test_data_one_subscriber_format_cannot_encode_is_refused_where_it_enters() -> None:
    with serve() as server:

        async def run() -> None:
            binary = await tornado.websocket.websocket_connect(
                ws_url(server), subprotocols=["bayeux-msgpack"]
            )
            text = await tornado.websocket.websocket_connect(ws_url(server))
            await binary.write_message(msgpack.packb([HANDSHAKE]), binary=True)
            bid = msgpack.unpackb(await next_frame(binary))[0]["clientId"]
            await text.write_message(json.dumps([HANDSHAKE]))
            tid = json.loads(await next_frame(text))[0]["clientId"]
            for sock, cid, pack in (
                (binary, bid, msgpack.packb),
                (text, tid, lambda v: json.dumps(v)),
            ):
                await sock.write_message(
                    pack(
                        [
                            {"channel": "/meta/subscribe", "clientId": cid, "subscription": "/t"},
                            {
                                "channel": "/meta/connect",
                                "clientId": cid,
                                "connectionType": "websocket",
                                "advice": {"timeout": 0},
                            },
                        ]
                    ),
                    binary=sock is binary,
                )
                await sock.read_message()
                await sock.write_message(
                    pack(
                        [
                            {
                                "channel": "/meta/connect",
                                "clientId": cid,
                                "connectionType": "websocket",
                            }
                        ]
                    ),
                    binary=sock is binary,
                )

            def publish_datetime() -> None:
                with pytest.raises(ValueError):
                    server.endpoint.publish("/t", {"at": datetime.datetime(2026, 1, 1)})
                server.endpoint.publish("/t", {"n": 1})

            server.call(publish_datetime)
            got_binary = msgpack.unpackb(await next_frame(binary, 5))
            got_text = json.loads(await next_frame(text, 5))
            assert got_binary == [{"channel": "/t", "data": {"n": 1}}]
            assert got_text == [{"channel": "/t", "data": {"n": 1}}]
            binary.close()
            text.close()

        asyncio.run(run())


# ------------------------------------------------------------------------------ origins, logs


def restricted() -> ServerThread:
    endpoint = Endpoint(
        Settings(timeout=2000, max_interval=1000, sweep_period=100),
        allowed_origins=("http://good.example",),
    )
    return ServerThread(endpoint=endpoint).start()


def test_restricted_origins_refuse_every_transport_from_other_origins() -> None:
    with restricted() as server:
        body = json.dumps([HANDSHAKE])
        evil = {"Origin": "http://evil.example"}
        # A text/plain form POST needs no preflight, so the browser sends it: refuse it.
        plain = request(
            server.url, body="message=" + body, headers={**evil, "Content-Type": "text/plain"}
        )
        assert plain.status == 403
        # A JSONP script tag sends no Origin, only a Referer.
        from urllib.parse import quote

        jsonp = request(
            server.url + "?jsonp=cb&message=" + quote(body),
            method="GET",
            headers={"Referer": "http://evil.example/page.html"},
        )
        assert jsonp.status == 403
        assert (
            request(
                server.url + "/abc", method="GET", headers={**evil, "Accept": "text/event-stream"}
            ).status
            == 403
        )
        # Allowed origins and same-origin pages are served; so are clients that send neither.
        good = request(
            server.url,
            body=body,
            headers={"Origin": "http://good.example", "Content-Type": "application/json"},
        )
        assert good.status == 200
        same = request(
            server.url,
            body=body,
            headers={"Origin": server.origin, "Content-Type": "application/json"},
        )
        assert same.status == 200
        assert (
            request(server.url, body=body, headers={"Content-Type": "application/json"}).status
            == 200
        )
        # Three handshakes were served (allowed, same-origin, no origin); none of the refused.
        assert server.call(lambda: len(server.endpoint.server.sessions)) == 3


def test_preflight_allows_a_fixed_list_of_headers() -> None:
    with restricted() as server:
        reply = request(
            server.url,
            method="OPTIONS",
            headers={
                "Origin": "http://good.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type, x-evil-header",
            },
        )
        allowed = {
            h.strip().lower() for h in reply.headers["Access-Control-Allow-Headers"].split(",")
        }
        assert "content-type" in allowed
        assert "x-evil-header" not in allowed


def test_access_logs_carry_no_client_ids(caplog: pytest.LogCaptureFixture) -> None:
    with serve() as server, caplog.at_level(logging.DEBUG):
        cid = handshake(server.url)
        from urllib.parse import quote

        message = json.dumps(
            [
                {
                    "channel": "/meta/connect",
                    "clientId": cid,
                    "connectionType": "callback-polling",
                    "advice": {"timeout": 0},
                }
            ]
        )
        request(server.url + "?jsonp=cb&message=" + quote(message), method="GET")
        try:  # an EventSource stream stays open: read its start, then hang up
            request(
                server.url + "/" + cid,
                method="GET",
                headers={"Accept": "text/event-stream"},
                timeout=0.5,
            )
        except TimeoutError:
            pass
        request(
            server.url + "/%0a" + cid[:5], method="GET", headers={"Accept": "text/event-stream"}
        )
        records = [r.getMessage() for r in caplog.records]
        assert any("GET" in r for r in records), records
        assert not any(cid in r for r in records)
        assert not any("\n" in r for r in records)


# ---------------------------------------------------------------------------- transport edges


def _closed_within(sock: socket.socket, seconds: float) -> bool:
    """Whether the server closes `sock` within `seconds` (reading and discarding anything)."""
    sock.settimeout(seconds)
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            if sock.recv(65536) == b"":
                return True
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True
    return False


def test_connections_beyond_max_connections_are_closed_at_once() -> None:
    # The standalone listener's bounds (an embedding application runs its own server).
    with serve(max_connections=3, embedded=False) as server:

        async def run() -> None:
            sockets = [await tornado.websocket.websocket_connect(ws_url(server)) for _ in range(2)]
            idle = socket.create_connection(("127.0.0.1", server.port))
            time.sleep(0.2)
            extra = socket.create_connection(("127.0.0.1", server.port))
            assert _closed_within(extra, 2)
            assert server.call(lambda: server.endpoint.server.stats.refused["max-connections"]) == 1
            # Closing one makes room for the next; the WebSockets still work.
            sockets[0].close()
            time.sleep(0.2)
            assert post_json(server.url, [HANDSHAKE]).json()[0]["successful"] is True
            await sockets[1].write_message(json.dumps([HANDSHAKE]))
            assert json.loads(await next_frame(sockets[1]))[0]["successful"] is True
            idle.close()
            sockets[1].close()

        asyncio.run(run())


def test_a_slow_request_header_is_cut_off_by_the_idle_timeout() -> None:
    # The standalone listener's bounds (an embedding application runs its own server).
    with serve(idle_timeout=500, embedded=False) as server:
        slow = socket.create_connection(("127.0.0.1", server.port))
        slow.sendall(b"POST /cometd HTTP/1.1\r\nHost: x\r\n")  # and never the rest
        assert _closed_within(slow, 3)
        # An idle keep-alive connection is closed too.
        idle = socket.create_connection(("127.0.0.1", server.port))
        assert _closed_within(idle, 3)


def test_a_slow_request_body_is_cut_off_by_the_body_timeout() -> None:
    # The standalone listener's bounds (an embedding application runs its own server).
    with serve(body_timeout=500, embedded=False) as server:
        slow = socket.create_connection(("127.0.0.1", server.port))
        slow.sendall(
            b"POST /cometd HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000\r\n\r\n[{"
        )
        assert _closed_within(slow, 3)


def test_websocket_peers_that_do_not_answer_pings_are_dropped() -> None:
    with serve(ws_ping_interval=300) as server:
        silent = RawWebSocket(ws_url(server))  # reads, but never answers a ping
        silent.send([HANDSHAKE])
        silent.read()
        opcodes = []
        silent.sock.settimeout(3)
        try:
            while True:
                opcode, _ = silent.read_frame()
                opcodes.append(opcode)
                if opcode == 0x8:
                    break
        except (EOFError, OSError):
            pass
        assert 0x9 in opcodes  # pinged
        # Closed (with a close frame, or dropped: a half-open peer would not read one), and
        # no longer counted once the server has seen it go.
        deadline = time.monotonic() + 2
        while server.call(lambda: server.endpoint.connections) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert opcodes[-1] == 0x8 or server.call(lambda: server.endpoint.connections) == 0

        async def answering() -> None:  # tornado's client answers pings: it stays
            ws = await tornado.websocket.websocket_connect(ws_url(server))
            await asyncio.sleep(1.2)
            await ws.write_message(json.dumps([HANDSHAKE]))
            assert json.loads(await next_frame(ws))[0]["successful"] is True
            ws.close()

        asyncio.run(answering())


def test_a_socket_that_fails_to_flush_is_dropped_and_the_others_still_get_messages(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with serve() as server:

        async def run() -> None:
            victims, fine = [], None
            for i in range(3):
                ws = await tornado.websocket.websocket_connect(ws_url(server))
                await ws.write_message(json.dumps([HANDSHAKE]))
                cid = json.loads(await next_frame(ws))[0]["clientId"]
                await ws.write_message(
                    json.dumps(
                        [
                            {"channel": "/meta/subscribe", "clientId": cid, "subscription": "/t"},
                            {
                                "channel": "/meta/connect",
                                "clientId": cid,
                                "connectionType": "websocket",
                                "advice": {"timeout": 0},
                            },
                        ]
                    )
                )
                await ws.read_message()
                if i < 2:
                    victims.append((ws, cid))
                else:
                    fine = ws

            def break_first_socket() -> None:
                link = server.endpoint.server.sessions[victims[0][1]].waiter
                if link is None:  # no held connect: find the socket through a fresh link
                    raise AssertionError("session not linked to its socket")

                victim = link.socket  # type: ignore[attr-defined]
                socket_class = type(victim)
                flush = socket_class._flush  # sockets have __slots__: patch the class, for one

                def explode(self: object, now: float) -> int:
                    if self is victim:
                        raise RuntimeError("write failed")
                    return flush(self, now)

                monkeypatch.setattr(socket_class, "_flush", explode)

            for ws, cid in victims:
                await ws.write_message(
                    json.dumps(
                        [
                            {
                                "channel": "/meta/connect",
                                "clientId": cid,
                                "connectionType": "websocket",
                            }
                        ]
                    )
                )
            assert fine is not None
            server.call(break_first_socket)
            server.call(server.endpoint.publish, "/t", 1)
            assert json.loads(await next_frame(fine, 5)) == [{"channel": "/t", "data": 1}]
            assert json.loads(await next_frame(victims[1][0], 5)) == [{"channel": "/t", "data": 1}]
            assert await asyncio.wait_for(victims[0][0].read_message(), 5) is None  # dropped
            server.call(server.endpoint.publish, "/t", 2)  # the flusher still runs
            assert json.loads(await next_frame(fine, 5))[0]["data"] == 2

        asyncio.run(run())
