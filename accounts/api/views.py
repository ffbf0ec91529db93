"""Thin views for /api/v2/auth/ and /api/v2/user/: limit, validate, call a service, shape the answer.

`request.user` carries only the id (accounts.authentication); views that show or check the user's
other fields load the row with `request_user_row`.
"""

from __future__ import annotations

import functools
from typing import cast

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.generics import ListAPIView
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import recovery, selectors, services
from accounts.api import serializers as s
from accounts.authentication import request_user_row
from accounts.emails import email_limit_key
from accounts.exceptions import InvalidToken
from accounts.models import User
from accounts.tokens import SESSION_CLAIM
from coinlink import metrics
from coinlink.contract import error_responses
from coinlink.errors import RateLimited
from coinlink.ratelimit import limit

# Auth limits fail closed: when the cache cannot count, the endpoint answers 503 rather than unlimited.
SIGNUP_RATE_PER_IP = "5/m"
LOGIN_RATE_PER_IP = "10/m"
LOGIN_RATE_PER_EMAIL = "10/m"
REFRESH_RATE_PER_SESSION = "20/m"
PASSWORD_RATE_PER_USER = "10/m"  # noqa: S105 - a rate, not a password
# Mail-sending requests: few per address, so nobody can have us flood a stranger's inbox.
RESET_RATE_PER_IP = "5/m"
RESET_RATE_PER_EMAIL = "3/h"
MAILED_TOKEN_RATE_PER_IP = "10/m"  # noqa: S105 - a rate, not a token
VERIFY_RESEND_RATE_PER_USER = "3/h"
EMAIL_CHANGE_RATE_PER_USER = "5/h"

RESET_ACCEPTED = "If an account uses this address, a link to reset its password is on its way."
VERIFY_ACCEPTED = "If your address is not verified yet, a new verification link is on its way."
EMAIL_CHANGE_ACCEPTED = "Check the new address: the change happens when you follow the link mailed there."

_ERRORS = {
    400: "Invalid input; `errors` lists the fields.",
    401: "Missing, invalid, expired or revoked token.",
    404: "Not found, or not yours.",
    413: "Request body over 1 MiB.",
    429: "Too many requests; see Retry-After.",
    503: "Rate-limit store unavailable; auth fails closed.",
}
_errors = functools.partial(error_responses, _ERRORS)


def _limit(request, *, action: str, group: str, key, rate: str) -> None:
    try:
        limit(request, group=group, key=key, rate=rate, fail_open=False)
    except RateLimited:
        metrics.AUTH_ATTEMPTS.labels(action=action, outcome="rate_limited").inc()
        raise


def _valid(serializer_class, request, **kwargs):
    serializer = serializer_class(data=request.data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _email_key(email: str):
    return lambda group, request: email_limit_key(email)


def _auth_result(user, tokens) -> dict:
    return {"user": s.UserSerializer(user).data, "tokens": tokens.as_contract()}


def _tokens_response(body: dict, status_code: int = status.HTTP_200_OK) -> Response:
    """Responses carrying tokens must never be stored by a cache (RFC 6749, section 5.1)."""
    return Response(body, status=status_code, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


def _user_key(group, request) -> str:
    return str(request.user.pk)


def _accepted(detail: str) -> Response:
    return Response({"detail": detail}, status=status.HTTP_202_ACCEPTED)


def _session_id(request) -> str:
    """The session of the access token that authenticated the request (every caller requires one)."""
    return request.auth[SESSION_CLAIM]


# --- /api/v2/auth/ -----------------------------------------------------------------------------


class SignupView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        tags=["auth"],
        summary="Create an account and sign in",
        request=s.SignupSerializer,
        responses={201: s.AuthResultSerializer, **_errors(400, 413, 429, 503)},
    )
    def post(self, request):
        _limit(request, action="signup", group="auth-signup-ip", key="ip", rate=SIGNUP_RATE_PER_IP)
        data = _valid(s.SignupSerializer, request)
        user, tokens = services.user_signup(**data, client=services.ClientInfo.from_request(request))
        return _tokens_response(_auth_result(user, tokens), status.HTTP_201_CREATED)


class LoginView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        tags=["auth"],
        summary="Sign in with email and password",
        description="An unknown email and a wrong password give the same 401 `invalid_credentials`.",
        request=s.LoginSerializer,
        responses={200: s.AuthResultSerializer, **_errors(400, 401, 413, 429, 503)},
    )
    def post(self, request):
        _limit(request, action="login", group="auth-login-ip", key="ip", rate=LOGIN_RATE_PER_IP)
        data = _valid(s.LoginSerializer, request)
        key = _email_key(data["email"])
        _limit(request, action="login", group="auth-login-email", key=key, rate=LOGIN_RATE_PER_EMAIL)
        user, tokens = services.user_login(**data, client=services.ClientInfo.from_request(request))
        return _tokens_response(_auth_result(user, tokens))


