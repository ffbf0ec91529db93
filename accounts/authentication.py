"""DRF authentication: Bearer access tokens of live sessions, checked against the cache on every request."""

from __future__ import annotations

import uuid
from typing import cast

from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.settings import api_settings

from accounts.exceptions import InvalidToken
from accounts.models import User
from accounts.selectors import access_token_decode
from accounts.tokens import SessionAccessToken
from coinlink import context
from coinlink.db.prepared import PreparedInstance


class SessionJWTAuthentication(JWTAuthentication):
    """simplejwt's Bearer authentication, plus: the token's `sid` session must not be revoked.

    The session check reads one cache key (no query when warm), so a logout, logout-all, password
    change, session DELETE, deactivation (admin) or deletion of the user refuses the session's access
    tokens on the very next request. Because every one of those ends the session, a live session
    vouches for its user, and `request.user` is that user with only the id loaded: no query per
    request. Views that show or check the user's other fields load the row with `request_user_row`.
    """

    def get_validated_token(self, raw_token: bytes) -> SessionAccessToken:
        try:
            return access_token_decode(token=raw_token.decode("ascii", errors="replace"))
        except InvalidToken as error:
            raise AuthenticationFailed(error.detail, code=error.code) from None

    def get_user(self, validated_token) -> User:  # type: ignore[override]  # simplejwt: an unbound TypeVar
        user_id = validated_token[api_settings.USER_ID_CLAIM]  # a UUID: SessionAccessToken.verify checked it
        context.user_id.set(str(user_id))
        # Any other field, if read, loads on access (a query each): use request_user_row for those.
        return User.from_db(None, ["id"], [uuid.UUID(user_id)])


# Read by profile and verify (a tenth of the signed-in mix): compiled once (coinlink.db.prepared).
_USER_ROW = PreparedInstance(User, lambda user_id: User.objects.filter(id=user_id))


def request_user_row(request) -> User:
    """The signed-in user's whole row, with simplejwt's checks (user_not_found, user_inactive)."""
    user = _USER_ROW(user_id=uuid.UUID(str(request.auth[api_settings.USER_ID_CLAIM])))
    if user is None or not user.is_active or api_settings.CHECK_REVOKE_TOKEN:
        # Anything but an active user is simplejwt's to judge, with its own errors.
        return cast(User, JWTAuthentication().get_user(request.auth))  # AUTH_USER_MODEL is accounts.User
    return user
