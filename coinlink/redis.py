"""One bounded Redis connection pool per process for our own direct uses (locks, pub/sub, probes)."""

from __future__ import annotations

import functools

import redis
from django.conf import settings


@functools.cache
def get_redis() -> redis.Redis:
    if not settings.CONFIG.redis_url:
        raise RuntimeError("REDIS_URL is not configured (embedded mode has no Redis)")
    return redis.Redis.from_url(
        settings.CONFIG.redis_url,
        max_connections=20,
        socket_connect_timeout=1,
        socket_timeout=2,
        health_check_interval=30,
    )
