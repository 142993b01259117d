"""Connecting to Redis: a plain or TLS URL, or a primary named by Sentinels."""

from __future__ import annotations

from typing import Any

import redis.asyncio
import redis.asyncio.sentinel

# Connections one client opens to Redis at most; a command finding them all busy waits for one.
# redis-py's default pool opens a connection for every command in flight: under a burst of
# handshakes each worker of `--workers 6` held 50 to 60 connections (each a client buffer in
# Redis and a reader in the process) that it kept afterwards, and more as the bursts grew
# (benchmarks/scale.py). 16 was too few for workers whose loops ran late: round trips took
# long enough that handshakes waited past the command timeout for a connection.
MAX_CONNECTIONS = 64
# Seconds a command waits for a free connection before it fails (callers bound their commands'
# time themselves; this only keeps a wait from outliving them).
CONNECTION_WAIT = 10.0


def redis_client(url: str, **options: Any) -> Any:
    """A client for `redis://`, `rediss://` (TLS) or `unix://` URLs, and for a Sentinel-managed
    primary: `redis+sentinel://host:port[,host:port...]/<service>[/<db>]`. A plain URL's client
    keeps at most `MAX_CONNECTIONS` connections (a `max_connections` option or query value
    changes it); commands wait for a free one."""
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
    options.setdefault("max_connections", MAX_CONNECTIONS)
    options.setdefault("timeout", CONNECTION_WAIT)
    pool = redis.asyncio.BlockingConnectionPool.from_url(url, **options)
    return redis.asyncio.Redis.from_pool(pool)
