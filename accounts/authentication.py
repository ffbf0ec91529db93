"""DRF authentication: Bearer access tokens of live sessions, checked against the cache on every request."""

from __future__ import annotations

from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt.authentication import JWTAuthentication

from accounts.exceptions import InvalidToken
from accounts.selectors import access_token_decode
from accounts.tokens import SessionAccessToken
from coinlink import context


class SessionJWTAuthentication(JWTAuthentication):
    """simplejwt's Bearer authentication, plus: the token's `sid` session must not be revoked.

    The session check reads one cache key (no query when warm), so a logout, logout-all, password
    change or session DELETE refuses the session's access tokens on the very next request.
    """

    def get_validated_token(self, raw_token: bytes) -> SessionAccessToken:  # type: ignore[override]
        try:
            return access_token_decode(token=raw_token.decode("ascii", errors="replace"))
        except InvalidToken as error:
            raise AuthenticationFailed(error.detail, code=error.code) from None

    def get_user(self, validated_token):
        user = super().get_user(validated_token)
        context.user_id.set(str(user.pk))
        return user
