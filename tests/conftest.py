from __future__ import annotations

import pytest

from bayeux import Endpoint, Settings
from bayeux.testing import ServerThread

from .helpers.redisproc import RedisServer


@pytest.fixture(params=["standalone", "embedded"])
def both_layers(request):
    """Runs a test against the standalone connection layer and against the endpoint mounted
    in a Tornado Application: the transports' semantics must not depend on who parses HTTP.
    Modules opt in with `pytestmark = pytest.mark.usefixtures("both_layers")`."""
    ServerThread.embedded_by_default = request.param == "embedded"
    try:
        yield request.param
    finally:
        ServerThread.embedded_by_default = False


@pytest.fixture
def live(both_layers):
    """An endpoint on a background IOLoop with short timeouts."""
    endpoint = Endpoint(
        Settings(timeout=2000, max_interval=3000, sweep_period=100, max_message_size=64 * 1024),
        allowed_origins=("http://good.example",),
    )
    with ServerThread(endpoint=endpoint) as server:
        yield server


@pytest.fixture
def redis_server():
    server = RedisServer()
    server.start()
    yield server
    server.stop()
