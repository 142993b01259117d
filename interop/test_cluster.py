"""A deployment of two `python -m bayeux --redis` processes behind Debian's nginx balancing
round-robin, with no stickiness: every request may reach either process. The conformance
suite passes through it as it does against one process, and so do the CometD JS client and
Faye's."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from bayeux.testing import stop_process
from spec_tests.runner import FAIL, INCOMPLETE, run_suite
from tests.helpers.redis_nodes import SUITE_OPTIONS, serve
from tests.helpers.redisproc import RedisServer

from .conftest import assert_all_ok, run_node
from .nginx import nginx_in_front

pytestmark = pytest.mark.redis


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    redis = RedisServer()
    redis.start()
    options = ("--xheaders", *SUITE_OPTIONS, "--replay-channels", "/event/**")
    one, url_one = serve(redis.url, *options)
    two, url_two = serve(redis.url, *options)
    nginx, url = nginx_in_front([url_one, url_two], tmp_path_factory.mktemp("nginx"))
    try:
        yield url
    finally:
        nginx.terminate()
        nginx.wait(10)
        assert stop_process(one) == 0
        assert stop_process(two) == 0
        redis.stop()


def test_spec_tests_pass_through_round_robin(cluster: str) -> None:
    results = asyncio.run(run_suite(cluster))
    bad = [
        f"{r.rule} over {r.transport}: {r.detail}"
        for r in results
        if r.outcome in (FAIL, INCOMPLETE)
    ]
    assert not bad, "\n".join(bad)
    assert sum(r.outcome == "pass" for r in results) > 150


@pytest.mark.parametrize("transport", ["long-polling", "websocket"])
def test_cometd_js_through_round_robin(cluster: str, transport: str) -> None:
    assert_all_ok(run_node("cometd_scenarios.mjs", cluster, transport), 6)


@pytest.mark.parametrize("transport", ["long-polling", "websocket"])
def test_faye_through_round_robin(cluster: str, transport: str) -> None:
    assert_all_ok(run_node("faye_scenarios.mjs", cluster, transport), 4)


def test_the_docs_show_the_balanced_configuration(tmp_path: Path) -> None:
    readme = (Path(__file__).parent.parent / "docs" / "operations.md").read_text()
    assert "server 127.0.0.1:8081;" in readme and "server 127.0.0.1:8082;" in readme
