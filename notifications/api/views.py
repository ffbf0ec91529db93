"""Thin views for /api/v2/alerts/ and /api/v2/notifications/: parse, call a selector or service, render."""

from __future__ import annotations

import functools

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from coinlink.contract import error_responses
from coinlink.db.prepared import PreparedList
from notifications import selectors, services
from notifications.api.serializers import (
    AlertSerializer,
    CountSerializer,
    NotificationListQuerySerializer,
    NotificationSerializer,
    NotificationSettingsSerializer,
    UpdatedCountSerializer,
    alert_payload,
)
from notifications.delivery import notification_payload

ERRORS = {
    400: "Invalid input.",
    401: "Missing or invalid access token.",
    404: "Not found, or not yours.",
    429: "Too many requests (see Retry-After).",
}
_errors = functools.partial(error_responses, ERRORS)


def _page(view: GenericAPIView, rows: QuerySet | PreparedList) -> list:
    """The requested page of `rows` (DRF's pagination: Django's Paginator takes any sliceable with count())."""
    return view.paginate_queryset(rows) or []  # type: ignore[arg-type]


class AlertListView(GenericAPIView):
    """Your price alerts. At most 100 may be active; another user's alerts are invisible."""

    serializer_class = AlertSerializer

    @extend_schema(
        tags=["alerts"], summary="List your alerts", responses={200: AlertSerializer(many=True), **_errors(401)}
    )
    def get(self, request):
        page = _page(self, selectors.alert_list(user=request.user))
        # AlertSerializer's output, without a serializer per request (tests hold the bytes equal).
        return self.get_paginated_response([alert_payload(alert) for alert in page])

    @extend_schema(
        tags=["alerts"],
        summary="Create an alert (at most 100 active)",
        request=AlertSerializer,
        responses={201: AlertSerializer, **_errors(400, 401, 429)},
    )
    def post(self, request):
        serializer = AlertSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        # The validated serializer renders the result too: a second one re-introspects the model (~0.3 ms).
        serializer.instance = services.alert_create(user=request.user, **serializer.validated_data)
        return Response(serializer.data, status=status.HTTP_201_CREATED)


