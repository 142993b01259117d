"""The Redis engine: sessions and one message log in Redis, so that any process serves any
session (see engine.py for the design)."""

from .engine import RedisEngine, redis_client

__all__ = ["RedisEngine", "redis_client"]
