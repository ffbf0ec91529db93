"""One-time tokens mailed to an address: issued, claimed once, voided; only their SHA-256 is stored."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from accounts.exceptions import InvalidOneTimeToken
from accounts.models import AccountToken, User

# 32 random bytes, URL-safe base64: 43 characters. Anything much longer is not one of ours.
TOKEN_BYTES = 32
TOKEN_MAX_LENGTH = 128

Purpose = AccountToken.Purpose


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def token_issue(*, user: User, purpose: str, email: str, ttl_seconds: int) -> str:
    """A new token for `purpose`; every older unused one of the user for that purpose dies with it."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    now = timezone.now()
    with transaction.atomic():
        tokens_void(user_id=user.pk, purpose=purpose)
        AccountToken.objects.create(
            user=user,
            purpose=purpose,
            digest=_digest(token),
            email=email,
            created_at=now,
            expires_at=now + timedelta(seconds=ttl_seconds),
        )
    return token


def token_claim(*, token: str, purpose: str) -> AccountToken:
    """Mark the token used and return it; InvalidOneTimeToken when unknown, used, voided or expired.

    The claim is one conditional UPDATE, so of two requests with one token exactly one wins. Call it
    inside the transaction that acts on the token: a rollback un-claims it.
    """
    if len(token) > TOKEN_MAX_LENGTH:
        raise InvalidOneTimeToken()
    now = timezone.now()
    live = AccountToken.objects.filter(digest=_digest(token), purpose=purpose, used_at=None, expires_at__gt=now)
    if not live.update(used_at=now):
        raise InvalidOneTimeToken()
    return AccountToken.objects.select_related("user").get(digest=_digest(token))


def tokens_void(*, user_id, purpose: str) -> int:
    """Kill the user's unused tokens for `purpose` (a newer one was issued, or the password changed)."""
    return AccountToken.objects.filter(user_id=user_id, purpose=purpose, used_at=None).update(used_at=timezone.now())


def tokens_purge(*, now=None) -> int:
    """Delete used and expired tokens: they prove nothing any more."""
    now = now or timezone.now()
    expired = AccountToken.objects.filter(expires_at__lt=now) | AccountToken.objects.filter(used_at__isnull=False)
    return expired.delete()[0]
