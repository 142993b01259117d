"""The examples run as documented."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent.parent


def test_api_tour_prints_what_the_readme_says() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "api_tour.py")],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "refused: local session refused: 403::Handshake denied",
        "bob subscribing to /chat/admin: 403:/chat/admin:Subscription denied",
        "alice got {'user': 'bob', 'text': 'hi'}",
        "alice got {'user': 'server', 'text': 'server-side publish'}",
        "members: {'channel': '/service/members', 'successful': True, 'data': ['alice', 'bob']}",
        "members: {'channel': '/service/members', 'successful': False, "
        "'error': '400:/service/members:Asked to fail', 'data': {'reason': 'demo'}}",
        "broadcasts seen by the extension: 2",
        "removed bob: disconnected",
    ]


def test_the_server_api_page_shows_the_tour_as_it_is() -> None:
    page = (ROOT / "docs" / "server-api.md").read_text()
    snippet = page[page.index("```python\n") + len("```python\n") :]
    snippet = snippet[: snippet.index("\n```")]
    assert len(snippet) > 500
    assert snippet in (ROOT / "examples" / "api_tour.py").read_text()


def test_conformance_report_lists_rules_with_sections_and_failures() -> None:
    from spec_tests.runner import FAIL, NOT_APPLICABLE, PASS, Result, json_report, markdown_report

    results = [
        Result("a.rule", "long-polling", "core", "_bayeux_meta_connect", PASS),
        Result(
            "a.rule", "websocket", "core", "_bayeux_meta_connect", FAIL, "SpecFailure: bad reply"
        ),
        Result(
            "b.rule",
            "long-polling",
            "cometd",
            "_extensions_timesync",
            NOT_APPLICABLE,
            "not offered",
        ),
    ]
    text = markdown_report("http://x/cometd", results)
    assert "| `a.rule` | core | [_bayeux_meta_connect](" in text
    assert "| pass | fail |" in text
    assert "- `a.rule` over websocket: SpecFailure: bad reply" in text
    assert "- `b.rule` over long-polling: not offered" in text
    import json

    report = json.loads(json_report("http://x/cometd", results))
    assert report["summary"]["core/websocket"] == {"fail": 1}


@pytest.mark.parametrize("framework", ["fastapi", "starlette", "django"])
def test_the_asgi_examples_let_their_framework_login_decide(framework: str) -> None:
    """FastAPI (a signed cookie of its own), Starlette (SessionMiddleware) and Django (its
    session, the endpoint in front of get_asgi_application()) under uvicorn."""
    from ..helpers.http import post_json, request
    from ..helpers.rawws import RawWebSocket
    from ..helpers.servers import example_under_uvicorn

    with example_under_uvicorn(f"examples.{framework}.app:app") as base:
        url = base + "/cometd"
        handshake = {
            "channel": "/meta/handshake",
            "version": "1.0",
            "supportedConnectionTypes": ["long-polling", "websocket"],
        }
        assert post_json(url, [handshake]).json()[0]["error"] == "403::Handshake denied"
        login = request(base + "/login?user=alice", "POST")
        assert login.json() == {"logged_in": "alice"}
        pair = login.headers["Set-Cookie"].split(";")[0]
        cookie = {"Cookie": pair}
        forged = {"Cookie": pair[:-2] + ("AA" if pair[-2:] != "AA" else "BB")}
        assert post_json(url, [handshake], headers=forged).json()[0]["successful"] is False
        reply = post_json(url, [handshake], headers=cookie).json()[0]
        client = reply["clientId"]

        def send(**message: object) -> list:
            return post_json(url, [{**message, "clientId": client}], headers=cookie).json()

        mine = send(channel="/meta/subscribe", subscription="/user/alice")
        assert mine[0]["successful"] is True
        theirs = send(channel="/meta/subscribe", subscription="/user/bob")
        assert theirs[0]["error"] == "403:/user/bob:Subscription denied"
        send(channel="/meta/connect", connectionType="long-polling")
        assert request(base + "/notify/alice?text=hello", "POST").json() == {"reached": 1}
        got = send(channel="/meta/connect", connectionType="long-polling", advice={"timeout": 0})
        assert [m["data"] for m in got if m["channel"] == "/user/alice"] == [{"text": "hello"}]
        assert request(base + "/notify/bob?text=hi", "POST").status == 404
        # The framework's login reaches the policy on a WebSocket too, and only there.
        for headers, allowed in ((f"Cookie: {pair}\r\n", True), ("", False)):
            socket = RawWebSocket(url, headers=headers)
            try:
                assert b" 101 " in socket.status_line
                socket.send([handshake])
                assert socket.read()[0]["successful"] is allowed
            finally:
                socket.sock.close()


def test_the_aiohttp_example_checks_its_api_key_and_publishes() -> None:
    import os

    from bayeux.testing import free_port, stop_process, wait_for_port

    from ..helpers.http import post_json, request

    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "examples" / "aiohttp" / "app.py"), "--port", str(port)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        wait_for_port(port, process)
        base = f"http://127.0.0.1:{port}"
        handshake = {
            "channel": "/meta/handshake",
            "version": "1.0",
            "supportedConnectionTypes": ["long-polling"],
        }
        url = base + "/cometd"
        assert post_json(url, [handshake]).json()[0]["error"] == "403::Handshake denied"
        wrong = {"X-Api-Key": "nope"}
        assert post_json(url, [handshake], headers=wrong).json()[0]["successful"] is False
        key = {"X-Api-Key": "demo-key"}
        client = post_json(url, [handshake], headers=key).json()[0]["clientId"]

        def send(**message: object) -> list:
            return post_json(url, [{**message, "clientId": client}], headers=key).json()

        assert send(channel="/meta/subscribe", subscription="/announcements")[0]["successful"]
        send(channel="/meta/connect", connectionType="long-polling")
        assert request(base + "/announce?text=hello", "POST").json() == {"reached": 1}
        got = send(channel="/meta/connect", connectionType="long-polling", advice={"timeout": 0})
        assert [m["data"] for m in got if m["channel"] == "/announcements"] == [{"text": "hello"}]
    finally:
        stop_process(process)


def test_the_python_client_example_runs_and_is_in_the_docs() -> None:
    from bayeux.testing import ServerThread

    page = (ROOT / "docs" / "python-client.md").read_text()
    snippet = page[page.index("```python\n") + len("```python\n") :]
    snippet = snippet[: snippet.index("\n```")]
    assert snippet in (ROOT / "examples" / "client" / "app.py").read_text()
    with ServerThread() as server:
        done = subprocess.run(
            [sys.executable, str(ROOT / "examples" / "client" / "app.py"), server.url],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert done.returncode == 0, done.stderr
    first, *rest = done.stdout.splitlines()
    assert first == "connected over websocket"
    # The delivery may come before or after the publish reply: the server sends both at once.
    assert sorted(rest) == ["published True", "received /demo/hello {'text': 'hi'}"]


def test_the_readme_snippets_run() -> None:
    """The README's three snippets: two applications that import and build, and the client's,
    run against a server (its printed message checked)."""
    import contextlib
    import io
    import re

    from bayeux.testing import ServerThread

    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)\n```", readme, re.S)
    assert len(blocks) == 3
    alone, fastapi, client = blocks
    namespace: dict[str, object] = {}
    exec(compile(alone, "README alone", "exec"), namespace)
    assert callable(namespace["app"])
    namespace = {}
    exec(compile(fastapi, "README fastapi", "exec"), namespace)
    assert namespace["app"].__class__.__name__ == "FastAPI"
    with ServerThread() as server:
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            code = client.replace("http://127.0.0.1:8080/cometd", server.url)
            exec(compile(code, "README client", "exec"), {})
    assert "'channel': '/chat/room'" in printed.getvalue()
    assert "'data': {'text': 'hello'}" in printed.getvalue()
