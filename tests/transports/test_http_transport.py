"""Long-polling and callback-polling over real HTTP connections."""

from __future__ import annotations

import json
import socket
import threading
import time
from urllib.parse import quote, urlencode, urlsplit

import pytest

from ..helpers.http import handshake, post_json, request
from ..helpers.servers import handshake_message

# Every case runs over the standalone connection layer and over Tornado embedding.
pytestmark = pytest.mark.usefixtures("both_layers")


def test_handshake_reply_is_json_at_mount_and_subpaths(live) -> None:
    for path in ("", "/", "/handshake", "/any/depth"):
        response = post_json(
            live.url,
            [
                {
                    "channel": "/meta/handshake",
                    "version": "1.0",
                    "supportedConnectionTypes": ["long-polling"],
                }
            ],
            path=path,
        )
        assert response.status == 200, path
        assert response.headers["Content-Type"] == "application/json;charset=utf-8"
        assert response.json()[0]["successful"] is True


def test_other_paths_are_not_served(live) -> None:
    other = live.url.replace("/cometd", "/cometdx")
    assert request(other, body="[]").status == 404


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "application/json;charset=utf-8",
        "application/json; charset=utf-8",
        "Application/JSON; charset=UTF-8",
        "text/plain;charset=UTF-8",
    ],
)
def test_json_bodies_are_read_whatever_their_content_type_spelling(live, content_type) -> None:
    handshake = json.dumps([handshake_message()])
    response = request(live.url, body=handshake, headers={"Content-Type": content_type})
    assert response.status == 200
    assert response.json()[0]["successful"] is True


def test_single_object_body_is_accepted(live) -> None:
    response = post_json(
        live.url,
        {
            "channel": "/meta/handshake",
            "version": "1.0",
            "supportedConnectionTypes": ["long-polling"],
        },
    )
    assert response.status == 200 and isinstance(response.json(), list)


