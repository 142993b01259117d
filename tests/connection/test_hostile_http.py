"""Hostile HTTP input, second round: each case failed before the fix that it pins down (issue:
bounds in bytes of memory). The transport cases run over the standalone layer and Tornado
embedding; the HTTP head is the standalone layer's own (Tornado's HTTPServer bounds its own)."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from urllib.parse import quote

import pytest

from bayeux import Endpoint, Settings
from bayeux.core.limits import CONNECTION_OVERHEAD
from bayeux.testing import ServerThread

from ..helpers.http import handshake, post_json, request
from ..helpers.servers import handshake_message

HANDSHAKE = handshake_message("long-polling", "callback-polling")


def restricted() -> ServerThread:
    endpoint = Endpoint(
        Settings(timeout=2000, max_interval=1000, sweep_period=100),
        allowed_origins=("http://good.example",),
    )
    return ServerThread(endpoint=endpoint).start()


@pytest.mark.usefixtures("both_layers")
def test_a_script_request_naming_no_page_is_refused_when_origins_are_restricted() -> None:
    """A page with `Referrer-Policy: no-referrer` loads a JSONP script with neither Origin nor
    Referer: answered, the callback would hand the reply to that cross-site page."""
    with restricted() as server:
        query = "?jsonp=cb&message=" + quote(json.dumps([HANDSHAKE]))
        bare = request(server.url + query, method="GET")
        assert bare.status == 403
        assert b"cb(" not in bare.body
        allowed = request(
            server.url + query, method="GET", headers={"Referer": "http://good.example/page"}
        )
        assert allowed.status == 200 and allowed.body.startswith(b"/**/cb(")
        # An event stream likewise (its session is irrelevant: refused before it is looked up).
        stream = request(server.url + "/abc", method="GET", headers={"Accept": "text/event-stream"})
        assert stream.status == 403
        # Non-browser long-polling clients, which send no Origin, are still served.
        assert post_json(server.url, [HANDSHAKE]).json()[0]["successful"] is True


@pytest.mark.usefixtures("both_layers")
def test_scripts_without_an_origin_are_served_when_every_origin_is() -> None:
    with ServerThread(Settings(timeout=2000)) as server:
        query = "?jsonp=cb&message=" + quote(json.dumps([HANDSHAKE]))
        assert request(server.url + query, method="GET").status == 200


@pytest.mark.usefixtures("both_layers")
def test_a_batch_of_too_many_messages_is_refused_before_it_is_handled() -> None:
    """~70,000 minimal messages fit in a megabyte: each took CPU and an encoded reply, and
    the whole batch was answered while every other client waited (0.83 s, ~300 MiB)."""
    with ServerThread(Settings(timeout=2000, max_batch_messages=100)) as server:
        cid = handshake(server.url)
        batch = [{"channel": "/meta/subscribe", "clientId": cid, "subscription": "/a"}] * 101
        refused = post_json(server.url, batch)
        assert refused.status == 413
        assert b"more than 100 messages" in refused.body
        # Nothing of it was handled: the session has no subscription.
        assert server.call(lambda: server.endpoint.server.sessions[cid].subscriptions) == set()
        assert post_json(server.url, batch[:100]).status == 200
        # The same bound for form bodies (each field one batch) and JSONP.
        form = "&".join("message=" + quote(json.dumps(batch[:60])) for _ in range(2))
        response = request(
            server.url,
            body=form,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert response.status == 413
        jsonp = request(
            server.url + "?jsonp=cb&message=" + quote(json.dumps(batch)),
            method="GET",
        )
        assert jsonp.status in (413, 414)  # a proxy or the host may refuse the URL itself


# ------------------------------------------------------------------ the HTTP head, bounded


def _raw(server: ServerThread) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    return sock


def _status_or_close(sock: socket.socket, deadline: float = 5.0) -> bytes:
    """The server's answer (its status line) or b'' when it closed without one."""
    sock.settimeout(deadline)
    try:
        data = sock.recv(4096)
    except (ConnectionResetError, BrokenPipeError):
        return b""
    return data.split(b"\r\n", 1)[0]


