"""Processes of a deployment on Redis: server threads sharing a RedisEngine, `python -m
bayeux --redis` processes, and a long-polling client that may send each request to any of them."""

from __future__ import annotations

import http.client
import subprocess
import sys
import time
from typing import Any

from bayeux import Endpoint, Settings
from bayeux.engines.redis import RedisEngine
from bayeux.testing import ServerThread, free_port, wait_for_port

from .http import post_json, request

SETTINGS: dict[str, Any] = dict(
    timeout=1500, max_interval=3000, browser_cookie="", sweep_period=100
)


def node(redis_url: str, **settings: Any) -> ServerThread:
    engine = RedisEngine(redis_url, "bayeux-test", sync_interval=0.05, handoff_timeout=1.0)
    return ServerThread(endpoint=Endpoint(Settings(**{**SETTINGS, **settings}), engine=engine))


def redis_of(node: ServerThread) -> RedisEngine:
    """The Redis engine of a node made by `node()`."""
    engine = node.endpoint.engine
    assert isinstance(engine, RedisEngine)
    return engine


def wait_ready(*nodes: ServerThread, within: float = 10) -> None:
    deadline = time.monotonic() + within
    for n in nodes:
        while n.call(n.endpoint.health) != ("serving", True):
            assert time.monotonic() < deadline, "the redis engine never became ready"
            time.sleep(0.02)


class Client:
    """A long-polling Bayeux client that may send each request to any process."""

    def __init__(self, url: str, *, ack: bool = False) -> None:
        handshake: dict[str, Any] = {
            "channel": "/meta/handshake",
            "version": "1.0",
            "supportedConnectionTypes": ["long-polling"],
        }
        if ack:
            handshake["ext"] = {"ack": True}
        (reply,) = post_json(url, [handshake]).json()
        assert reply["successful"] is True, reply
        self.id: str = reply["clientId"]
        self.ack = -1 if ack else None
        self.received: list[Any] = []

    def send(self, url: str, **message: Any) -> list[dict]:
        return post_json(url, [{**message, "clientId": self.id}], timeout=15).json()

    def subscribe(self, url: str, channel: str) -> dict:
        (reply,) = self.send(url, channel="/meta/subscribe", subscription=channel)
        return reply

    def publish(self, url: str, channel: str, data: Any) -> dict:
        (reply,) = self.send(url, channel=channel, data=data)
        return reply

    def connect(self, url: str, timeout: int | None = 300) -> dict:
        """One connect; keeps what it delivered; returns its reply."""
        message: dict[str, Any] = {"channel": "/meta/connect", "connectionType": "long-polling"}
        if timeout is not None:
            message["advice"] = {"timeout": timeout}
        if self.ack is not None:
            message["ext"] = {"ack": self.ack}
        replies = self.send(url, **message)
        reply = next(m for m in replies if m["channel"] == "/meta/connect")
        self.received += [m["data"] for m in replies if "data" in m]
        if self.ack is not None and reply.get("successful"):
            self.ack = reply["ext"]["ack"]
        return reply

    def poll_until(self, urls: list[str], count: int, within: float = 10) -> list[Any]:
        deadline = time.monotonic() + within
        turn = 0
        while len(self.received) < count and time.monotonic() < deadline:
            self.connect(urls[turn % len(urls)])
            turn += 1
        return self.received


OPTIONS = (
    "--timeout",
    "1500",
    "--max-interval",
    "5000",
    "--redis-sync-interval",
    "50",
    "--health-path",
    "/cometd/health",
    "--drain-timeout",
    "3000",
)


# The conformance suite's timings (spec_tests/conftest.py).
SUITE_OPTIONS = (
    "--timeout",
    "3000",
    "--max-interval",
    "2000",
    "--multi-session-interval",
    "500",
    "--sweep-period",
    "200",
)


UNREACHABLE = (ConnectionError, http.client.HTTPException, OSError)


def serve(redis_url: str, *options: str, port: int | None = None) -> tuple[subprocess.Popen, str]:
    """A `python -m bayeux --redis` process, once its engine is ready."""
    port = port or free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "bayeux", "--port", str(port), "--log-level", "warning"]
        + ["--redis", redis_url, *OPTIONS, *options]
    )
    wait_for_port(port, process)
    url = f"http://127.0.0.1:{port}/cometd"
    wait_healthy(url)
    return process, url


def wait_healthy(url: str, within: float = 15) -> None:
    deadline = time.monotonic() + within
    while True:
        try:
            if request(url + "/health", method="GET", timeout=2).status == 200:
                return
        except UNREACHABLE:
            pass
        assert time.monotonic() < deadline, f"{url} never became ready"
        time.sleep(0.05)


def connect_anywhere(client: Client, urls: list[str]) -> None:
    """One connect, to the first process that answers."""
    for url in urls:
        try:
            client.connect(url)
            return
        except UNREACHABLE:
            continue
    time.sleep(0.05)
