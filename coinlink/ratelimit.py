"""Rate limits on top of django-ratelimit's counters in the shared cache, with Retry-After."""

from __future__ import annotations

import logging

from django_ratelimit.core import get_usage

from coinlink import metrics
from coinlink.errors import RateLimited, ServiceUnavailable

logger = logging.getLogger("coinlink.ratelimit")


def limit(request, *, group: str, key, rate: str, fail_open: bool) -> None:
    """Count this request against `group`; raise RateLimited past `rate`.

    When the cache is down, reads fail open (counted) and sensitive writes fail closed (503):
    an outage must not become a way around the auth limits.
    """
    try:
        usage = get_usage(request, group=group, key=key, rate=rate, increment=True)
    except Exception as exc:  # the cache backend's own errors (redis down, timeouts)
        _store_unavailable(group, fail_open, exc.__class__.__name__)
        return
    if usage is None:
        return
    if usage["time_left"] == -1 and usage["limit"] == 0:  # django-ratelimit's "cache failed" answer
        _store_unavailable(group, fail_open, "cache failed")
        return
    if usage["should_limit"]:
        metrics.RATELIMIT_HITS.labels(group=group).inc()
        raise RateLimited(retry_after=usage["time_left"])


def _store_unavailable(group: str, fail_open: bool, reason: str) -> None:
    """Counted and logged whichever way it fails; raises ServiceUnavailable when the group fails closed."""
    metrics.RATELIMIT_FAILURES.labels(group=group, outcome="open" if fail_open else "closed").inc()
    logger.warning("rate limit store unavailable for %s: %s", group, reason)
    if not fail_open:
        raise ServiceUnavailable("Temporarily unable to verify request limits. Try again shortly.")