class AlertDetailView(GenericAPIView):
    """One of your alerts; another user's alert is a 404 on every verb."""

    serializer_class = AlertSerializer

    @extend_schema(tags=["alerts"], summary="One of your alerts", responses={200: AlertSerializer, **_errors(401, 404)})
    def get(self, request, alert_id):
        return Response(AlertSerializer(selectors.alert_get(user=request.user, alert_id=alert_id)).data)

    @extend_schema(
        tags=["alerts"],
        summary="Replace an alert",
        request=AlertSerializer,
        responses={200: AlertSerializer, **_errors(400, 401, 404, 429)},
    )
    def put(self, request, alert_id):
        return self._update(request, alert_id, partial=False)

    @extend_schema(
        tags=["alerts"],
        summary="Change some fields of an alert",
        request=AlertSerializer,
        responses={200: AlertSerializer, **_errors(400, 401, 404, 429)},
    )
    def patch(self, request, alert_id):
        return self._update(request, alert_id, partial=True)

    @extend_schema(tags=["alerts"], summary="Delete an alert", responses={204: None, **_errors(401, 404, 429)})
    def delete(self, request, alert_id):
        services.alert_delete(alert=selectors.alert_get(user=request.user, alert_id=alert_id))
        return Response(status=status.HTTP_204_NO_CONTENT)

    def _update(self, request, alert_id, *, partial: bool):
        alert = selectors.alert_get(user=request.user, alert_id=alert_id)
        serializer = AlertSerializer(alert, data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        serializer.instance = services.alert_update(alert=alert, **serializer.validated_data)
        return Response(serializer.data)


class NotificationListView(GenericAPIView):
    """Your notifications, newest first."""

    serializer_class = NotificationSerializer

    @extend_schema(
        tags=["notifications"],
        summary="Your notifications, newest first",
        parameters=[
            OpenApiParameter("unread", bool, description="true: only unread; false: only read"),
            OpenApiParameter("type", str, enum=["price_alert", "news_update", "system_alert", "security_alert"]),
        ],
        responses={200: NotificationSerializer(many=True), **_errors(400, 401)},
    )
    def get(self, request):
        notes = selectors.notification_list(user=request.user, **_list_filters(request.query_params))
        page = _page(self, notes)
        # NotificationSerializer's output, without a serializer per request (tests hold the bytes equal).
        return self.get_paginated_response([notification_payload(note) for note in page])


def _list_filters(params) -> dict:
    """The list's filters from the query string; with neither filter there is nothing to validate
    (the SPA's list, on most page views), which saves building the serializer."""
    if "unread" not in params and "type" not in params:
        return {}
    query = NotificationListQuerySerializer(data=params)
    query.is_valid(raise_exception=True)
    return query.validated_data


class NotificationReadView(GenericAPIView):
    """Mark one of your notifications read (idempotent)."""

    serializer_class = NotificationSerializer

    @extend_schema(
        tags=["notifications"],
        summary="Mark a notification read",
        request=None,
        responses={200: NotificationSerializer, **_errors(401, 404, 429)},
    )
    def post(self, request, notification_id):
        note = selectors.notification_get(user=request.user, notification_id=notification_id)
        return Response(NotificationSerializer(services.notification_mark_read(notification=note)).data)


class NotificationReadAllView(GenericAPIView):
    """Mark every unread notification of yours read; says how many changed."""

    serializer_class = UpdatedCountSerializer

    @extend_schema(
        tags=["notifications"],
        summary="Mark all your notifications read",
        request=None,
        responses={200: UpdatedCountSerializer, **_errors(401, 429)},
    )
    def post(self, request):
        return Response({"updated": services.notification_mark_all_read(user=request.user)})


class NotificationDetailView(GenericAPIView):
    """Delete one of your notifications."""

    serializer_class = NotificationSerializer

    @extend_schema(tags=["notifications"], summary="Delete a notification", responses={204: None, **_errors(401, 404)})
    def delete(self, request, notification_id):
        note = selectors.notification_get(user=request.user, notification_id=notification_id)
        services.notification_delete(notification=note)
        return Response(status=status.HTTP_204_NO_CONTENT)


class NotificationUnreadCountView(GenericAPIView):
    """How many of your notifications are unread."""

    serializer_class = CountSerializer

    @extend_schema(tags=["notifications"], summary="How many unread", responses={200: CountSerializer, **_errors(401)})
    def get(self, request):
        return Response({"count": selectors.notification_unread_count(user=request.user)})


class NotificationSettingsView(GenericAPIView):
    """Your notification switches and quiet hours (HH:MM, in your preferences' timezone, may wrap midnight)."""

    serializer_class = NotificationSettingsSerializer

    @extend_schema(
        tags=["notifications"],
        summary="Your notification settings",
        responses={200: NotificationSettingsSerializer, **_errors(401)},
    )
    def get(self, request):
        return Response(NotificationSettingsSerializer(selectors.notification_settings_get(user=request.user)).data)

    @extend_schema(
        tags=["notifications"],
        summary="Replace your notification settings",
        request=NotificationSettingsSerializer,
        responses={200: NotificationSettingsSerializer, **_errors(400, 401, 429)},
    )
    def put(self, request):
        return self._update(request, partial=False)

    @extend_schema(
        tags=["notifications"],
        summary="Change some notification settings",
        request=NotificationSettingsSerializer,
        responses={200: NotificationSettingsSerializer, **_errors(400, 401, 429)},
    )
    def patch(self, request):
        return self._update(request, partial=True)

    def _update(self, request, *, partial: bool):
        current = selectors.notification_settings_get(user=request.user)
        serializer = NotificationSettingsSerializer(current, data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        prefs = services.notification_settings_update(user=request.user, **serializer.validated_data)
        return Response(NotificationSettingsSerializer(prefs).data)
