"""Services written with decorators and template channels: `.venv/bin/python
examples/decorators.py`.

A stock desk: a remote call per symbol, a listener and a server-side subscription on
`/stock/{symbol}`, and a service object whose start and stop hooks follow the server's. Its
client is a LocalSession (a client living in the server), so it needs no network; remote
clients reach the same functions. tests/system/test_decorators_example.py runs it and checks what
it prints, and that docs/server-api.md shows it as it is.
"""

from __future__ import annotations

import asyncio

import bayeux
from bayeux import BayeuxServer, LocalSession, ServiceError

PRICES = {"ACME": 42.0, "INIT": 7.5}

server = BayeuxServer()


@server.remote_call("/service/price/{symbol}")
async def price(session, data, symbol):  # type: ignore[no-untyped-def]
    if symbol not in PRICES:
        raise ServiceError("Unknown symbol", {"symbol": symbol})  # the caller's failure
    return {"symbol": symbol, "total": PRICES[symbol] * data["quantity"]}


@server.listener("/stock/{symbol}")
def known_symbols_only(session, channel, message, symbol):  # type: ignore[no-untyped-def]
    return symbol in PRICES  # False drops the message: the publisher is told 404


@server.subscription("/stock/{symbol}")
def ticked(message, symbol):  # type: ignore[no-untyped-def]
    PRICES[symbol] = message["data"]
    print(f"tick {symbol}: {message['data']}")


@server.on_session_added
def added(session):  # type: ignore[no-untyped-def]
    print("session added:", "local" if session.local else "remote")  # subscriptions' is local


class Orders:
    """A service object: its marked methods are registered by add_services."""

    def __init__(self) -> None:
        self.book: list[tuple[str, str]] = []

    @bayeux.service("/service/orders/{symbol}/{side}")
    def order(self, session, message, symbol, side):  # type: ignore[no-untyped-def]
        self.book.append((symbol, side))
        return {"order": len(self.book), "symbol": symbol, "side": side}

    @bayeux.on_start
    async def load(self) -> None:
        print("orders: open")

    @bayeux.on_stop
    def close(self) -> None:
        print(f"orders: closed with {len(self.book)} orders")


server.add_services(Orders())


async def main() -> None:
    await server.start_services()  # Endpoint.start() does this for you
    trader = await LocalSession.connect(server)
    await trader.subscribe("/service/**", lambda reply: print("reply:", reply.get("data")))
    await trader.publish("/stock/ACME", 43.0)
    refused = await trader.publish("/stock/NOPE", 1.0)
    print("refused:", refused["error"])
    await asyncio.sleep(0)  # the subscription runs on the loop, never inside a publish
    await trader.publish("/service/price/ACME", {"quantity": 2})
    await trader.publish("/service/price/NOPE", {"quantity": 2})
    await asyncio.sleep(0.01)  # the replies of the coroutines
    await trader.publish("/service/orders/ACME/buy", None)
    await asyncio.sleep(0)
    await server.stop_services()  # Endpoint.shutdown() does this for you


if __name__ == "__main__":
    asyncio.run(main())
