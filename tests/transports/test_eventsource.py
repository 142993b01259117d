"""The eventsource transport (Faye's): a Server-Sent Events stream for deliveries."""

from __future__ import annotations

import http.client
import json
import time
from urllib.parse import urlsplit

import pytest

from ..helpers.http import handshake, post_json, request

# Every case runs over the standalone connection layer and over Tornado embedding.
pytestmark = pytest.mark.usefixtures("both_layers")


def open_stream(
    url: str, client_id: str
) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=5)
    # As a browser's EventSource does: it names its page (the endpoint requires it when
    # origins are restricted, as the `live` server's are).
    headers = {"Accept": "text/event-stream", "Origin": "http://good.example"}
    conn.request("GET", f"{parts.path}/{client_id}", headers=headers)
    return conn, conn.getresponse()


def read_event(response: http.client.HTTPResponse) -> str:
    """The next `data:` event of the stream, skipping `retry:` and comment lines."""
    while True:
        line = response.readline().decode()
        assert line, "stream ended"
        if line.startswith("data: "):
            return line[len("data: ") :].strip()


def test_unknown_client_gets_404(live) -> None:
    conn, response = open_stream(live.url, "0" * 40)
    assert response.status == 404
    conn.close()


def test_stream_carries_deliveries_and_connects_do_not_displace_it(live) -> None:
    subscriber, publisher = handshake(live.url), handshake(live.url)
    post_json(
        live.url, [{"channel": "/meta/subscribe", "clientId": subscriber, "subscription": "/es"}]
    )
    conn, response = open_stream(live.url, subscriber)
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/event-stream")
    assert response.readline().startswith(b"retry: ")
    # A long-polling connect (Faye's first) and eventsource connects: answered at once.
    for connection_type in ("long-polling", "eventsource", "eventsource"):
        started = time.monotonic()
        (reply,) = post_json(
            live.url,
            [
                {
                    "channel": "/meta/connect",
                    "clientId": subscriber,
                    "connectionType": connection_type,
                }
            ],
        ).json()
        assert time.monotonic() - started < 1.0
        assert reply["successful"] is True
    assert reply["advice"]["interval"] == live.endpoint.settings.timeout
    assert reply["advice"]["timeout"] == 0
    post_json(
        live.url,
        [
            {"channel": "/es", "clientId": publisher, "data": 1},
            {"channel": "/es", "clientId": publisher, "data": 2},
        ],
    )
    assert json.loads(read_event(response)) == [
        {"channel": "/es", "data": 1},
        {"channel": "/es", "data": 2},
    ]
    post_json(live.url, [{"channel": "/es", "clientId": publisher, "data": 3}])
    assert json.loads(read_event(response)) == [{"channel": "/es", "data": 3}]
    conn.close()


def test_disconnect_ends_the_stream(live) -> None:
    client_id = handshake(live.url)
    conn, response = open_stream(live.url, client_id)
    response.readline()
    post_json(live.url, [{"channel": "/meta/disconnect", "clientId": client_id}])
    rest = response.read()  # returns once the server ends the chunked stream
    assert b"data:" not in rest
    conn.close()


def test_text_plain_form_body_is_read_as_form(live) -> None:
    from urllib.parse import quote

    body = "message=" + quote(
        json.dumps(
            [
                {
                    "channel": "/meta/handshake",
                    "version": "1.0",
                    "supportedConnectionTypes": ["cross-origin-long-polling"],
                }
            ]
        )
    )
    response = request(live.url, body=body, headers={"Content-Type": "text/plain;charset=UTF-8"})
    assert response.status == 200 and response.json()[0]["successful"] is True


def test_with_the_ack_extension_deliveries_leave_only_in_numbered_connect_replies(live) -> None:
    """A session that negotiated ack gets its messages in connect replies only, numbered and
    kept until acknowledged: the stream used to carry them too, unrecorded, and a lost one was
    never sent again."""
    (reply,) = post_json(
        live.url,
        [
            {
                "channel": "/meta/handshake",
                "version": "1.0",
                "supportedConnectionTypes": ["eventsource", "long-polling"],
                "ext": {"ack": True},
            }
        ],
    ).json()
    assert reply["ext"]["ack"] is True
    subscriber, publisher = reply["clientId"], handshake(live.url)
    post_json(
        live.url, [{"channel": "/meta/subscribe", "clientId": subscriber, "subscription": "/ea"}]
    )
    conn, response = open_stream(live.url, subscriber)
    assert response.readline().startswith(b"retry: ")
    connect = {"channel": "/meta/connect", "clientId": subscriber, "connectionType": "eventsource"}
    post_json(live.url, [dict(connect, ext={"ack": -1})])
    post_json(live.url, [{"channel": "/ea", "clientId": publisher, "data": 1}])
    time.sleep(0.3)
    # Nothing on the stream: the next connect reply carries it, with its batch number.
    replies = post_json(live.url, [dict(connect, ext={"ack": 0})]).json()
    assert [m["data"] for m in replies if m["channel"] == "/ea"] == [1]
    batch = next(m for m in replies if m["channel"] == "/meta/connect")["ext"]["ack"]
    # That reply was lost: acknowledging the batch before it sends the message again.
    replies = post_json(live.url, [dict(connect, ext={"ack": batch - 1})]).json()
    assert [m["data"] for m in replies if m["channel"] == "/ea"] == [1]
    conn.close()
    events = []
    try:
        while True:
            line = response.readline()
            if not line:
                break
            if line.startswith(b"data: "):
                events.append(line)
    except (OSError, http.client.HTTPException):
        pass
    assert events == []