class RefreshView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        tags=["auth"],
        summary="Exchange the refresh token for a new pair (rotation)",
        description=(
            "The presented refresh token is dead from then on. Presenting it again is reuse: 401 "
            "`token_reused` and every session of the user is revoked. Refresh one request at a time."
        ),
        request=s.RefreshSerializer,
        responses={200: s.RefreshResultSerializer, **_errors(400, 401, 429, 503)},
    )
    def post(self, request):
        data = _valid(s.RefreshSerializer, request)
        try:
            token = selectors.refresh_token_decode(token=data["refresh_token"])
        except InvalidToken:
            metrics.AUTH_ATTEMPTS.labels(action="refresh", outcome="invalid").inc()
            raise
        _limit(
            request,
            action="refresh",
            group="auth-refresh-session",
            key=lambda group, request: token[SESSION_CLAIM],
            rate=REFRESH_RATE_PER_SESSION,
        )
        tokens = services.session_refresh(refresh_token=token)  # decoded once, above
        return _tokens_response({"tokens": tokens.as_contract()})


class LogoutView(APIView):
    @extend_schema(
        tags=["auth"],
        summary="End this session",
        description="The session's refresh token and the presented access token stop working at once.",
        request=s.LogoutSerializer,
        responses={204: None, **_errors(400, 401)},
    )
    def post(self, request):
        data = _valid(s.LogoutSerializer, request)
        services.user_logout(user=request.user, session_id=_session_id(request), refresh_token=data["refresh_token"])
        return Response(status=status.HTTP_204_NO_CONTENT)


class LogoutAllView(APIView):
    @extend_schema(
        tags=["auth"], summary="End every session of this user", request=None, responses={204: None, **_errors(401)}
    )
    def post(self, request):
        services.user_logout_all(user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class VerifyView(APIView):
    @extend_schema(
        tags=["auth"], summary="Check the access token", responses={200: s.VerifyResultSerializer, **_errors(401)}
    )
    def get(self, request):
        return Response({"user": s.UserSerializer(request_user_row(request)).data, "message": "Token is valid."})


class PasswordChangeView(APIView):
    @extend_schema(
        tags=["auth"],
        summary="Change the password; every other session ends",
        request=s.PasswordChangeSerializer,
        responses={204: None, **_errors(400, 401, 429, 503)},
    )
    def post(self, request):
        _limit(
            request,
            action="password_change",
            group="auth-password-user",
            key=lambda group, request: str(request.user.pk),
            rate=PASSWORD_RATE_PER_USER,
        )
        data = _valid(s.PasswordChangeSerializer, request)
        user = request_user_row(request)
        services.user_password_change(user=user, session_id=_session_id(request), **data)
        return Response(status=status.HTTP_204_NO_CONTENT)


class PasswordResetView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        tags=["auth"],
        summary="Mail a password reset link",
        description=(
            "Always 202 with the same body, whether or not the address has an account; the link "
            "`{FRONTEND_URL}/reset-password?token=...` is mailed only if it has. 3 requests an hour per address."
        ),
        request=s.PasswordResetSerializer,
        responses={202: s.AcceptedSerializer, **_errors(400, 413, 429, 503)},
    )
    def post(self, request):
        _limit(request, action="password_reset", group="auth-reset-ip", key="ip", rate=RESET_RATE_PER_IP)
        data = _valid(s.PasswordResetSerializer, request)
        key = _email_key(data["email"])
        _limit(request, action="password_reset", group="auth-reset-email", key=key, rate=RESET_RATE_PER_EMAIL)
        recovery.password_reset_request(email=data["email"])
        return _accepted(RESET_ACCEPTED)


class PasswordResetConfirmView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        tags=["auth"],
        summary="Set a new password with a mailed reset token",
        description=(
            "Every session of the user ends and their sockets close (4001). An unknown, used, voided or "
            "expired token: 400 `invalid_token`. A password the validators refuse: 400 `validation_error`, "
            "and the token still works."
        ),
        request=s.PasswordResetConfirmSerializer,
        responses={204: None, **_errors(400, 413, 429, 503)},
    )
    def post(self, request):
        _limit(request, action="password_reset", group="auth-token-ip", key="ip", rate=MAILED_TOKEN_RATE_PER_IP)
        data = _valid(s.PasswordResetConfirmSerializer, request)
        recovery.password_reset_confirm(**data)
        return Response(status=status.HTTP_204_NO_CONTENT)