def test_form_encoded_message_single_and_repeated(live) -> None:
    client_id = handshake(live.url)
    form = urlencode(
        [
            (
                "message",
                json.dumps(
                    {
                        "channel": "/meta/subscribe",
                        "clientId": client_id,
                        "subscription": "/a",
                        "id": "1",
                    }
                ),
            ),
            (
                "message",
                json.dumps(
                    [
                        {
                            "channel": "/meta/subscribe",
                            "clientId": client_id,
                            "subscription": "/b",
                            "id": "2",
                        }
                    ]
                ),
            ),
        ]
    )
    response = request(
        live.url, body=form, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert response.status == 200
    assert [r["id"] for r in response.json()] == ["1", "2"]
    assert all(r["successful"] for r in response.json())


def test_malformed_bodies_get_400_with_a_reason(live) -> None:
    for body in ("", "{oops", "42", "[1]", '[{"data": 1}]', '[{"channel": 7}]'):
        response = request(live.url, body=body, headers={"Content-Type": "application/json"})
        assert response.status == 400, body
        assert response.body.strip(), "400 without a reason"
    for body in ("", " \r\n "):
        response = request(live.url, body=body, headers={"Content-Type": "application/json"})
        assert (response.status, response.body) == (400, b"empty request body\n")
    response = request(live.url, body="{oops", headers={"Content-Type": "application/json"})
    assert response.body == b"request body is not valid JSON\n"
    response = request(
        live.url, body="x=1", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert response.status == 400


def test_declared_oversized_body_gets_413_before_it_is_sent(live) -> None:
    parts = urlsplit(live.url)
    with socket.create_connection((parts.hostname, parts.port), 5) as sock:
        sock.sendall(
            f"POST {parts.path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {10 << 20}\r\n\r\n".encode()
        )
        status_line = sock.makefile("rb").readline()
    assert status_line.startswith(b"HTTP/1.1 413")


def test_chunked_oversized_body_gets_413(live) -> None:
    parts = urlsplit(live.url)
    chunk = b"x" * 16384
    with socket.create_connection((parts.hostname, parts.port), 5) as sock:
        sock.sendall(
            f"POST {parts.path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
        )
        try:
            for _ in range(8):  # 128 KiB against a 64 KiB limit
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        except OSError:
            pass  # the server may close once it has answered
        status_line = sock.makefile("rb").readline()
    assert status_line.startswith(b"HTTP/1.1 413")


def test_body_just_under_the_limit_is_processed(live) -> None:
    client_id = handshake(live.url)
    pad = "x" * (60 * 1024)
    response = post_json(live.url, [{"channel": "/a", "clientId": client_id, "data": pad}])
    assert response.status == 200 and response.json()[0]["successful"] is True


def test_cors_echoes_allowed_origin_only(live) -> None:
    body = json.dumps(
        [
            {
                "channel": "/meta/handshake",
                "version": "1.0",
                "supportedConnectionTypes": ["long-polling"],
            }
        ]
    )
    good = request(
        live.url,
        body=body,
        headers={"Content-Type": "application/json", "Origin": "http://good.example"},
    )
    assert good.headers["Access-Control-Allow-Origin"] == "http://good.example"
    assert good.headers["Access-Control-Allow-Credentials"] == "true"
    bad = request(
        live.url,
        body=body,
        headers={"Content-Type": "application/json", "Origin": "http://evil.example"},
    )
    assert bad.status == 403
    assert "Access-Control-Allow-Origin" not in bad.headers
    preflight = request(
        live.url,
        method="OPTIONS",
        path="/connect",
        headers={
            "Origin": "http://good.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,x-custom",
        },
    )
    assert preflight.status == 204
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    # A fixed list, never an echo of what was asked.
    assert "x-custom" not in preflight.headers["Access-Control-Allow-Headers"].lower()
    assert "content-type" in preflight.headers["Access-Control-Allow-Headers"].lower()


def test_held_connect_is_released_by_a_publish(live) -> None:
    subscriber, publisher = handshake(live.url), handshake(live.url)
    post_json(
        live.url, [{"channel": "/meta/subscribe", "clientId": subscriber, "subscription": "/hold"}]
    )
    connect = {"channel": "/meta/connect", "clientId": subscriber, "connectionType": "long-polling"}
    post_json(live.url, [connect])  # the first connect returns at once
    result = {}

    def poll() -> None:
        started = time.monotonic()
        result["reply"] = post_json(live.url, [connect]).json()
        result["elapsed"] = time.monotonic() - started

    thread = threading.Thread(target=poll)
    thread.start()
    time.sleep(0.3)
    post_json(
        live.url,
        [
            {"channel": "/hold", "clientId": publisher, "data": "a"},
            {"channel": "/hold", "clientId": publisher, "data": "b"},
        ],
    )
    thread.join(5)
    assert result["elapsed"] < 1.5
    # Deliveries first, in order, then the connect reply that closes the batch.
    assert [m.get("data") for m in result["reply"]] == ["a", "b", None]
    assert result["reply"][-1]["channel"] == "/meta/connect"


def test_a_connect_answered_at_once_displaces_the_held_one(live) -> None:
    client_id = handshake(live.url)
    connect = {"channel": "/meta/connect", "clientId": client_id, "connectionType": "long-polling"}
    post_json(live.url, [connect])  # the first connect returns at once
    result = {}

    def poll() -> None:
        started = time.monotonic()
        result["reply"] = post_json(live.url, [connect]).json()
        result["elapsed"] = time.monotonic() - started

    thread = threading.Thread(target=poll)
    thread.start()
    time.sleep(0.3)
    started = time.monotonic()
    at_once = post_json(live.url, [{**connect, "advice": {"timeout": 0}}]).json()
    assert time.monotonic() - started < 1.0
    thread.join(5)
    assert at_once[0]["successful"] is True
    assert "multiple-clients" not in at_once[0]["advice"]
    # The held connect (2 s otherwise) is answered as soon as the other one came.
    assert result["elapsed"] < 1.5
    assert result["reply"][0]["successful"] is True
    assert result["reply"][0]["advice"]["multiple-clients"] is True


def test_held_connect_times_out_with_advice(live) -> None:
    client_id = handshake(live.url)
    connect = {"channel": "/meta/connect", "clientId": client_id, "connectionType": "long-polling"}
    post_json(live.url, [connect])
    started = time.monotonic()
    reply = post_json(live.url, [connect]).json()
    elapsed = time.monotonic() - started
    assert 1.8 < elapsed < 3.5
    assert reply == [
        {
            "channel": "/meta/connect",
            "clientId": client_id,
            "successful": True,
            "advice": {"reconnect": "retry", "interval": 0, "timeout": 2000, "maxInterval": 3000},
        }
    ]


def test_client_closing_a_held_connect_frees_it(live) -> None:
    client_id = handshake(live.url)
    connect = json.dumps(
        [{"channel": "/meta/connect", "clientId": client_id, "connectionType": "long-polling"}]
    )
    post_json(live.url, json.loads(connect))
    parts = urlsplit(live.url)
    sock = socket.create_connection((parts.hostname, parts.port), 5)
    sock.sendall(
        f"POST {parts.path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(connect)}\r\n\r\n{connect}".encode()
    )
    session = live.endpoint.server.sessions[client_id]
    deadline = time.monotonic() + 2
    while live.call(lambda: session.waiter) is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert live.call(lambda: session.waiter) is not None, "connect was not held"
    sock.close()
    deadline = time.monotonic() + 2
    while live.call(lambda: session.waiter) is not None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert live.call(lambda: session.waiter) is None, "closed connect still held"
    # ...and the session's expiry clock runs again instead of staying paused.
    assert live.call(lambda: session.deadline) is not None


def test_session_expires_and_then_gets_402(live) -> None:
    client_id = handshake(live.url)
    time.sleep(3.4)
    reply = post_json(
        live.url,
        [{"channel": "/meta/connect", "clientId": client_id, "connectionType": "long-polling"}],
    ).json()
    assert reply[0]["error"] == "402::Unknown client"
    assert reply[0]["advice"]["reconnect"] == "handshake"


# ---------------------------------------------------------------------- callback-polling


def jsonp(url: str, query: str):
    # A script tag's request names its page in Referer (the `live` server restricts origins).
    return request(url + "?" + query, method="GET", headers={"Referer": "http://good.example/"})


def test_jsonp_wraps_reply_in_callback(live) -> None:
    message = quote(
        json.dumps(
            [
                {
                    "channel": "/meta/handshake",
                    "version": "1.0",
                    "supportedConnectionTypes": ["callback-polling"],
                }
            ]
        )
    )
    response = jsonp(live.url, f"jsonp=cometd._cb1&message={message}")
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/javascript;charset=utf-8"
    body = response.body.decode()
    assert body.startswith("/**/cometd._cb1([") and body.endswith("]);")
    assert json.loads(body[len("/**/cometd._cb1(") : -2])[0]["successful"] is True


def test_jsonp_default_callback_and_bad_input(live) -> None:
    message = quote(
        json.dumps(
            [
                {
                    "channel": "/meta/handshake",
                    "version": "1.0",
                    "supportedConnectionTypes": ["callback-polling"],
                }
            ]
        )
    )
    assert jsonp(live.url, f"message={message}").body.startswith(b"/**/jsonpcallback(")
    for query in (
        f"jsonp=alert(1)&message={message}",
        f"jsonp={'a' * 200}&message={message}",
        "jsonp=cb&message=%7Bnope",
        "jsonp=cb",
    ):
        response = jsonp(live.url, query)
        assert response.status == 400, query
        assert b"alert(1)" not in response.body


def test_bad_request_does_not_disturb_other_sessions(live) -> None:
    subscriber, publisher = handshake(live.url), handshake(live.url)
    post_json(
        live.url, [{"channel": "/meta/subscribe", "clientId": subscriber, "subscription": "/ok"}]
    )
    for body in ("{oops", "[1]", "x" * 100):
        request(live.url, body=body, headers={"Content-Type": "application/json"})
    post_json(live.url, [{"channel": "/ok", "clientId": publisher, "data": 1}])
    reply = post_json(
        live.url,
        [{"channel": "/meta/connect", "clientId": subscriber, "connectionType": "long-polling"}],
    ).json()
    assert reply[0] == {"channel": "/ok", "data": 1}


def test_second_long_poll_of_a_browser_gets_multiple_clients_advice(live) -> None:
    first = post_json(
        live.url,
        [
            {
                "channel": "/meta/handshake",
                "version": "1.0",
                "supportedConnectionTypes": ["long-polling"],
            }
        ],
    )
    cookie = first.headers["Set-Cookie"].split(";")[0]
    assert cookie.startswith("BAYEUX_BROWSER=")
    headers = {"Content-Type": "application/json", "Cookie": cookie}
    # A second tab of the same browser (its sessions are bound to the browser that made them).
    second = post_json(live.url, [handshake_message()], headers={"Cookie": cookie})
    a, b = first.json()[0]["clientId"], second.json()[0]["clientId"]
    for cid in (a, b):  # first connects return at once
        request(
            live.url,
            body=json.dumps(
                [{"channel": "/meta/connect", "clientId": cid, "connectionType": "long-polling"}]
            ),
            headers=headers,
        )
    held = threading.Thread(
        target=request,
        args=(live.url,),
        kwargs={
            "body": json.dumps(
                [{"channel": "/meta/connect", "clientId": a, "connectionType": "long-polling"}]
            ),
            "headers": headers,
        },
    )
    held.start()
    time.sleep(0.3)
    started = time.monotonic()
    reply = request(
        live.url,
        body=json.dumps(
            [{"channel": "/meta/connect", "clientId": b, "connectionType": "long-polling"}]
        ),
        headers=headers,
    ).json()[0]
    assert time.monotonic() - started < 1.0
    assert reply["successful"] is True
    assert reply["advice"]["multiple-clients"] is True
    assert reply["advice"]["interval"] == live.endpoint.settings.multi_session_interval
    held.join(5)


def test_lazy_message_waits_for_company_then_wakes_the_held_connect() -> None:
    from bayeux import Endpoint, Settings
    from bayeux.testing import ServerThread

    endpoint = Endpoint(Settings(timeout=5000, max_lazy_timeout=800, browser_cookie=""))
    endpoint.server.set_lazy("/ticker/**")
    with ServerThread(endpoint=endpoint) as live:
        subscriber, publisher = handshake(live.url), handshake(live.url)
        post_json(
            live.url,
            [{"channel": "/meta/subscribe", "clientId": subscriber, "subscription": "/**"}],
        )
        connect = [
            {"channel": "/meta/connect", "clientId": subscriber, "connectionType": "long-polling"}
        ]
        post_json(live.url, connect)

        def timed_poll(publish: list) -> tuple[float, list]:
            result: dict = {}

            def poll() -> None:
                started = time.monotonic()
                result["reply"] = post_json(live.url, connect).json()
                result["elapsed"] = time.monotonic() - started

            thread = threading.Thread(target=poll)
            thread.start()
            time.sleep(0.2)
            post_json(live.url, publish)
            thread.join(10)
            return result["elapsed"], [m.get("data") for m in result["reply"] if "data" in m]

        elapsed, data = timed_poll([{"channel": "/ticker/a", "clientId": publisher, "data": 1}])
        assert 0.8 <= elapsed < 2.0 and data == [1]  # waited max_lazy_timeout, not the timeout
        elapsed, data = timed_poll(
            [
                {"channel": "/ticker/a", "clientId": publisher, "data": 2},
                {"channel": "/urgent", "clientId": publisher, "data": 3},
            ]
        )
        assert elapsed < 0.6 and data == [2, 3]  # a normal message wakes it at once


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("BAYEUX_BROWSER=abc", "abc"),
        ("a=1; BAYEUX_BROWSER = abc ;b=2", "abc"),
        ('BAYEUX_BROWSER="abc"', "abc"),
        ("BAYEUX_BROWSER=first; BAYEUX_BROWSER=second", "first"),
        ("XBAYEUX_BROWSER=abc; flag", None),
        ("BAYEUX_BROWSER", None),
        ("", None),
    ],
)
def test_a_request_reads_its_cookies_as_browsers_send_them(header: str, expected: str) -> None:
    from bayeux.transports.http import HttpRequest

    headers = {"cookie": header} if header else {}
    assert HttpRequest("POST", "/cometd", headers=headers).cookie("BAYEUX_BROWSER") == expected
