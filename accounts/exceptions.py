"""Domain errors of `accounts`; coinlink.errors renders them in the contract's shape."""

from __future__ import annotations

from coinlink.errors import DomainError


class InvalidToken(DomainError):
    """A token that is malformed, forged, expired, of the wrong type, or whose session has ended."""

    status_code = 401
    code = "invalid_token"
    detail = "Token is invalid or expired."


class TokenReused(InvalidToken):
    """A refresh token presented after it was rotated: every session of the user has been revoked."""

    code = "token_reused"
    detail = "This refresh token was already used. All sessions have been signed out for safety."


class InvalidCredentials(DomainError):
    """Unknown email or wrong password; deliberately the same error for both."""

    status_code = 401
    code = "invalid_credentials"
    detail = "Invalid email or password."


class ValidationFailed(DomainError):
    """Field errors found by a service (taken email, weak password, wrong old password)."""

    status_code = 400
    code = "validation_error"

    def __init__(self, errors: dict[str, list[str]]):
        field, messages = next(iter(errors.items()))
        super().__init__(f"{field}: {messages[0]}", errors=errors)


class InvalidOneTimeToken(DomainError):
    """A mailed token (reset, verification, email change) unknown, used, voided or expired: one answer for all."""

    status_code = 400
    code = "invalid_token"
    detail = "This link is invalid or has expired. Ask for a new one."
