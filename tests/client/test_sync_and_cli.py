"""SyncClient (the client on a thread of its own) and the bayeux-client command."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from bayeux import Endpoint, ServiceError, Settings
from bayeux.client import BayeuxError
from bayeux.client.sync import SyncClient
from bayeux.testing import ServerThread


@pytest.fixture(scope="module")
def server():
    endpoint = Endpoint(Settings(timeout=1500))

    def double(request):
        if not isinstance(request.data, int):
            raise ServiceError("not a number")
        return request.data * 2

    endpoint.server.add_service("/service/double", double)
    with ServerThread(endpoint=endpoint) as running:
        yield running


def test_sync_client_publishes_subscribes_and_calls(server) -> None:
    with (
        SyncClient(server.url, transports=["long-polling"]) as listener,
        SyncClient(server.url) as sender,
    ):
        got: list[dict] = []
        listener.subscribe("/sync", got.append)
        assert sender.publish("/sync", {"n": 1})["successful"] is True
        deadline = time.monotonic() + 5
        while not got and time.monotonic() < deadline:
            time.sleep(0.02)
        assert [m["data"] for m in got] == [{"n": 1}]
        assert sender.remote_call("/service/double", 21) == 42
        with pytest.raises(BayeuxError, match="not a number"):
            sender.remote_call("/service/double", "x")
        stream = listener.messages("/iterated", timeout=2)
        sender.publish("/iterated", 1)  # subscribed by messages() itself, before next()
        sender.publish("/iterated", 2)
        assert [next(stream)["data"], next(stream)["data"]] == [1, 2]
        stream.close()
        assert listener.client is not None and "/iterated" not in listener.client._subscribed


def test_sync_messages_stops_after_its_timeout(server) -> None:
    with SyncClient(server.url) as client:
        started = time.monotonic()
        assert list(client.messages("/quiet", timeout=0.5)) == []
        assert 0.4 < time.monotonic() - started < 5


def cli(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bayeux.client", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_the_command_publishes_and_subscribes(server) -> None:
    subscriber = subprocess.Popen(
        [sys.executable, "-m", "bayeux.client", server.url, "subscribe", "/cli"]
        + ["--count", "2", "--seconds", "20"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        n = 0
        while subscriber.poll() is None and time.monotonic() < deadline:
            done = cli(server.url, "publish", "/cli", json.dumps({"n": n}))
            assert done.returncode == 0, done.stderr
            assert json.loads(done.stdout)["successful"] is True
            n += 1
            time.sleep(0.2)
        out, _ = subscriber.communicate(timeout=10)
    finally:
        subscriber.kill()
    lines = [json.loads(line) for line in out.splitlines()]
    assert len(lines) == 2 and all(m["channel"] == "/cli" for m in lines)
    numbers = [m["data"]["n"] for m in lines]
    assert numbers == sorted(numbers)


def test_the_command_reports_refusals_and_bad_input(server) -> None:
    refused = cli(server.url, "publish", "/meta/nothing", "1")
    assert refused.returncode == 1 and "404:/meta/nothing" in refused.stderr
    bad = cli(server.url, "publish", "/x", "{not json")
    assert bad.returncode == 2 and "not JSON" in bad.stderr
    header = cli(server.url, "--header", "no-colon", "publish", "/x", "1")
    assert header.returncode == 2 and "not name:value" in header.stderr
    away = cli("http://127.0.0.1:1/cometd", "publish", "/x", "1")
    assert away.returncode == 1 and "no transport reached the server" in away.stderr
