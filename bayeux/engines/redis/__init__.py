"""The Redis engine: sessions and one message log in Redis, so that any process serves any
session (see engine.py for the design)."""

from .client import redis_client
from .engine import RedisEngine

__all__ = ["RedisEngine", "redis_client"]
