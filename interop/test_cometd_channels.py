"""The CometD JS client against channels as objects (interop/channels_server.py), over
long-polling and WebSocket: broadcast-to-publisher per channel (on a server that echoes and on
one that does not) and per session, publishing and delivering as the caller, a channel listener
that drops (the publisher told 404), an authorizer refusing subscriptions (403), server.batch()
(one connect reply, one frame; apart without it), per-message lazy against the channel's and
the server's lazy timeouts, and subscriber counts; then two `python -m bayeux --redis`
processes running the same application: counts and listings span both, and the
broadcast-to-publisher settings hold across them.

Each scenario is its own test: the Node script runs them all once per transport and suite."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from bayeux.testing import stop_process
from tests.helpers.redis_nodes import serve
from tests.helpers.redisproc import RedisServer

from .channels_server import channels_server
from .conftest import run_node

TRANSPORTS = ["long-polling", "websocket"]

SINGLE = [
    "channel_without_broadcast_to_publisher",
    "server_side_publish_and_deliver_as_the_caller",
    "channel_with_broadcast_to_publisher_on_a_quiet_server",
    "session_without_broadcast_to_publisher",
    "listener_drops_a_message",
    "authorizer_denies_subscribe",
    "server_batch_arrives_in_one_packet",
    "without_a_batch_the_same_publishes_arrive_apart",
    "lazy_publish_waits_for_the_channels_own_timeout",
    "lazy_publish_on_a_plain_channel_waits_for_the_servers_timeout",
    "lazy_channel_holds_every_message_for_its_timeout",
    "channels_own_lazy_timeout_comes_before_its_patterns",
    "subscriber_count_follows_the_clients",
]

DEPLOYMENT = [
    "subscribers_are_counted_on_both_processes",
    "broadcast_to_publisher_settings_hold_across_processes",
]

Results = Callable[[str], dict[str, dict]]


def runner(suite: str, first: str, second: str) -> Results:
    """Runs the suite's scenarios once per transport (at the first test asking), by name."""
    done: dict[str, dict[str, dict]] = {}

    def results(transport: str) -> dict[str, dict]:
        if transport not in done:
            lines = run_node("cometd_channels.mjs", suite, transport, first, second)
            done[transport] = {line["name"]: line for line in lines}
        return done[transport]

    return results


def assert_passed(results: dict[str, dict], scenario: str) -> None:
    assert scenario in results, f"{scenario} did not run; ran {sorted(results)}"
    result = results[scenario]
    assert result["ok"], f"{scenario} ({result['transport']}): {result.get('error')}"


@pytest.fixture(scope="module")
def single() -> Iterator[Results]:
    with channels_server() as echoing, channels_server(broadcast_to_publisher=False) as quiet:
        yield runner("single", echoing.url, quiet.url)


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("scenario", SINGLE)
def test_cometd_js_channels(single: Results, transport: str, scenario: str) -> None:
    assert_passed(single(transport), scenario)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_every_single_process_scenario_is_listed(single: Results, transport: str) -> None:
    assert sorted(single(transport)) == sorted(SINGLE)


@pytest.fixture(scope="module")
def deployment() -> Iterator[Results]:
    redis = RedisServer()
    redis.start()
    # No browser cookie: the clients of one Node process share a cookie jar (channels_server).
    options = ("--app", "interop.channels_server:install", "--browser-cookie", "")
    one, url_one = serve(redis.url, *options)
    two, url_two = serve(redis.url, *options)
    try:
        yield runner("deployment", url_one, url_two)
    finally:
        assert stop_process(one) == 0
        assert stop_process(two) == 0
        redis.stop()


@pytest.mark.redis
@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("scenario", DEPLOYMENT)
def test_cometd_js_channels_across_a_deployment(
    deployment: Results, transport: str, scenario: str
) -> None:
    assert_passed(deployment(transport), scenario)


@pytest.mark.redis
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_every_deployment_scenario_is_listed(deployment: Results, transport: str) -> None:
    assert sorted(deployment(transport)) == sorted(DEPLOYMENT)