def _send_until_refused(sock: socket.socket, chunk: bytes, limit: int) -> int:
    """Sends `chunk` repeatedly, up to `limit` bytes; how many were sent before the server
    refused (stopped taking them)."""
    sent = 0
    sock.settimeout(5)
    try:
        while sent < limit:
            sock.sendall(chunk)
            sent += len(chunk)
    except (BrokenPipeError, ConnectionResetError, TimeoutError):
        pass
    return sent


@pytest.mark.parametrize(
    "start",
    [b"GET /cometd?", b"GET /cometd HTTP/1.1\r\nX-Long: "],
    ids=["request-line", "header-line"],
)
def test_an_unterminated_head_line_is_refused_at_the_head_bound(start: bytes) -> None:
    """A request line or header line that never ends was read on (110-120 MiB over 4
    connections) where the head is bounded to 64 KiB: refused with 431 (or closed) instead."""
    with ServerThread(Settings(timeout=2000)) as server:
        sock = _raw(server)
        sock.sendall(start)
        sent = _send_until_refused(sock, b"a" * 16384, 8 * 1024 * 1024)
        status = _status_or_close(sock)
        sock.close()
        assert sent < 8 * 1024 * 1024, sent  # refused before it all went (the rest: kernel buffers)
        assert status in (
            b"",
            b"HTTP/1.1 414 Request-URI Too Long",
            b"HTTP/1.1 431 Request Header Fields Too Large",
        ), status


def test_repeated_header_lines_cost_linear_time_and_are_bounded() -> None:
    """One header line repeated many times was joined again at each repeat (quadratic: ~68 ms
    of CPU a request) and never counted against the bound on header lines."""
    with ServerThread(Settings(timeout=2000)) as server:
        head = b"POST /cometd HTTP/1.1\r\nHost: x\r\n" + b"a: b\r\n" * 10_000 + b"\r\n"
        sock = _raw(server)
        started = time.monotonic()
        sock.sendall(head)
        status = _status_or_close(sock)
        sock.close()
        assert status in (b"", b"HTTP/1.1 431 Request Header Fields Too Large"), status
        # And the server is still answering others at once.
        assert post_json(server.url, [HANDSHAKE]).status == 200
        assert time.monotonic() - started < 5


# ------------------------------------------------- what one address's connections hold


def _eventually(check: Callable[[], bool], within: float = 5.0) -> bool:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _served(url: str) -> bool:
    try:
        return post_json(url, [HANDSHAKE]).status == 200
    except OSError:  # closed on accept: the address's budget is still spent
        return False


def test_connections_from_one_address_are_charged_to_its_budget() -> None:
    """Each open connection and what it buffers count against max_address_bytes: one address
    could hold every one of max_connections, each with a megabyte of body on its way."""
    with ServerThread(Settings(max_address_bytes=3 * CONNECTION_OVERHEAD + 1000)) as server:
        held = [_raw(server) for _ in range(3)]
        time.sleep(0.2)  # accepted
        refused = _raw(server)
        assert _status_or_close(refused) == b""  # closed as soon as accepted
        refused.close()
        held.pop().close()
        # One closed: its share is back (once the server has seen it close), and a request is
        # served again.
        assert _eventually(lambda: _served(server.url))
        for sock in held:
            sock.close()
        stats = server.call(lambda: dict(server.endpoint.server.stats.refused))
        assert stats.get("address-bytes", 0) >= 1


def test_a_body_on_its_way_is_charged_to_its_address() -> None:
    body_room = 100 * 1024
    with ServerThread(
        Settings(max_address_bytes=2 * CONNECTION_OVERHEAD + body_room + 1000)
    ) as server:
        first, second = _raw(server), _raw(server)
        head = (
            b"POST /cometd HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 500000\r\n\r\n"
        )
        first.sendall(head + b" " * 80 * 1024)  # held: the body is not complete
        time.sleep(0.2)
        second.sendall(head + b" " * 80 * 1024)
        assert _status_or_close(second) == b"HTTP/1.1 503 Service Unavailable"
        first.close()
        second.close()
        # Both gone: the address has its whole budget back.
        assert _eventually(lambda: server.call(lambda: len(server.endpoint.server.budgets)) == 0)
