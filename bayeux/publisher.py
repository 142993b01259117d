"""Publishing to a bayeux deployment on Redis from any Python process (no server in it):
`Publisher` for asyncio code, `SyncPublisher` for the rest, and the `bayeux publish` command.

    bayeux publish --redis redis://127.0.0.1:6379/0 /news '{"text": "hello"}'
    bayeux publish --redis redis://127.0.0.1:6379/0 --client <clientId> /direct '"hi"'
    bayeux publish --redis redis://127.0.0.1:6379/0 --user alice /inbox '"hi"'

Needs the redis extra (pip install 'bayeux-server[redis]'). See engines/redis/publisher.py.
"""

from __future__ import annotations

import argparse
import json
import sys

from .engines.redis.publisher import Publisher, SyncPublisher

__all__ = ["Publisher", "SyncPublisher", "main"]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="bayeux publish",
        description="Publish a message to a bayeux deployment on Redis: every server process"
        " delivers it to its subscribers. Prints the message's position in the log (with"
        " --user: how many sessions it reached).",
    )
    parser.add_argument("--redis", required=True, metavar="URL", help="the deployment's Redis")
    parser.add_argument("--redis-prefix", default="bayeux", help="the deployment's key prefix")
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--client", metavar="ID", help="deliver to this clientId only")
    target.add_argument("--user", metavar="ID", help="deliver to every session of this user")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds to reach Redis")
    parser.add_argument("channel", help="a broadcast channel, e.g. /news")
    parser.add_argument("data", help="the message's data, as JSON")
    args = parser.parse_args(argv)
    try:
        data = json.loads(args.data)
    except json.JSONDecodeError as exc:
        parser.error(f"data is not JSON: {exc}")
    try:
        with SyncPublisher(args.redis, args.redis_prefix, timeout=args.timeout) as publisher:
            if args.client:
                position = publisher.deliver_to_client(args.client, args.channel, data)
            elif args.user:
                position = publisher.deliver_to_user(args.user, args.channel, data)
            else:
                position = publisher.publish(args.channel, data)
    except ValueError as exc:
        parser.error(str(exc))
    except ConnectionError as exc:
        print(f"bayeux publish: {exc}", file=sys.stderr)
        return 1
    print(position)
    return 0
