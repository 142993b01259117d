"""`bayeux-client`: subscribe to or publish on a Bayeux server from a shell.

    bayeux-client http://127.0.0.1:8080/cometd subscribe /chat/room       # a JSON line a message
    bayeux-client http://127.0.0.1:8080/cometd publish /chat/room '{"n": 1}'

Exit status:
  0  done (also: subscribe stopped with Ctrl-C, --count or --seconds)
  1  the server refused, could not be reached, answered something that is not Bayeux, or
     ended the session
  2  bad arguments: the data is not strict JSON (no NaN or Infinity), is nested deeper than
     64 levels or is over 1 MiB; a header or cookie is malformed or holds a control character
  3  an unexpected failure of this command (a bug: please report the line it printed)
Whatever happens, the reason is one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import ssl
import sys
from typing import Any

from .. import strictjson
from .client import TRANSPORTS, Client
from .errors import BayeuxError, ClientClosed
from .extensions import AckExtension, ClientExtension, ReplayExtension
from .state import State

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_BUG = 0, 1, 2, 3
# The server's default --max-message-size: larger data would be refused by it anyway.
MAX_DATA_BYTES = 1024 * 1024
# RFC 9110: a header name is a token; a value holds no control character but tab.
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


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
        name, rest = name.strip(), rest.strip()
        if not found or not name:
            raise ValueError(f"{what} {value!r} is not name{separator}value")
        if not _TOKEN.fullmatch(name) or _CONTROL.search(rest):
            raise ValueError(f"{what} {value!r} holds a character not allowed in a {what}")
        pairs[name] = rest
    return pairs


def _fail(message: str, status: int) -> int:
    print(f"bayeux-client: {message}", file=sys.stderr, flush=True)
    return status


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)  # exits 2 with its usage on bad arguments
    try:
        return _main(args)
    except KeyboardInterrupt:
        return EXIT_OK
    except BrokenPipeError:
        # The reader of stdout went away (| head): done; and no second error at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except Exception as error:  # a bug of this command: one line, not a traceback
        return _fail(f"unexpected {type(error).__name__}: {error}", EXIT_BUG)


def _main(args: argparse.Namespace) -> int:
    data: Any = None
    try:
        if args.command == "publish":
            data = strictjson.loads(args.data, max_bytes=MAX_DATA_BYTES)
        headers = _pairs(args.header, ":", "header")
        cookies = _pairs(args.cookie, "=", "cookie")
    except ValueError as error:
        return _fail(str(error), EXIT_USAGE)
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
        return _fail(str(error) or type(error).__name__, EXIT_FAILED)
    except TimeoutError:
        return _fail("no reply from the server in time", EXIT_FAILED)


def _show(message: dict[str, Any]) -> str:
    # msgpack may carry bytes, which JSON has no form for: shown as their repr.
    return json.dumps(message, default=repr)


async def _run(client: Client, args: argparse.Namespace, data: Any) -> int:
    async with client:
        if args.command == "publish":
            reply = await client.publish(args.channel, data)
            print(_show(reply), flush=True)
            return EXIT_OK
        done = asyncio.get_running_loop().create_future()
        count = 0

        def show(message: dict[str, Any]) -> None:
            nonlocal count
            print(_show(message), flush=True)
            count += 1
            if args.count is not None and count >= args.count and not done.done():
                done.set_result(None)

        def ended(old: State, new: State) -> None:
            if new == State.CLOSED and not done.done():
                done.set_exception(ClientClosed(client.closed_reason or "the session ended"))

        client.on_state(ended)
        await client.subscribe(args.channel, show)
        try:
            await asyncio.wait_for(done, args.seconds)
        except TimeoutError:
            pass
        return EXIT_OK
