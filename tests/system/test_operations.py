"""Operating the standalone server: a health check, and client addresses from a reverse proxy."""

from __future__ import annotations

import json
import subprocess

from bayeux import Endpoint, Settings
from bayeux.engines.redis import RedisEngine
from bayeux.testing import ServerThread, free_port, start_cli, stop_process

from ..helpers.http import post_json, request
from ..helpers.metrics import scrape
from ..helpers.rawws import RawWebSocket
from ..helpers.servers import HANDSHAKE


def handshake_from(url: str, address: str) -> dict:
    headers = {"Content-Type": "application/json", "X-Real-IP": address}
    return request(url, body=json.dumps([HANDSHAKE]), headers=headers).json()[0]


def test_xheaders_count_handshakes_by_the_proxied_address() -> None:
    process, url = start_cli("--xheaders", "--max-handshakes-per-address", "2")
    try:
        assert [handshake_from(url, "10.0.0.1")["successful"] for _ in range(3)] == [
            True,
            True,
            False,
        ]
        assert handshake_from(url, "10.0.0.2")["successful"] is True  # another client
    finally:
        stop_process(process)


def test_without_xheaders_proxy_headers_are_not_trusted() -> None:
    process, url = start_cli("--max-handshakes-per-address", "2")
    try:
        # A client cannot dodge the bound by claiming other addresses.
        outcomes = [handshake_from(url, f"10.0.0.{i}")["successful"] for i in range(3)]
        assert outcomes == [True, True, False]
    finally:
        stop_process(process)


def health(server: ServerThread) -> tuple[int, dict]:
    response = request(server.origin + "/health", method="GET")
    return response.status, json.loads(response.body)


def test_health_is_200_while_serving_and_503_while_draining() -> None:
    endpoint = Endpoint(Settings())
    with ServerThread(
        endpoint=endpoint, extra_routes=[endpoint.health_route("/health")], embedded=True
    ) as server:
        assert health(server) == (200, {"status": "serving", "sessions": 0})
        server.call(endpoint.server.shutdown)
        assert health(server) == (503, {"status": "draining", "sessions": 0})


def test_health_is_503_while_the_redis_engine_is_unavailable() -> None:
    engine = RedisEngine(f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    endpoint = Endpoint(Settings(), engine=engine)
    with ServerThread(
        endpoint=endpoint, extra_routes=[endpoint.health_route("/health")], embedded=True
    ) as server:
        assert health(server) == (503, {"status": "engine-unavailable", "sessions": 0})


def test_health_path_on_the_command_line() -> None:
    process, url = start_cli("--health-path", "/cometd/health")
    try:
        response = request(url + "/health", method="GET")
        assert response.status == 200 and json.loads(response.body)["status"] == "serving"
    finally:
        stop_process(process)


def test_json_logs_one_event_per_line_without_client_ids() -> None:
    process, url = start_cli(
        "--log-format",
        "json",
        "--max-sessions",
        "1",
        log_level="debug",
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        client_id = handshake_from(url, "10.0.0.1")["clientId"]
        assert handshake_from(url, "10.0.0.1")["successful"] is False  # max-sessions
        post_json(url, [{"channel": "/meta/disconnect", "clientId": client_id}])
    finally:
        assert stop_process(process) == 0
    assert process.stderr is not None
    lines = [line for line in process.stderr.read().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    events = {r.get("event"): r for r in records if "event" in r}
    assert events["session-added"]["session"].startswith("s-")
    assert events["session-removed"]["reason"] == "disconnected"
    assert events["handshake-refused"]["reason"] == "max-sessions"
    assert "drain" in events
    assert all({"asctime", "level", "logger", "message"} <= r.keys() for r in records)
    assert not any(client_id in line for line in lines)


def test_prometheus_metrics_count_what_happened() -> None:
    process, url = start_cli("--metrics-path", "/metrics", "--max-sessions", "2")
    metrics_url = url.replace("/cometd", "/metrics")
    try:
        subscriber = handshake_from(url, "a")["clientId"]
        publisher = handshake_from(url, "a")["clientId"]
        assert handshake_from(url, "a")["successful"] is False  # max-sessions
        post_json(
            url, [{"channel": "/meta/subscribe", "clientId": subscriber, "subscription": "/m"}]
        )
        post_json(url, [{"channel": "/m", "clientId": publisher, "data": {"n": 1}}])
        post_json(url, [{"channel": "/bad channel", "clientId": publisher, "data": 1}])
        m = scrape(metrics_url)
    finally:
        stop_process(process)
    assert m[("bayeux_sessions", (("transport", "none"),))] == 2
    assert m[("bayeux_handshakes_refused_total", (("reason", "max-sessions"),))] == 1
    assert m[("bayeux_deliveries_total", ())] == 1
    assert m[("bayeux_delivery_bytes_total", ())] == len(b'{"channel":"/m","data":{"n":1}}')
    assert m[("bayeux_messages_in_total", (("kind", "meta"),))] == 4
    assert m[("bayeux_messages_in_total", (("kind", "broadcast"),))] == 2
    assert m[("bayeux_error_replies_total", (("code", "405"),))] == 1
    assert m[("bayeux_error_replies_total", (("code", "503"),))] == 1
    assert m[("bayeux_session_queue_messages_bucket", (("le", "1"),))] == 2  # both queues <= 1
    assert m[("bayeux_held_connects", ())] == 0
    assert ("bayeux_sweeps_total", ()) in m
    # The subscriber never connected again: nothing was written to it yet.
    assert m[("bayeux_delivery_latency_seconds_count", ())] == 0


def test_latency_is_observed_for_websocket_and_long_polling_writes() -> None:
    endpoint = Endpoint(Settings())
    with ServerThread(
        endpoint=endpoint, extra_routes=[endpoint.metrics_route("/metrics")], embedded=True
    ) as server:
        subscriber = handshake_from(server.url, "a")["clientId"]
        post_json(
            server.url,
            [{"channel": "/meta/subscribe", "clientId": subscriber, "subscription": "/l"}],
        )
        for _ in range(3):
            server.call(endpoint.publish, "/l", 1)
        post_json(
            server.url,
            [
                {
                    "channel": "/meta/connect",
                    "clientId": subscriber,
                    "connectionType": "long-polling",
                }
            ],
        )
        # Three messages, one write: the oldest is observed.
        metrics = scrape(server.origin + "/metrics")
        assert metrics[("bayeux_delivery_latency_seconds_count", ())] == 1
        ws = RawWebSocket(server.url.replace("http://", "ws://"))
        ws.send([{**HANDSHAKE, "supportedConnectionTypes": ["websocket"]}])
        ws_id = ws.read()[0]["clientId"]
        subscribe = {"channel": "/meta/subscribe", "clientId": ws_id, "subscription": "/l"}
        connect = {"channel": "/meta/connect", "clientId": ws_id, "connectionType": "websocket"}
        ws.send([subscribe, connect])
        ws.read()
        server.call(endpoint.publish, "/l", 2)
        assert [m["data"] for m in ws.read()] == [2]
        m = scrape(server.origin + "/metrics")
        ws.close()
    assert m[("bayeux_delivery_latency_seconds_count", ())] == 2
    assert m[("bayeux_delivery_latency_seconds_sum", ())] < 5
