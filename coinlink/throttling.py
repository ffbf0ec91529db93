"""DRF throttles on top of coinlink.ratelimit: limits that need the authenticated user."""

from __future__ import annotations

from django.conf import settings
from rest_framework.throttling import BaseThrottle

from coinlink.ratelimit import limit


class UserRateLimit(BaseThrottle):
    """RATELIMIT_USER per authenticated user, whatever address they call from.

    Anonymous requests pass (the per-IP limit in RequestGuardMiddleware covers them). Fails open
    when the cache is down, like the other read limits; the auth views' own limits fail closed.
    """

    def allow_request(self, request, view) -> bool:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            limit(request, group="user", key="user", rate=settings.RATELIMIT_USER, fail_open=True)
        return True
