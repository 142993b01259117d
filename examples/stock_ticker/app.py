"""A stock ticker written with the server's decorators, with a page that uses the CometD JS
client (index.html and ticker.js, served by this app):

- `/stock/{symbol}`, a template channel: one channel per symbol, on which the feed publishes
  that symbol's prices; the page subscribes to the symbol it watches;
- `@server.listener` on it: prices come from the feed only; a client's publish there is
  dropped (the client is told `404:/stock/<symbol>:Message deleted`);
- `@server.subscription` on it: the quote desk, a subscriber living in the server, learns each
  price from what is published, as any subscriber would;
- `@server.remote_call("/service/quote/{symbol}")`: the page's `remoteCall("quote/ACME")`
  gets the desk's quote, and a symbol nobody trades gets a `ServiceError`;
- `Feed`, a service object (`server.add_services`): its `@bayeux.on_start` method starts the
  task that publishes the prices, `--ticks` times each, after which it stops by itself;
  its `@bayeux.on_stop` method stops it when the server shuts down (SIGTERM, Ctrl-C).

Run it:   .venv/bin/python examples/stock_ticker/app.py --port 8080   then open
http://127.0.0.1:8080/ (http://127.0.0.1:8080/?transport=long-polling forces a transport).
The page loads the npm `cometd` client from interop/node_modules through this app, so it needs
no network (`./run-tests` installs it, or `cd interop && npm ci`). interop/test_stock_ticker.py
drives the page in headless Chromium; docs/examples-stock-ticker.md shows this code.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import signal
from pathlib import Path
from typing import Any

import tornado.web

import bayeux
from bayeux import BayeuxServer, Endpoint, ServerSession, ServiceError

HERE = Path(__file__).parent
COMETD_JS = HERE.parent.parent / "interop" / "node_modules" / "cometd"
OPENING_PRICES = {"ACME": 42.0, "BAYX": 101.25, "INIT": 7.5}

server = BayeuxServer()
# What the quote desk has seen of each symbol: its last price, the feed's number of that tick,
# and how many ticks reached the desk.
quotes: dict[str, dict[str, Any]] = {
    symbol: {"symbol": symbol, "price": price, "tick": 0, "seen": 0}
    for symbol, price in OPENING_PRICES.items()
}


@server.remote_call("/service/quote/{symbol}")
def quote(session: ServerSession, data: Any, symbol: str) -> dict[str, Any]:
    if symbol not in quotes:
        raise ServiceError("Unknown symbol", {"symbol": symbol})  # the caller's failure
    return dict(quotes[symbol])


@server.listener("/stock/{symbol}")
def from_the_feed_only(
    session: ServerSession | None, channel: str, message: dict[str, Any], symbol: str
) -> bool:
    return False  # a client's price is dropped; the feed's server.publish skips listeners


@server.subscription("/stock/{symbol}")
def quote_desk(message: dict[str, Any], symbol: str) -> None:
    if symbol in quotes:
        known = quotes[symbol]
        tick = message["data"]
        known.update(price=tick["price"], tick=tick["tick"], seen=known["seen"] + 1)


class Feed:
    """Publishes a price for every symbol each `interval` seconds, `ticks` times."""

    def __init__(self, server: BayeuxServer, interval: float, ticks: int) -> None:
        self.server = server
        self.interval = interval
        self.ticks = ticks
        self.published = 0
        self.task: asyncio.Task[None] | None = None

    @bayeux.on_start
    async def open(self) -> None:
        self.task = asyncio.create_task(self.run())
        print(f"feed: open, {self.ticks} ticks every {self.interval}s", flush=True)

    async def run(self) -> None:
        prices = dict(OPENING_PRICES)
        walk = random.Random()
        while self.published < self.ticks:
            await asyncio.sleep(self.interval)
            self.published += 1
            for symbol, price in prices.items():
                price = prices[symbol] = round(max(0.01, price * walk.gauss(1.0, 0.002)), 2)
                self.server.publish(f"/stock/{symbol}", {"price": price, "tick": self.published})
        print(f"feed: done after {self.published} ticks", flush=True)

    @bayeux.on_stop
    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.wait([self.task])
        print(f"feed: stopped after {self.published} ticks", flush=True)


def make_app(endpoint: Endpoint) -> tornado.web.Application:
    static = tornado.web.StaticFileHandler
    return tornado.web.Application(
        endpoint.routes("/cometd")
        + [
            (r"/cometd-js/(.*)", static, {"path": str(COMETD_JS)}),
            (r"/(|ticker\.js)", static, {"path": str(HERE), "default_filename": "index.html"}),
        ]
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description="a stock ticker on bayeux's decorators")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between ticks")
    parser.add_argument("--ticks", type=int, default=7200, help="ticks before the feed stops")
    args = parser.parse_args()
    if not (args.interval > 0 and args.ticks > 0):
        parser.error("--interval and --ticks must be above 0")
    if not (COMETD_JS / "cometd.js").exists():
        raise SystemExit(f"{COMETD_JS} is missing: run `cd interop && npm ci` first")
    server.add_services(Feed(server, args.interval, args.ticks))
    endpoint = Endpoint(server=server)
    listening = make_app(endpoint).listen(args.port, args.host)
    endpoint.start()  # now rather than at the first request: the feed runs before anyone looks
    print(f"stock ticker on http://{args.host}:{args.port}/", flush=True)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    await stop.wait()
    listening.stop()
    await endpoint.shutdown()  # answers held connects, then runs the on_stop hooks


if __name__ == "__main__":
    asyncio.run(main())
