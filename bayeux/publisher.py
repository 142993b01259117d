"""Publishing to a bayeux deployment on Redis from any Python process (no server in it):
`Publisher` for asyncio code, `SyncPublisher` for the rest, and the `bayeux publish` command.

    bayeux publish --redis redis://127.0.0.1:6379/0 /news '{"text": "hello"}'
    bayeux publish --redis redis://127.0.0.1:6379/0 --client <clientId> /direct '"hi"'
    bayeux publish --redis redis://127.0.0.1:6379/0 --user alice /inbox '"hi"'

Needs the redis extra (pip install 'bayeux-server[redis]'). See engines/redis/publisher.py.

The command's exit status: 0 published (the position printed), 1 Redis could not be reached
or refused, 2 bad arguments (the data not strict JSON, nested deeper than 64 levels or over
--max-message-size; a channel the servers would refuse), 3 an unexpected failure (a bug).
The reason is one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import sys

from . import strictjson
from .engines.redis.publisher import Publisher, SyncPublisher

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_BUG = 0, 1, 2, 3
_DEFAULT_MAX_MESSAGE_SIZE = 1024 * 1024  # the servers' default --max-message-size

EPILOG = """exit status:
  0  published; its position in the log is printed
  1  Redis could not be reached, or refused
  2  bad arguments: the data is not strict JSON (no NaN or Infinity), is nested deeper than
     64 levels or is over --max-message-size; a channel the servers would refuse
  3  an unexpected failure of this command (a bug: please report the line it printed)
The reason is one line on stderr, never a traceback."""

__all__ = ["Publisher", "SyncPublisher", "main"]


def _fail(message: str, status: int) -> int:
    print(f"bayeux publish: {message}", file=sys.stderr, flush=True)
    return status


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="bayeux publish",
        description="Publish a message to a bayeux deployment on Redis: every server process"
        " delivers it to its subscribers. Prints the message's position in the log (with"
        " --user: how many sessions it reached).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--redis", required=True, metavar="URL", help="the deployment's Redis")
    parser.add_argument("--redis-prefix", default="bayeux", help="the deployment's key prefix")
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--client", metavar="ID", help="deliver to this clientId only")
    target.add_argument("--user", metavar="ID", help="deliver to every session of this user")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds to reach Redis")
    parser.add_argument(
        "--max-message-size",
        type=int,
        default=_DEFAULT_MAX_MESSAGE_SIZE,
        metavar="BYTES",
        help="the deployment's --max-message-size: larger data is refused here",
    )
    parser.add_argument("channel", help="a broadcast channel, e.g. /news")
    parser.add_argument("data", help="the message's data, as strict JSON")
    args = parser.parse_args(argv)  # exits 2 with its usage on bad arguments
    try:
        return _publish(args)
    except KeyboardInterrupt:
        return _fail("interrupted", EXIT_FAILED)
    except Exception as error:  # a bug of this command: one line, not a traceback
        return _fail(f"unexpected {type(error).__name__}: {error}", EXIT_BUG)


def _publish(args: argparse.Namespace) -> int:
    try:
        data = strictjson.loads(args.data, max_bytes=args.max_message_size)
    except ValueError as error:
        return _fail(str(error), EXIT_USAGE)
    try:
        with SyncPublisher(
            args.redis,
            args.redis_prefix,
            timeout=args.timeout,
            max_message_size=args.max_message_size,
        ) as publisher:
            if args.client:
                position = publisher.deliver_to_client(args.client, args.channel, data)
            elif args.user:
                position = publisher.deliver_to_user(args.user, args.channel, data)
            else:
                position = publisher.publish(args.channel, data)
    except ValueError as error:
        return _fail(str(error), EXIT_USAGE)
    except (ConnectionError, OSError, TimeoutError) as error:
        return _fail(str(error) or type(error).__name__, EXIT_FAILED)
    print(position)
    return EXIT_OK
