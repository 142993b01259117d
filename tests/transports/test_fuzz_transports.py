"""A bounded fuzz run over the wire: hostile batches (hypothesis) sent over every transport to one
live server. Whatever arrives, the answer is a Bayeux reply, HTTP 400/413 or a WebSocket close with
1003/1007/1009, never a 500 or a hang, every reply is schema-valid, and a bystander session keeps
being served. Bounded: a fixed number of examples per transport, well under a minute in all."""

from __future__ import annotations

import json
from urllib.parse import quote

import msgpack
import pytest
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from bayeux import Settings
from bayeux.schema import server_message_errors
from bayeux.testing import ServerThread

from ..helpers.http import handshake, post_json, request
from ..helpers.inputs import CHANNELS, FIELD, JSON_VALUES
from ..helpers.rawws import RawWebSocket, masked_frame

# What msgpack can carry and JSON cannot.
BINARY_VALUES = st.recursive(
    JSON_VALUES
    | st.binary(max_size=8)
    | st.sampled_from([float("nan"), float("inf"), 2**64 - 1, -(2**63)])
    | st.builds(msgpack.ExtType, st.integers(0, 127), st.binary(max_size=4)),
    lambda children: st.lists(children, max_size=3),
    max_leaves=6,
)
EXAMPLES = 150
SENTINEL = {"channel": "/meta/fuzz-sentinel", "id": "sentinel"}


@pytest.fixture(scope="module")
def server():
    with ServerThread(
        Settings(timeout=300, max_interval=2000, sweep_period=100, max_message_size=64 * 1024)
    ) as running:
        yield running


TRANSPORTS = st.sampled_from(["long-polling", "websocket", "callback-polling", "eventsource", "x"])


def field_values(field: str, values: st.SearchStrategy) -> st.SearchStrategy:
    """Mostly plausible values, so that messages get past the first checks, and anything."""
    plausible = {
        "connectionType": TRANSPORTS,
        "supportedConnectionTypes": st.lists(TRANSPORTS, max_size=3),
        "subscription": CHANNELS | st.lists(CHANNELS, max_size=3),
        "version": st.just("1.0"),
    }.get(field)
    return values if plausible is None else plausible | values


# Numbers at the edges of what a field accepts, in either format.
EDGE_NUMBERS = st.sampled_from([-1, 0, 2**31, 2**53, 2**80, -(2**80), 1e300, -0.5, "1", None, True])
BINARY_EDGES = st.sampled_from([float("nan"), float("inf"), float("-inf"), 2**64 - 1])


@st.composite
def plausible(draw, client_ids, values):
    """A request that real clients send, with some of its fields and numbers made hostile."""
    numbers = EDGE_NUMBERS | (BINARY_EDGES if values is BINARY_VALUES else EDGE_NUMBERS) | values
    kind = draw(st.sampled_from(["connect", "subscribe", "publish", "handshake"]))
    message: dict = {"clientId": draw(st.sampled_from(client_ids)), "id": draw(numbers)}
    if kind == "connect":
        message.update(channel="/meta/connect", connectionType=draw(TRANSPORTS))
        message["advice"] = {draw(st.sampled_from(["timeout", "interval"])): draw(numbers)}
    elif kind == "subscribe":
        message.update(
            channel="/meta/subscribe", subscription=draw(field_values("subscription", values))
        )
    elif kind == "publish":
        message.update(channel=draw(CHANNELS), data=draw(values))
    else:
        message = {
            "channel": "/meta/handshake",
            "version": "1.0",
            "supportedConnectionTypes": ["websocket"],
        }
    if draw(st.booleans()):
        message["ext"] = {
            "ack": draw(numbers),
            "timesync": {"tc": draw(numbers), "l": draw(numbers), "o": draw(numbers)},
        }
    return message


@st.composite
def batches(draw, client_ids, values=JSON_VALUES):
    batch = []
    for _ in range(draw(st.integers(1, 5))):
        if draw(st.booleans()):
            batch.append(draw(plausible(client_ids, values)))
            continue
        message = {"channel": draw(CHANNELS)}
        for field in draw(st.lists(FIELD, max_size=5, unique=True)):
            message[field] = draw(field_values(field, values))
        if draw(st.booleans()):
            message["clientId"] = draw(st.sampled_from(client_ids))
        if draw(st.booleans()):
            message["advice"] = {"timeout": draw(values)}
        if draw(st.booleans()):
            message["ext"] = {"ack": draw(values), "timesync": draw(values)}
        batch.append(message)
    return batch


