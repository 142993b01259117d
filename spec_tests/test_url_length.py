"""Callback-polling URLs stay within MAX_URL_LENGTH (CometD's maxURILength): batches are split in
order as CometD's client splits them, a message too long alone is refused by name, and the
callback-polling rules pass against hosts that keep their own request-line limits (aiohttp's is
8,190 bytes)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import tornado.httpclient

from bayeux.testing import AiohttpThread, AsgiThread, ServerThread

from .conftest import SUITE_SETTINGS
from .runner import FAIL, NOT_APPLICABLE, PASS, run_suite
from .wire import MAX_URL_LENGTH, CallbackPolling, UrlTooLong

URL = "http://127.0.0.1:8080/cometd"


def publishes(count: int, size: int = 40) -> list[dict[str, Any]]:
    return [
        {"channel": "/spec/order", "clientId": "c1", "data": {"i": i, "pad": "x" * size}}
        for i in range(count)
    ]


def test_a_batch_too_long_for_one_url_is_split_in_order_into_full_urls() -> None:
    wire = CallbackPolling(URL)
    messages = publishes(60)
    batches = wire.split(messages)
    assert len(batches) > 1
    assert [m for batch in batches for m in batch] == messages  # nothing lost, in order
    for i, batch in enumerate(batches):
        assert len(wire.url_for(wire._query(batch))) <= MAX_URL_LENGTH
        if i + 1 < len(batches):  # each as long as fits: one more message would not
            with pytest.raises(UrlTooLong):
                wire.url_for(wire._query([*batch, batches[i + 1][0]]))


def test_a_batch_that_fits_is_sent_whole() -> None:
    wire = CallbackPolling(URL)
    messages = publishes(3)
    assert wire.split(messages) == [messages]


def test_a_message_too_long_alone_is_refused_naming_the_limit() -> None:
    wire = CallbackPolling(URL)
    huge = {"channel": "/spec/big", "clientId": "c1", "data": "x" * MAX_URL_LENGTH}
    with pytest.raises(UrlTooLong, match=f"limit of {MAX_URL_LENGTH}"):
        wire.split([*publishes(2), huge])
    with pytest.raises(UrlTooLong, match=f"limit of {MAX_URL_LENGTH}"):
        wire.url_for({"message": json.dumps([huge])})


@pytest.fixture
def sent_urls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every URL the suite's HTTP client fetches while the test runs."""
    urls: list[str] = []
    fetch = tornado.httpclient.AsyncHTTPClient.fetch

    def recording(self: Any, request: Any, **kwargs: Any) -> Any:
        urls.append(request.url if isinstance(request, tornado.httpclient.HTTPRequest) else request)
        return fetch(self, request, **kwargs)

    monkeypatch.setattr(tornado.httpclient.AsyncHTTPClient, "fetch", recording)
    yield urls


def test_no_url_the_suite_sends_exceeds_the_limit(sent_urls: list[str]) -> None:
    with ServerThread(SUITE_SETTINGS) as server:
        results = asyncio.run(run_suite(server.url))
    assert not [r for r in results if r.outcome == FAIL]
    jsonp = [u for u in sent_urls if "message=" in u]
    assert jsonp, "the suite sent no callback-polling request"
    longest = max(len(u) for u in sent_urls)
    assert longest <= MAX_URL_LENGTH
    # Batches were filled up to the limit (publish.order_preserved's 50 messages do not fit in
    # one URL), not cut small.
    assert longest > MAX_URL_LENGTH * 0.9


HOSTS: dict[str, Callable[[Any], Any]] = {
    "standalone": ServerThread,
    "uvicorn": AsgiThread,
    "aiohttp": AiohttpThread,
}


@pytest.mark.parametrize("host", HOSTS)
def test_callback_polling_rules_pass_on_each_host(host: str) -> None:
    with HOSTS[host](SUITE_SETTINGS) as server:
        if host == "aiohttp":
            # The host keeps aiohttp's request-line limit: a URL past it is refused.
            long_url = server.url + "?message=" + "x" * 9000
            response = asyncio.run(fetch(long_url))
            assert response.code == 400
        results = asyncio.run(run_suite(server.url, transports=("callback-polling",)))
    by_rule = {r.rule: r for r in results}
    assert by_rule["publish.order_preserved"].outcome == PASS, by_rule["publish.order_preserved"]
    failed = [r for r in results if r.outcome not in (PASS, NOT_APPLICABLE)]
    assert failed == []
    # n/a only where a rule does not apply to callback-polling at all.
    assert all("rule applies to" in r.detail for r in results if r.outcome == NOT_APPLICABLE)


async def fetch(url: str) -> tornado.httpclient.HTTPResponse:
    client = tornado.httpclient.AsyncHTTPClient()
    return await client.fetch(url, raise_error=False)
