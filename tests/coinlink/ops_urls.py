"""Test-only views for the ops tests (careless code on purpose), mounted before the project's URLs."""

from __future__ import annotations

import logging

from django.db import OperationalError
from django.http import JsonResponse
from django.urls import include, path
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from coinlink.urls import handler400, handler403, handler404, handler500  # noqa: F401 - JSON error views

logger = logging.getLogger("tests.ops.views")


class WhoAmI(APIView):
    """Authenticated with the project's default (JWT) authentication."""

    def get(self, request):
        logger.info("whoami called")
        return Response({"id": str(request.user.pk)})


class CarelessLogin(APIView):
    """Logs what it must not: the body, the headers, the cookies."""

    authentication_classes = []
    permission_classes = [AllowAny]

    def post(self, request):
        logger.info("login attempt %s", request.data)
        logger.info("login attempt (dict args) %(email)s %(password)s", dict(request.data))
        logger.warning("request headers %s", dict(request.headers))
        logger.info("cookies %s", request.COOKIES)
        logger.info("payload", extra={"payload": dict(request.data), "headers": dict(request.headers)})
        return Response({"ok": True})


class Boom(APIView):
    authentication_classes = []
    permission_classes = [AllowAny]

    def post(self, request):
        body = dict(request.data)
        raise RuntimeError(f"boom while handling {body}")


def database_down(request):
    """A plain Django view (not DRF) whose database is gone."""
    raise OperationalError("could not connect to server: Connection refused")


def plain_json(request):
    return JsonResponse({"ok": True})


urlpatterns = [
    path("api/ops-test/whoami", WhoAmI.as_view()),
    path("api/ops-test/login", CarelessLogin.as_view()),
    path("api/ops-test/boom", Boom.as_view()),
    path("ops-test/db-down", database_down),
    path("api/ops-test/plain", plain_json),
    path("", include("coinlink.urls")),
]
