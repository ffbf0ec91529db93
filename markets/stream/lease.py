"""Leader election: exactly one streamer per deployment publishes, the holder of a Redis lease.

The lease is a key set with NX and a TTL, renewed by its holder every third of the TTL with a
compare-and-extend script, so a standby takes over within one lease period of the leader dying,
and a leader that cannot renew (Redis unreachable, a long pause) stops publishing before another
can start. Without Redis (the embedded default) the one process is the leader.
"""

from __future__ import annotations

import logging
import uuid

from django.conf import settings

logger = logging.getLogger("markets.stream")

LEASE_KEY = "markets:stream:leader"
_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) and 1 or 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


class Lease:
    """`await hold()` takes or renews the lease and says whether this process holds it now."""

    def __init__(self, *, ttl: float):
        self.ttl_ms = int(ttl * 1000)
        self.token = uuid.uuid4().hex
        self._redis = None
        if settings.CONFIG.redis_url:
            import redis.asyncio

            self._redis = redis.asyncio.Redis.from_url(
                settings.CONFIG.redis_url, socket_connect_timeout=1, socket_timeout=2
            )

    async def hold(self) -> bool:
        if self._redis is None:
            return True
        try:
            return bool(await self._redis.eval(_RENEW, 1, LEASE_KEY, self.token, self.ttl_ms))
        except Exception as exc:  # Redis down: nobody can prove leadership, so nobody publishes
            logger.debug("lease not renewed: %s", exc.__class__.__name__)
            return False

    async def release(self) -> None:
        if self._redis is None:
            return
        try:
            await self._redis.eval(_RELEASE, 1, LEASE_KEY, self.token)
            await self._redis.aclose()
        except Exception as exc:
            logger.debug("lease not released: %s", exc.__class__.__name__)
