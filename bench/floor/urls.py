"""The floor view: an HS256 JWT checked with PyJWT, one Redis GET (the session), one indexed query."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import jwt
import redis
from django.conf import settings
from django.db import connection
from django.urls import path
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.response import Response
from rest_framework.views import APIView

TABLE = "bench_floor_account"
SESSION_KEY = "bench-floor:session:{}"


@dataclass(frozen=True)
class TokenUser:
    id: str
    session_id: str
    is_authenticated: bool = True


@cache
def _redis() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL)


class JWTAuthentication(BaseAuthentication):
    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header.startswith("Bearer "):
            return None
        try:
            claims = jwt.decode(
                header[7:],
                settings.JWT_KEY,
                algorithms=["HS256"],
                audience=settings.JWT_AUDIENCE,
                issuer=settings.JWT_ISSUER,
                leeway=60,
                options={"require": ["exp", "sub", "sid"]},
            )
        except jwt.InvalidTokenError:
            raise exceptions.AuthenticationFailed("invalid token") from None
        if _redis().get(SESSION_KEY.format(claims["sid"])) != b"1":
            raise exceptions.AuthenticationFailed("session ended")
        return TokenUser(id=claims["sub"], session_id=claims["sid"]), claims

    def authenticate_header(self, request):
        return "Bearer"


class AccountView(APIView):
    authentication_classes = [JWTAuthentication]

    def get(self, request):
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT id, name, unread FROM {TABLE} WHERE id = %s", [request.user.id])
            row = cursor.fetchone()
        return Response({"id": str(row[0]), "name": row[1], "unread": row[2]})


urlpatterns = [path("floor/account", AccountView.as_view())]
