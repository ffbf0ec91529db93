"""A per-provider circuit breaker whose state lives in the shared cache, so every worker sees it.

Closed: calls go through. After FAILURE_THRESHOLD consecutive failed calls it opens: calls are
refused for OPEN_SECONDS. Then it is half-open: one process (claimed with cache.add) makes a
trial call; success closes it, failure opens it again. A 429's Retry-After sets a cool-down the
same way, so no worker calls the provider again before the upstream said it may.
"""

from __future__ import annotations

import logging
import time

from django.core.cache import cache

from coinlink import metrics

logger = logging.getLogger("markets.breaker")

FAILURE_THRESHOLD = 5
OPEN_SECONDS = 30.0
_TTL = 24 * 3600


class BreakerOpen(Exception):
    def __init__(self, provider: str, retry_in: float):
        super().__init__(f"{provider} circuit open, retry in {retry_in:.0f}s")
        self.provider = provider
        self.retry_in = retry_in


class CircuitBreaker:
    def __init__(self, provider: str):
        self.provider = provider
        prefix = f"markets:breaker:{provider}"
        self.k_failures, self.k_opened, self.k_trial, self.k_cooldown = (
            f"{prefix}:failures",
            f"{prefix}:opened",
            f"{prefix}:trial",
            f"{prefix}:cooldown",
        )

    def state(self, *, now: float | None = None) -> str:
        """closed, open or half_open, as the next caller would find it."""
        now = time.time() if now is None else now
        values = cache.get_many([self.k_opened, self.k_cooldown])
        cooldown = values.get(self.k_cooldown)
        if cooldown is not None and cooldown > now:
            return "open"
        opened = values.get(self.k_opened)
        if opened is None:
            return "closed"
        return "open" if now - opened < OPEN_SECONDS else "half_open"

    def failures(self) -> int:
        return int(cache.get(self.k_failures) or 0)

    def before_call(self) -> None:
        """Raise BreakerOpen unless this caller may call the provider now."""
        now = time.time()
        values = cache.get_many([self.k_opened, self.k_cooldown])
        cooldown = values.get(self.k_cooldown)
        if cooldown is not None and cooldown > now:
            raise BreakerOpen(self.provider, cooldown - now)
        opened = values.get(self.k_opened)
        if opened is None:
            return
        if now - opened < OPEN_SECONDS:
            raise BreakerOpen(self.provider, OPEN_SECONDS - (now - opened))
        # Half-open: exactly one trial call across all workers.
        if not cache.add(self.k_trial, now, timeout=int(OPEN_SECONDS)):
            raise BreakerOpen(self.provider, OPEN_SECONDS)

    def record_success(self) -> None:
        if cache.get(self.k_opened) is not None:
            logger.info("%s circuit closed", self.provider)
        cache.delete_many([self.k_failures, self.k_opened, self.k_trial])
        metrics.BREAKER_OPEN.labels(provider=self.provider).set(0)

    def record_failure(self) -> int:
        cache.add(self.k_failures, 0, timeout=_TTL)
        try:
            failures = cache.incr(self.k_failures)
        except ValueError:  # expired between add and incr
            cache.set(self.k_failures, 1, timeout=_TTL)
            failures = 1
        if failures >= FAILURE_THRESHOLD:
            # Claimed, so of several threads or workers failing at once only one logs the opening.
            if cache.add(self.k_opened, time.time(), timeout=_TTL):
                logger.warning("%s circuit opened after %d consecutive failures", self.provider, failures)
            else:
                cache.set(self.k_opened, time.time(), timeout=_TTL)
            cache.delete(self.k_trial)
            metrics.BREAKER_OPEN.labels(provider=self.provider).set(1)
        return failures

    def cool_down(self, seconds: float) -> None:
        """The provider asked us (Retry-After) not to call before `seconds` from now."""
        cache.set(self.k_cooldown, time.time() + seconds, timeout=int(seconds) + 1)

    def reset(self) -> None:
        cache.delete_many([self.k_failures, self.k_opened, self.k_trial, self.k_cooldown])
        metrics.BREAKER_OPEN.labels(provider=self.provider).set(0)
