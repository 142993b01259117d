"""`bayeux-client`: subscribe to or publish on a Bayeux server from a shell.

    bayeux-client http://127.0.0.1:8080/cometd subscribe /chat/room       # a JSON line a message
    bayeux-client http://127.0.0.1:8080/cometd publish /chat/room '{"n": 1}'

Exit status: 0 done, 1 refused by the server or unreachable, 2 bad arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import ssl
import sys
from typing import Any

from .client import TRANSPORTS, Client
from .errors import BayeuxError
from .extensions import AckExtension, ClientExtension, ReplayExtension


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bayeux-client",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("url", help="the server's Bayeux URL, http(s)://host:port/cometd")
    parser.add_argument(
        "--transport",
        action="append",
        choices=TRANSPORTS,
        help="a transport to use, in order of preference (repeat; default: websocket, then "
        "long-polling)",
    )
    parser.add_argument(
        "--header", action="append", default=[], help="'Name: value' sent with every request"
    )
    parser.add_argument("--cookie", action="append", default=[], help="name=value to send")
    parser.add_argument("--insecure", action="store_true", help="skip TLS verification")
    parser.add_argument("--ack", action="store_true", help="ask for the ack extension")
    commands = parser.add_subparsers(dest="command", required=True)
    subscribe = commands.add_parser("subscribe", help="print each message as a JSON line")
    subscribe.add_argument("channel")
    subscribe.add_argument("--count", type=int, help="stop after this many messages")
    subscribe.add_argument("--seconds", type=float, help="stop after this many seconds")
    subscribe.add_argument(
        "--replay", type=int, help="replay from this id (-1 new only, -2 all retained)"
    )
    publish = commands.add_parser("publish", help="publish one message, print the reply")
    publish.add_argument("channel")
    publish.add_argument("data", help="the message's data, as JSON")
    return parser


def _pairs(values: list[str], separator: str, what: str) -> dict[str, str]:
    pairs = {}
    for value in values:
        name, found, rest = value.partition(separator)
        if not found or not name.strip():
            raise ValueError(f"bayeux-client: {what} {value!r} is not name{separator}value")
        pairs[name.strip()] = rest.strip()
    return pairs


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    data: Any = None
    if args.command == "publish":
        try:
            data = json.loads(args.data)
        except ValueError as error:
            print(f"bayeux-client: the data is not JSON: {error}", file=sys.stderr)
            return 2
    try:
        headers = _pairs(args.header, ":", "header")
        cookies = _pairs(args.cookie, "=", "cookie")
    except ValueError as error:
        print(error, file=sys.stderr)
        return 2
    extensions: list[ClientExtension] = [AckExtension()] if args.ack else []
    if args.command == "subscribe" and args.replay is not None:
        extensions.append(ReplayExtension(default=args.replay))
    verify: ssl.SSLContext | bool = False if args.insecure else True
    client = Client(
        args.url,
        transports=args.transport or TRANSPORTS,
        extensions=extensions,
        headers=headers,
        cookies=cookies,
        ssl=verify,
    )
    try:
        return asyncio.run(_run(client, args, data))
    except BayeuxError as error:
        print(f"bayeux-client: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0


async def _run(client: Client, args: argparse.Namespace, data: Any) -> int:
    async with client:
        if args.command == "publish":
            reply = await client.publish(args.channel, data)
            print(json.dumps(reply), flush=True)
            return 0
        done = asyncio.get_running_loop().create_future()
        count = 0

        def show(message: dict[str, Any]) -> None:
            nonlocal count
            print(json.dumps(message), flush=True)
            count += 1
            if args.count is not None and count >= args.count and not done.done():
                done.set_result(None)

        await client.subscribe(args.channel, show)
        try:
            await asyncio.wait_for(done, args.seconds)
        except TimeoutError:
            pass
        return 0