class EmailVerifyView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        tags=["auth"],
        summary="Prove the address with a mailed verification token",
        description="No sign-in needed: the token is the proof. Bad, used or expired token: 400 `invalid_token`.",
        request=s.MailedTokenSerializer,
        responses={200: s.UserResultSerializer, **_errors(400, 413, 429, 503)},
    )
    def post(self, request):
        _limit(request, action="email_verify", group="auth-token-ip", key="ip", rate=MAILED_TOKEN_RATE_PER_IP)
        data = _valid(s.MailedTokenSerializer, request)
        user = recovery.email_verify_confirm(**data)
        return Response({"user": s.UserSerializer(user).data})


class EmailVerifyResendView(APIView):
    @extend_schema(
        tags=["auth"],
        summary="Mail a new verification link (older links die)",
        description="202 also when the address is already verified (then nothing is sent). 3 an hour.",
        request=None,
        responses={202: s.AcceptedSerializer, **_errors(401, 429, 503)},
    )
    def post(self, request):
        _limit(
            request, action="email_verify", group="auth-verify-user", key=_user_key, rate=VERIFY_RESEND_RATE_PER_USER
        )
        services.email_verify_request(user=request.user)
        return _accepted(VERIFY_ACCEPTED)


# --- /api/v2/user/ -----------------------------------------------------------------------------


class ProfileView(APIView):
    @extend_schema(tags=["user"], summary="Your profile", responses={200: s.ProfileSerializer, **_errors(401)})
    def get(self, request):
        return Response(s.ProfileSerializer(request_user_row(request)).data)

    @extend_schema(
        tags=["user"],
        summary="Change your names (the email is read-only)",
        request=s.ProfileSerializer,
        responses={200: s.ProfileSerializer, **_errors(400, 401)},
    )
    def patch(self, request):
        user = request_user_row(request)
        data = _valid(s.ProfileSerializer, request, instance=user, partial=True)
        user = services.user_profile_update(user=user, **data)
        return Response(s.ProfileSerializer(user).data)


class EmailChangeView(APIView):
    @extend_schema(
        tags=["user"],
        summary="Ask to change your email address",
        description=(
            "202: a confirm link goes to the new address and a notice to the current one. An address that "
            "belongs to another account gets the same 202 and no link. Wrong password: 400. 5 an hour."
        ),
        request=s.EmailChangeSerializer,
        responses={202: s.AcceptedSerializer, **_errors(400, 401, 413, 429, 503)},
    )
    def post(self, request):
        _limit(request, action="email_change", group="user-email-user", key=_user_key, rate=EMAIL_CHANGE_RATE_PER_USER)
        data = _valid(s.EmailChangeSerializer, request)
        recovery.email_change_request(user=request_user_row(request), **data)
        return _accepted(EMAIL_CHANGE_ACCEPTED)


class EmailChangeConfirmView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        tags=["user"],
        summary="Confirm the new address with the token mailed to it",
        description=(
            "No sign-in needed (the link may be opened on another device): the token is the proof. The new "
            "address becomes the login, verified. Bad, used or expired token: 400 `invalid_token`; an address "
            "another account took meanwhile: 400 `validation_error`."
        ),
        request=s.MailedTokenSerializer,
        responses={200: s.UserResultSerializer, **_errors(400, 413, 429, 503)},
    )
    def post(self, request):
        _limit(request, action="email_change", group="auth-token-ip", key="ip", rate=MAILED_TOKEN_RATE_PER_IP)
        data = _valid(s.MailedTokenSerializer, request)
        user = recovery.email_change_confirm(**data)
        return Response({"user": s.UserSerializer(user).data})


class StatsView(APIView):
    @extend_schema(
        tags=["user"], summary="Your account statistics", responses={200: s.UserStatsSerializer, **_errors(401)}
    )
    def get(self, request):
        return Response(s.UserStatsSerializer(selectors.user_stats(user=request_user_row(request))).data)


class SessionListView(ListAPIView):
    serializer_class = s.SessionSerializer

    def get_queryset(self):
        return selectors.session_list(user=cast(User, self.request.user))  # IsAuthenticated: never anonymous

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "current_session_id": _session_id(self.request)}

    @extend_schema(
        tags=["user"],
        summary="Your live sessions (`current` marks this one)",
        responses={200: s.SessionSerializer(many=True), **_errors(401)},
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class SessionDetailView(APIView):
    @extend_schema(
        tags=["user"],
        summary="Revoke one of your sessions",
        description="Its tokens stop working on the next request and its WebSockets close.",
        responses={204: None, **_errors(401, 404)},
    )
    def delete(self, request, session_id):
        services.user_session_revoke(user=request.user, session_id=session_id)
        return Response(status=status.HTTP_204_NO_CONTENT)
