"""Reads of the notifications app, always scoped to the requesting user."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from functools import partial
from typing import Any, NamedTuple

from django.db.models import QuerySet

from coinlink.db.prepared import PreparedInstance, PreparedList, PreparedRows, PreparedScalar
from coinlink.errors import NotFound
from notifications.models import PREFERENCE_SWITCHES, Alert, Notification, NotificationSettings


class AlertRow(NamedTuple):
    """The columns of an alert the contract shows, read without a model instance."""

    id: uuid.UUID
    symbol: str
    condition: str
    target_value: Decimal
    quote: str
    is_active: bool
    repeat: bool
    cooldown_seconds: int
    created_at: datetime
    last_triggered_at: datetime | None
    trigger_count: int


# The alerts page of the SPA: its rows and COUNT are prepared statements (coinlink.db.prepared).
_ALERT_ROWS = PreparedRows(
    lambda user_id: Alert.objects.filter(user_id=user_id).order_by("-created_at", "-id").values_list(*AlertRow._fields)
)
_ALERT_COUNT = PreparedScalar(lambda user_id: Alert.objects.filter(user_id=user_id), QuerySet.count)


def alert_list(*, user) -> PreparedList:
    """The user's alerts, newest first, as AlertRows for a paginator."""
    return PreparedList(
        rows=partial(_ALERT_ROWS, user_id=user.pk), count=partial(_ALERT_COUNT, user_id=user.pk), make=AlertRow._make
    )


# Counted on every alert create, with the user's row locked (notifications.services): compiled once.
_ACTIVE_ALERTS = PreparedScalar(lambda user_id: Alert.objects.filter(user_id=user_id, is_active=True), QuerySet.count)


def alert_active_count(*, user_id: uuid.UUID, excluding: uuid.UUID | None = None) -> int:
    """How many of the user's alerts are active, not counting `excluding`."""
    if excluding is None:
        return _ACTIVE_ALERTS(user_id=user_id)
    return Alert.objects.filter(user_id=user_id, is_active=True).exclude(pk=excluding).count()


# Taken on every alert deletion (notifications.services.alert_deleting): compiled once.
_ALERT_ROW_LOCK = PreparedScalar(
    lambda alert_id: Alert.objects.select_for_update().filter(pk=alert_id).values_list("pk", flat=True),
    QuerySet.first,
)


def alert_row_lock(*, alert_id: uuid.UUID) -> None:
    """Lock the alert's row (if it is still there) until the transaction ends."""
    _ALERT_ROW_LOCK(alert_id=alert_id)


# Read before every change or deletion of an alert: compiled once.
_ALERT_OF_USER = PreparedInstance(Alert, lambda user_id, alert_id: Alert.objects.filter(user_id=user_id, pk=alert_id))


def alert_get(*, user, alert_id: uuid.UUID) -> Alert:
    """The user's alert; someone else's is indistinguishable from a missing one."""
    alert = _ALERT_OF_USER(user_id=user.pk, alert_id=alert_id)
    if alert is None:
        raise NotFound("Alert not found.")
    return alert


class NotificationRow(NamedTuple):
    """The columns of a notification the contract shows, read without a model instance."""

    id: uuid.UUID
    type: str
    title: str
    message: str
    priority: str
    is_read: bool
    created_at: datetime
    data: Any


_NEWEST_FIRST = ("-created_at", "-id")
# The SPA's list (no filter), on most signed-in page views: its pages and its COUNT are prepared
# statements (coinlink.db.prepared), its rows plain tuples.
_LIST_ROWS = PreparedRows(
    lambda user_id: (
        Notification.objects.filter(user_id=user_id).order_by(*_NEWEST_FIRST).values_list(*NotificationRow._fields)
    )
)
_LIST_COUNT = PreparedScalar(lambda user_id: Notification.objects.filter(user_id=user_id), QuerySet.count)


def notification_list(
    *, user, unread: bool | None = None, type: str | None = None
) -> QuerySet[Notification] | PreparedList:
    """The user's notifications, newest first, for a paginator: Notifications, or NotificationRows when unfiltered."""
    if unread is None and not type:
        return PreparedList(
            rows=partial(_LIST_ROWS, user_id=user.pk),
            count=partial(_LIST_COUNT, user_id=user.pk),
            make=NotificationRow._make,
        )
    notes = Notification.objects.filter(user=user)
    if unread is not None:
        notes = notes.filter(is_read=not unread)
    if type:
        notes = notes.filter(type=type)
    return notes.order_by(*_NEWEST_FIRST)


# Read before marking a notification read or deleting it: compiled once.
_NOTIFICATION_OF_USER = PreparedInstance(
    Notification, lambda user_id, notification_id: Notification.objects.filter(user_id=user_id, pk=notification_id)
)


def notification_get(*, user, notification_id: uuid.UUID) -> Notification:
    note = _NOTIFICATION_OF_USER(user_id=user.pk, notification_id=notification_id)
    if note is None:
        raise NotFound("Notification not found.")
    return note


# On most signed-in calls of the SPA: compiled once (coinlink.db.prepared).
_UNREAD_COUNT = PreparedScalar(
    lambda user_id: Notification.objects.filter(user_id=user_id, is_read=False), QuerySet.count
)


def notification_unread_count(*, user) -> int:
    return _UNREAD_COUNT(user_id=user.pk)


# Read on every GET of /api/v2/user/preferences and of the settings: compiled once.
_SETTINGS = PreparedInstance(NotificationSettings, lambda user_id: NotificationSettings.objects.filter(user_id=user_id))


def notification_settings_get(*, user) -> NotificationSettings:
    """The stored settings, or the defaults (unsaved) for a user who never changed them."""
    return _SETTINGS(user_id=user.pk) or NotificationSettings(user=user)


EMAIL_UNVERIFIED = "email_unverified"


def email_paused_reason(*, user_id) -> str | None:
    """Why notification mail is held back although switched on (`email_unverified`), or None."""
    from accounts.selectors import user_is_verified

    return None if user_is_verified(user_id=user_id) else EMAIL_UNVERIFIED


def preference_switches(*, user) -> dict[str, bool]:
    """The settings `/user/preferences` shows, under its names."""
    stored = notification_settings_get(user=user)
    return {name: getattr(stored, field) for name, field in PREFERENCE_SWITCHES.items()}