def check_replies(replies: list) -> None:
    for reply in replies:
        assert server_message_errors(reply) == [], reply


def check_bystander(server: ServerThread) -> None:
    bystander = handshake(server.url)
    post_json(
        server.url, [{"channel": "/meta/subscribe", "clientId": bystander, "subscription": "/b"}]
    )
    post_json(server.url, [{"channel": "/b", "clientId": bystander, "data": "still here"}])
    reply = post_json(
        server.url,
        [{"channel": "/meta/connect", "clientId": bystander, "connectionType": "long-polling"}],
    ).json()
    assert [m["data"] for m in reply if "data" in m] == ["still here"]


FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def test_long_polling(server: ServerThread) -> None:
    victim = handshake(server.url)

    @FUZZ
    @given(batch=batches([victim, "nope"]))
    def send(batch: list) -> None:
        response = post_json(server.url, batch)
        assert response.status in (200, 400, 413), response.body
        if response.status == 200:
            check_replies(response.json())

    send()
    check_bystander(server)


def test_callback_polling_and_form_posts(server: ServerThread) -> None:
    victim = handshake(server.url)

    @FUZZ
    @given(batch=batches([victim, "nope"]), form=st.booleans())
    def send(batch: list, form: bool) -> None:
        body = quote(json.dumps(batch))
        if form:
            response = request(
                server.url, body="message=" + body, headers={"Content-Type": "text/plain"}
            )
            prefix = b""
        else:
            response = request(server.url + "?jsonp=cb&message=" + body, method="GET")
            prefix = b"/**/cb("
        assert response.status in (200, 400, 413, 414), response.body
        if response.status == 200:
            assert response.body.startswith(prefix)
            text = response.body[len(prefix) :]
            check_replies(json.loads(text[:-2] if prefix else text))

    send()
    check_bystander(server)


def _ws_exchange(ws: RawWebSocket, frame: bytes, decode) -> list:
    """Sends `frame` and the sentinel; everything received up to the sentinel's reply."""
    ws.sock.sendall(frame)
    ws.send([SENTINEL]) if decode is json.loads else ws.sock.sendall(
        masked_frame(msgpack.packb([SENTINEL]), opcode=0x2)
    )
    received: list = []
    while True:
        opcode, payload = ws.read_frame()
        if opcode == 0x8:
            code = int.from_bytes(payload[:2], "big")
            assert code in (1003, 1007, 1009), code
            return received
        if opcode not in (0x1, 0x2):
            continue
        messages = decode(payload)
        received.extend(messages)
        if any(m.get("id") == "sentinel" for m in messages):
            return received


def test_websocket_json(server: ServerThread) -> None:
    victim = handshake(server.url, "websocket")
    ws = RawWebSocket(server.url.replace("http://", "ws://"))

    @FUZZ
    @given(batch=batches([victim, "nope"]))
    def send(batch: list) -> None:
        check_replies(_ws_exchange(ws, masked_frame(json.dumps(batch).encode()), json.loads))

    send()
    ws.close()
    check_bystander(server)


def test_websocket_msgpack(server: ServerThread) -> None:
    victim = handshake(server.url, "websocket")
    url = server.url.replace("http://", "ws://")
    ws = RawWebSocket(url, headers="Sec-WebSocket-Protocol: bayeux-msgpack\r\n")

    @FUZZ
    @given(batch=batches([victim, "nope"], BINARY_VALUES))
    def send(batch: list) -> None:
        try:
            packed = msgpack.packb(batch, use_bin_type=True)
        except OverflowError:
            reject()  # an integer msgpack itself cannot carry: no client can send it
        frame = masked_frame(packed, opcode=0x2)
        check_replies(_ws_exchange(ws, frame, msgpack.unpackb))

    send()
    ws.close()
    check_bystander(server)


def test_eventsource_streams(server: ServerThread) -> None:
    """The EventSource transport's only input is its URL: any path below the mount gets a
    stream for a live session, a 404 otherwise, never a 500."""
    victim = handshake(server.url, "eventsource")

    @FUZZ
    @given(tail=st.text(max_size=60) | st.just(victim) | st.just(victim + "/x"))
    def open_stream(tail: str) -> None:
        path = "/" + quote(tail, safe="")
        try:
            response = request(
                server.url + path,
                method="GET",
                headers={"Accept": "text/event-stream"},
                timeout=0.3,
            )
        except TimeoutError:
            return  # a stream was opened and stays open: the client hangs up
        assert response.status in (400, 404), (response.status, response.body)

    open_stream()
    check_bystander(server)
