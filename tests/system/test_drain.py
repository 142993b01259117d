"""A graceful drain on SIGTERM: every kind of connection is finished properly, and the process
exits within --drain-timeout."""

from __future__ import annotations

import asyncio
import json
import signal
import time

import pytest
import tornado.httpclient
import tornado.websocket

from bayeux.testing import start_cli

from ..helpers.http import handshake, post_json
from ..helpers.servers import next_frame

# Every case runs over the standalone connection layer and over Tornado embedding.
pytestmark = pytest.mark.usefixtures("both_layers")


def test_sigterm_drains_websockets_eventsource_and_long_polls() -> None:
    process, url = start_cli("--timeout", "20000", "--drain-timeout", "4000")
    try:

        async def scenario() -> dict:
            ws = await tornado.websocket.websocket_connect(url.replace("http://", "ws://"))
            await ws.write_message(
                json.dumps(
                    [
                        {
                            "channel": "/meta/handshake",
                            "version": "1.0",
                            "supportedConnectionTypes": ["websocket"],
                        }
                    ]
                )
            )
            ws_id = json.loads(await next_frame(ws))[0]["clientId"]
            connect = {"channel": "/meta/connect", "clientId": ws_id, "connectionType": "websocket"}
            await ws.write_message(json.dumps([dict(connect, advice={"timeout": 0})]))
            await ws.read_message()
            await ws.write_message(json.dumps([dict(connect, id="held")]))  # held 20 s

            es_id = handshake(url, "eventsource")
            es_events: list[bytes] = []
            stream = tornado.httpclient.AsyncHTTPClient().fetch(
                f"{url}/{es_id}",
                headers={"Accept": "text/event-stream"},
                streaming_callback=es_events.append,
                request_timeout=30,
                raise_error=False,
            )

            lp_id = handshake(url)
            lp_connect = [
                {"channel": "/meta/connect", "clientId": lp_id, "connectionType": "long-polling"}
            ]
            post_json(url, lp_connect)
            loop = asyncio.get_running_loop()
            held_poll = loop.run_in_executor(None, lambda: post_json(url, lp_connect).json())
            await asyncio.sleep(0.5)

            started = time.monotonic()
            process.send_signal(signal.SIGTERM)
            ws_frames = []
            while True:
                frame = await asyncio.wait_for(ws.read_message(), 6)
                if frame is None:
                    break
                ws_frames.extend(json.loads(frame))
            es_response = await asyncio.wait_for(stream, 6)
            poll_reply = await asyncio.wait_for(held_poll, 6)
            return {
                "ws_frames": ws_frames,
                "ws_close": ws.close_code,
                "es_code": es_response.code,
                "es_events": b"".join(es_events),
                "poll": poll_reply,
                "exit": await loop.run_in_executor(None, process.wait, 6),
                "elapsed": time.monotonic() - started,
            }

        result = asyncio.run(scenario())
    finally:
        if process.poll() is None:
            process.kill()
    (held,) = [m for m in result["ws_frames"] if m.get("id") == "held"]
    assert held["successful"] is True and held["advice"]["reconnect"] == "retry"
    assert result["ws_close"] == 1001  # going away
    assert result["es_code"] == 200 and result["es_events"].startswith(b"retry:")  # ended cleanly
    (reply,) = result["poll"]
    assert reply["successful"] is True and reply["advice"]["interval"] > 0
    assert result["exit"] == 0
    assert result["elapsed"] < 4.5
