"""The cache side of session state, so that checking a session on every request costs no query.

One key per session holds "active:<user id>" or "revoked". The owner lets a token whose session is
another user's be refused without a query. "active" is only ever *added* (never overwrites),
"revoked" is *set* after the revocation commits, so a late "active" write can never resurrect a
revoked session. A missing key (cold cache, evicted, flushed) falls back to the database once.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.cache import cache

logger = logging.getLogger("accounts.sessions")

ACTIVE = "active"
REVOKED = "revoked"


def state_key(session_id: str) -> str:
    """The cache key of a session's state (documented in docs/auth.md; the auth benchmark drops it)."""
    return f"accounts:session:{session_id}"


def _ttl() -> int:
    # Outlives any access token of the session (lifetime + simplejwt's leeway + margin); after that
    # a revoked session has no live access token left and the database answers any late question.
    lifetime = settings.SIMPLE_JWT["ACCESS_TOKEN_LIFETIME"].total_seconds()
    leeway = settings.SIMPLE_JWT.get("LEEWAY", 0)
    return int(lifetime + leeway + 60)


def state_get(session_id: str) -> str | None:
    """REVOKED, "active:<user id>", or None (unknown: ask the database). Raises if the cache is down."""
    return cache.get(state_key(session_id))


def owner_of(state: str | None) -> str | None:
    """The user id of an "active:<user id>" state; None for any other (a bare "active" names no owner)."""
    kind, _, owner = (state or "").partition(":")
    return owner if kind == ACTIVE and owner else None


def active_add(session_id: str, *, user_id: str) -> None:
    try:
        cache.add(state_key(session_id), f"{ACTIVE}:{user_id}", _ttl())
    except Exception as exc:  # a cold cache only costs a query later
        logger.warning("session cache unavailable (active): %s", exc.__class__.__name__)


def revoked_add(session_id: str) -> None:
    """For a revocation learnt from the database: never overwrite what a revocation wrote."""
    try:
        cache.add(state_key(session_id), REVOKED, _ttl())
    except Exception as exc:
        logger.warning("session cache unavailable (revoked): %s", exc.__class__.__name__)


def revoked_set(session_ids: list[str]) -> None:
    try:
        cache.set_many({state_key(sid): REVOKED for sid in session_ids}, _ttl())
    except Exception as exc:
        # While the cache is down every check falls back to the database, which is already right. If it
        # comes back still holding an "active" key, that key lives at most one access-token lifetime.
        logger.error("session cache unavailable: revocation of %d sessions not cached (%s)", len(session_ids), exc)
