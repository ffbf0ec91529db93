"""Reads of `accounts`: sessions, tokens, stats."""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Iterable
from typing import NamedTuple

from django.db.models import QuerySet, Sum
from django.utils import timezone
from rest_framework_simplejwt import utils as jwt_utils
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.settings import api_settings

from accounts import session_cache
from accounts.exceptions import InvalidToken
from accounts.models import KnownDevice, Preferences, Session, User
from accounts.tokens import SESSION_CLAIM, SessionAccessToken, SessionRefreshToken
from coinlink.db.prepared import PreparedInstance, PreparedScalar

logger = logging.getLogger("accounts.sessions")


def session_owner(*, session_id: str) -> str | None:
    """The user id of a live session (neither revoked nor expired, its user active), else None; answered
    from the cache (no query) when warm. Deactivating or deleting a user ends their sessions."""
    try:
        session_id = str(uuid.UUID(str(session_id)))
    except ValueError:
        return None
    try:
        state = session_cache.state_get(session_id)
    except Exception as exc:  # cache down: the database still knows, and must not be skipped
        logger.warning("session cache unavailable, asking the database: %s", exc.__class__.__name__)
        return _session_owner_in_db(session_id)
    if state == session_cache.REVOKED:
        return None
    owner = session_cache.owner_of(state)
    if owner is not None:
        return owner
    owner = _session_owner_in_db(session_id)
    if owner is None:
        session_cache.revoked_add(session_id)
    else:
        session_cache.active_add(session_id, user_id=owner)
    return owner


def session_is_active(*, session_id: str) -> bool:
    return session_owner(session_id=session_id) is not None


def _session_owner_in_db(session_id: str) -> str | None:
    # The user's state too: authentication trusts a live session to vouch for its user.
    owner = (
        Session.objects.filter(
            id=session_id, revoked_at__isnull=True, expires_at__gt=timezone.now(), user__is_active=True
        )
        .values_list("user_id", flat=True)
        .first()
    )
    return str(owner) if owner is not None else None


def access_token_decode(*, token: str) -> SessionAccessToken:
    """A verified access token (signature, iss, aud, exp with leeway, type, sid) of a live session of its user."""
    if not isinstance(token, str) or not token or len(token) > 4096:
        raise InvalidToken()
    try:
        access = _access_token_verified(token)
        access.check_exp(current_time=jwt_utils.aware_utcnow())
    except TokenError:
        raise InvalidToken() from None
    owner = session_owner(session_id=access[SESSION_CLAIM])
    if owner is None:
        raise InvalidToken("This session has ended. Sign in again.", code="session_revoked")
    if owner != access[api_settings.USER_ID_CLAIM]:
        # Only a holder of the signing key can mint this: claims that disagree are not a token we issued.
        logger.warning(
            "access token of user %s names session %s, another user's",
            access[api_settings.USER_ID_CLAIM],
            access[SESSION_CLAIM],
        )
        raise InvalidToken()
    return access


@functools.lru_cache(maxsize=4096)
def _access_token_verified(token: str) -> SessionAccessToken:
    """The token, its signature and claims verified once per process: the SPA sends the same access token
    on every call for its lifetime, and decoding it again is a tenth of a request's CPU. Only valid tokens
    are kept (the raw string, signature included, is the key); expiry is checked again on every use and
    the session on every request, so a revoked or expired token is refused as before."""
    return SessionAccessToken(token)  # type: ignore[arg-type]


def refresh_token_decode(*, token: str) -> SessionRefreshToken:
    """A refresh token whose signature, iss, aud, exp, type and sid check out; whether it is still the
    session's current one is for `session_refresh` to decide."""
    if not isinstance(token, str) or not token or len(token) > 4096:
        raise InvalidToken()
    try:
        return SessionRefreshToken(token)  # type: ignore[arg-type]
    except TokenError:
        raise InvalidToken() from None


def access_token_user(*, token: str) -> tuple[User, str]:
    """(user, session_id) for a valid access token of an active session and user; for the WebSocket."""
    access = access_token_decode(token=token)
    user = User.objects.filter(id=access[api_settings.USER_ID_CLAIM], is_active=True).first()
    if user is None:
        raise InvalidToken()
    return user, access[SESSION_CLAIM]


def user_is_verified(*, user_id) -> bool:
    """Whether the user proved their address (followed a mailed link); False for an unknown id."""
    return User.objects.filter(pk=user_id, is_verified=True).exists()


# Taken on every alert create: compiled once (coinlink.db.prepared).
_USER_ROW_LOCK = PreparedScalar(
    lambda user_id: User.objects.select_for_update().filter(pk=user_id).values_list("pk", flat=True), QuerySet.get
)


def user_row_lock(*, user_id) -> None:
    """Lock the user's row until the transaction ends, so other apps can queue per user; DoesNotExist
    for an unknown id."""
    if _USER_ROW_LOCK(user_id=User._meta.pk.to_python(user_id)) is None:
        raise User.DoesNotExist("User matching query does not exist.")


def user_active_ids(*, after=None, limit: int) -> list:
    """Up to `limit` ids of active users in id order, from after `after` (the last id of the previous page)."""
    users = User.objects.filter(is_active=True).order_by("pk")
    if after is not None:
        users = users.filter(pk__gt=after)
    return list(users.values_list("pk", flat=True)[:limit])


class Recipient(NamedTuple):
    email: str
    is_verified: bool


def user_recipient(*, user_id) -> Recipient | None:
    """Where to mail a user, and whether they proved that address; None for an inactive or unknown user."""
    row = User.objects.filter(pk=user_id, is_active=True).values_list("email", "is_verified").first()
    return Recipient(*row) if row is not None else None


def user_timezones(*, user_ids: Iterable) -> dict:
    """Each user's time zone name from their preferences ("UTC" for one who never stored any), unchecked."""
    ids = set(user_ids)
    stored = dict(Preferences.objects.filter(user_id__in=ids).values_list("user_id", "timezone"))
    return {uid: stored.get(uid) or "UTC" for uid in ids}


def session_list(*, user: User):
    """The user's live sessions, most recently used first."""
    return Session.objects.filter(user=user, revoked_at__isnull=True, expires_at__gt=timezone.now()).order_by(
        "-last_used_at", "-created_at"
    )


# Read on every GET of /api/v2/user/preferences: compiled once (coinlink.db.prepared).
_PREFERENCES = PreparedInstance(Preferences, lambda user_id: Preferences.objects.filter(user_id=user_id))


def preferences_get(*, user: User) -> Preferences:
    """The user's preferences; the defaults (unsaved) for a user who never stored any."""
    return _PREFERENCES(user_id=user.pk) or Preferences(user=user)


def user_stats(*, user: User) -> dict:
    now = timezone.now()
    sessions = Session.objects.filter(user=user)
    return {
        "total_logins": KnownDevice.objects.filter(user=user).aggregate(n=Sum("sign_ins"))["n"] or 0,
        "last_login": user.last_login,
        "account_age_days": max(0, (now - user.created_at).days),
        "active_sessions": sessions.filter(revoked_at__isnull=True, expires_at__gt=now).count(),
        "total_sessions": sessions.count(),
    }
