"""The admin page in headless Chromium (interop/node/admin_ui.mjs) against `python -m bayeux
--admin-path /admin` under a known load of a thousand WebSocket clients: it shows nothing
without the token; with it, the session count says how many clients there are, the publish
and delivery rates what the publisher sends; its button disconnects a session, whose client is
then told to stop, and its form publishes a message a client receives. The screenshot it takes
is docs/images/admin.png (BAYEUX_ADMIN_SCREENSHOT=docs/images/admin.png to take it again)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bayeux.testing import start_cli, stop_process
from tests.helpers.admin import LOAD_OPTIONS, TOKEN, Swarm, until

from .conftest import assert_all_ok, run_node

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CLIENTS = 1000
SUBSCRIBED = 100
RATE = 5.0
CHANNEL = "/load/ticks"
CHECKS = 10


def test_the_admin_page_with_a_thousand_clients(tmp_path: Path) -> None:
    process, url = start_cli(
        "--admin-path", "/admin", *LOAD_OPTIONS, env={**os.environ, "BAYEUX_ADMIN_TOKEN": TOKEN}
    )
    try:
        with Swarm(
            url, CLIENTS, subscribed=SUBSCRIBED, channel=CHANNEL, rate=RATE, extra=("/admin/test",)
        ) as swarm:
            victim = swarm.client_ids[-1]  # not the client listening to /admin/test
            shot = str(
                Path(os.environ.get("BAYEUX_ADMIN_SCREENSHOT", tmp_path / "admin.png")).resolve()
            )
            page = url.replace("/cometd", "/admin")
            results = run_node(
                "admin_ui.mjs",
                page,
                TOKEN,
                str(CLIENTS + 1),
                str(RATE),
                str(SUBSCRIBED),
                CHANNEL,
                victim,
                shot,
                timeout=300,
            )
            assert_all_ok(results, CHECKS)
            # The disconnected client was told to stop; the others were not.
            until(lambda: swarm.stopped(victim))
            assert sum(swarm.stopped(c) for c in swarm.client_ids) == 1
            # The page's test message reached the client subscribed to its channel.
            until(lambda: swarm.received["/admin/test"] == 1)
            assert swarm.received[CHANNEL] > 0
    finally:
        assert stop_process(process) == 0
