"""simplejwt token classes bound to a `Session` through the `sid` claim."""

from __future__ import annotations

import uuid

from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken, Token

SESSION_CLAIM = "sid"


class _SessionBound:
    payload: dict

    def verify_session_claim(self) -> None:
        """Both ids must be UUIDs, and from here on they are in their one canonical spelling: the session
        cache, the rate limits and the socket registry key on them, and `{ABC...}` or an upper-case
        spelling of the same id must not count as another session."""
        try:
            for claim in (SESSION_CLAIM, api_settings.USER_ID_CLAIM):
                self.payload[claim] = str(uuid.UUID(self.payload[claim]))
        except (KeyError, TypeError, ValueError, AttributeError):
            raise TokenError("Token has no session") from None


class SessionAccessToken(_SessionBound, AccessToken):
    """An access token; valid only while its session is (checked by SessionJWTAuthentication)."""

    def verify(self) -> None:
        super().verify()
        self.verify_session_claim()


class SessionRefreshToken(_SessionBound, RefreshToken):  # type: ignore[misc]  # simplejwt's for_user types differ
    """A refresh token. Whether it is the session's current one is decided by `session_refresh`,
    not by simplejwt's blacklist lookup: a rotated token must be recognised as reuse, not as junk."""

    access_token_class = SessionAccessToken

    def verify(self) -> None:
        Token.verify(self)  # signature/iss/aud were checked when decoding; exp, jti and type here
        self.verify_session_claim()
