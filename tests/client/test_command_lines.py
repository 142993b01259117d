"""The command lines facing hostile input and hostile servers: `bayeux-client` and
`bayeux publish` print one line on stderr and exit with their documented status, never a
traceback; data is strict JSON, bounded in depth and size."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from bayeux import strictjson
from bayeux.testing import free_port
from tests.helpers.hostile import Answer, HostileServer, handshake_ok, ok

DEEP = "[" * 60_000 + "]" * 60_000


def command(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], capture_output=True, text=True, timeout=timeout
    )


def one_line(done: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


@contextmanager
def serving(answer: Answer) -> Iterator[str]:
    """A HostileServer on a loop of its own thread, for a command run as a subprocess."""
    started = threading.Event()
    stop: list[asyncio.Event] = []
    server = HostileServer(answer)

    async def serve() -> None:
        stop.append(asyncio.Event())
        async with server:
            started.set()
            await stop[0].wait()

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    assert started.wait(10)
    try:
        yield server.url
    finally:
        loop.call_soon_threadsafe(stop[0].set)
        thread.join(10)
        loop.close()


UNUSED = "http://127.0.0.1:1/cometd"


@pytest.mark.parametrize(
    ("data", "said"),
    [
        ("NaN", "not JSON"),
        ('{"n": Infinity}', "not JSON"),
        (DEEP, "nested deeper than 64"),
    ],
    ids=["nan", "infinity", "60000-deep"],
)
def test_bayeux_client_refuses_data_that_is_not_strict_bounded_json(data: str, said: str) -> None:
    """Measured before: NaN was published (subscribers received null), 60,000 deep printed a
    RecursionError traceback."""
    done = command("bayeux.client", UNUSED, "publish", "/x", data)
    assert done.returncode == 2
    assert said in one_line(done)


def test_bayeux_client_refuses_data_over_1_mib(capsys) -> None:
    # In process: Linux takes no single argument over 128 KiB on a command line.
    from bayeux.client.cli import main

    assert main([UNUSED, "publish", "/x", '"' + "x" * (1024 * 1024) + '"']) == 2
    assert "over the bound of 1048576" in capsys.readouterr().err


@pytest.mark.parametrize("header", ["X-A: b\r\nInjected: c", "X-A: b\nc", "Bad Name: v"])
def test_bayeux_client_refuses_headers_with_control_characters(header: str) -> None:
    """Measured before: a CR/LF in --header printed aiohttp's ValueError traceback."""
    done = command("bayeux.client", "--header", header, UNUSED, "publish", "/x", "1")
    assert done.returncode == 2
    assert "not allowed in a header" in one_line(done)


def test_bayeux_client_against_a_malformed_handshake_says_which_field() -> None:
    """Measured before: KeyError: 'clientId' and a traceback."""

    def answer(messages: list[dict[str, Any]]) -> Any:
        return [{**handshake_ok(m), "clientId": None} for m in messages]

    with serving(answer) as url:
        done = command("bayeux.client", "--transport", "long-polling", url, "publish", "/x", "1")
    assert done.returncode == 1
    assert "clientId" in one_line(done)


def test_bayeux_client_subscribe_exits_1_when_the_server_ends_the_session() -> None:
    def answer(messages: list[dict[str, Any]]) -> Any:
        replies = []
        for m in messages:
            if m["channel"] == "/meta/handshake":
                replies.append(handshake_ok(m))
            elif m["channel"] == "/meta/connect" and m.get("advice") != {"timeout": 0}:
                replies.append(
                    ok(m, successful=False, error="403::bye", advice={"reconnect": "none"})
                )
            else:
                replies.append(ok(m))
        return replies

    with serving(answer) as url:
        done = command(
            "bayeux.client",
            "--transport",
            "long-polling",
            url,
            "subscribe",
            "/x",
            "--seconds",
            "20",
        )
    assert done.returncode == 1
    assert "403::bye" in one_line(done)


def test_the_exit_codes_are_in_the_help() -> None:
    client_help = command("bayeux.client", "--help").stdout
    assert "Exit status:" in client_help and "3  an unexpected failure" in client_help
    publish_help = command("bayeux", "publish", "--help").stdout
    assert "exit status:" in publish_help and "2  bad arguments" in publish_help


@pytest.mark.parametrize(
    ("data", "said"),
    [
        ("NaN", "not JSON"),
        (DEEP, "nested deeper than 64"),
        ('"' + "x" * 2000 + '"', "over the bound of 1000"),
    ],
    ids=["nan", "60000-deep", "oversize"],
)
def test_bayeux_publish_refuses_bad_data_before_reaching_redis(data: str, said: str) -> None:
    redis = f"redis://127.0.0.1:{free_port()}/0"  # nothing there: refused before it matters
    bound = ["--max-message-size", "1000"] if "bound" in said else []
    done = command("bayeux", "publish", "--redis", redis, *bound, "/x", data)
    assert done.returncode == 2
    assert said in one_line(done)


def test_bayeux_publish_without_redis_is_one_line_and_exit_1() -> None:
    redis = f"redis://127.0.0.1:{free_port()}/0"
    done = command("bayeux", "publish", "--redis", redis, "--timeout", "1", "/x", '{"a": 1}')
    assert done.returncode == 1
    assert "redis" in one_line(done).lower()


def test_strict_json_depth_and_values() -> None:
    assert strictjson.loads('{"a": [1, {"b": null}]}') == {"a": [1, {"b": None}]}
    assert strictjson.depth([[[]]]) == 3 and strictjson.depth(1) == 0
    assert strictjson.loads("[" * 64 + "]" * 64) is not None
    with pytest.raises(ValueError, match="deeper than 64"):
        strictjson.loads("[" * 65 + "]" * 65)
    with pytest.raises(ValueError, match="not JSON"):
        strictjson.loads("-Infinity")
    assert json.loads("NaN") != json.loads("NaN")  # what Python's json would have let by
