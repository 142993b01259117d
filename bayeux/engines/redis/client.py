"""Connecting to Redis: a plain or TLS URL, or a primary named by Sentinels."""

from __future__ import annotations

from typing import Any

import redis.asyncio
import redis.asyncio.sentinel


def redis_client(url: str, **options: Any) -> Any:
    """A client for `redis://`, `rediss://` (TLS) or `unix://` URLs, and for a Sentinel-managed
    primary: `redis+sentinel://host:port[,host:port...]/<service>[/<db>]`."""
    if url.startswith("redis+sentinel://"):
        hosts, _, path = url[len("redis+sentinel://") :].partition("/")
        service, _, db = path.partition("/")
        if not hosts or not service:
            raise ValueError("a Sentinel URL is redis+sentinel://host:port[,...]/service[/db]")
        sentinels = []
        for host in hosts.split(","):
            name, _, port = host.rpartition(":")
            sentinels.append((name or host, int(port or 26379)))
        sentinel = redis.asyncio.sentinel.Sentinel(
            sentinels, socket_connect_timeout=options.get("socket_connect_timeout", 2)
        )
        return sentinel.master_for(service, db=int(db or 0), **options)
    return redis.asyncio.from_url(url, **options)
