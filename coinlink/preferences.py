"""`/api/v2/user/preferences`: one resource of the contract, kept by two apps.

The display preferences belong to `accounts`, the four notification switches are notification
settings (`notifications.models.PREFERENCE_SWITCHES`). The view sits here, in the project package,
so that accounts need not know of notifications: it validates the whole body at once and hands each
app its part, in one transaction.
"""

from __future__ import annotations

from django.db import transaction
from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import selectors as account_selectors
from accounts import services as account_services
from accounts.api import serializers as accounts_api
from coinlink.contract import error_responses
from notifications import selectors as notification_selectors
from notifications import services as notification_services
from notifications.api.serializers import PreferenceSwitchesSerializer
from notifications.models import PREFERENCE_SWITCHES

# In the contract's order (API.md).
FIELDS = ("theme", "language", "currency", "timezone", "watchlist", *PREFERENCE_SWITCHES, "sound_enabled")

_ERRORS = error_responses(
    {400: "Invalid input; `errors` lists the fields.", 401: "Missing, invalid, expired or revoked token."}, 400, 401
)
_BAD_INPUT, _SIGNED_OUT = _ERRORS[400], _ERRORS[401]


class PreferencesSerializer(accounts_api.PreferencesSerializer, PreferenceSwitchesSerializer):
    class Meta(accounts_api.PreferencesSerializer.Meta):
        fields = FIELDS


def preferences_shown(*, user) -> dict:
    """The user's preferences as the contract shows them; stores nothing."""
    preferences = account_selectors.preferences_get(user=user)
    shown = {name: getattr(preferences, name) for name in account_services.PREFERENCE_FIELDS}
    return shown | notification_selectors.preference_switches(user=user)


def preferences_update(*, user, **values) -> dict:
    """Store validated values of either app (a PUT sends them all, a PATCH some), all or none."""
    switches = {name: values.pop(name) for name in PREFERENCE_SWITCHES if name in values}
    with transaction.atomic():
        account_services.preferences_update(user=user, **values)
        notification_services.preference_switches_update(user=user, **switches)
    return preferences_shown(user=user)


class PreferencesView(APIView):
    @extend_schema(tags=["user"], summary="Your preferences", responses={200: PreferencesSerializer, 401: _SIGNED_OUT})
    def get(self, request):
        return Response(PreferencesSerializer(preferences_shown(user=request.user)).data)

    @extend_schema(
        tags=["user"],
        summary="Replace your preferences (every field required)",
        request=PreferencesSerializer,
        responses={200: PreferencesSerializer, 400: _BAD_INPUT, 401: _SIGNED_OUT},
    )
    def put(self, request):
        return self._update(request, partial=False)

    @extend_schema(
        tags=["user"],
        summary="Change some of your preferences",
        request=PreferencesSerializer,
        responses={200: PreferencesSerializer, 400: _BAD_INPUT, 401: _SIGNED_OUT},
    )
    def patch(self, request):
        return self._update(request, partial=True)

    def _update(self, request, *, partial: bool):
        serializer = PreferencesSerializer(data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        preferences = preferences_update(user=request.user, **serializer.validated_data)
        return Response(PreferencesSerializer(preferences).data)
