"""Creating notifications under each user's settings, and delivering them once the rows are committed.

A switched-off type is not stored. A stored notification is pushed live to every open socket of its
user (unless in-app delivery is off or the user is in quiet hours) and, when the email switch is on
and the user is not in quiet hours, mailed by a retrying Celery task. Delivery happens in
`transaction.on_commit`, so nobody hears about a row that was rolled back.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, time
from functools import partial
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from django.db import transaction
from django.utils import timezone

from coinlink import contract, metrics
from notifications.models import Notification, NotificationSettings, NotificationType

if TYPE_CHECKING:
    from notifications.selectors import NotificationRow

logger = logging.getLogger("coinlink.notifications")

UTC = ZoneInfo("UTC")


@dataclass(frozen=True)
class Draft:
    """A notification to create for one user, before settings are applied."""

    user_id: uuid.UUID
    type: str
    title: str
    message: str
    priority: str = "medium"
    data: dict = field(default_factory=dict)
    announcement_id: int | None = None


@dataclass(frozen=True)
class _Delivery:
    notification: Notification
    push: bool
    email: bool


def notification_payload(notification: Notification | NotificationRow) -> dict:
    """The contract's notification object, identical for the REST API and the WebSocket push.

    Built by hand (DRF's output format: UTC ISO 8601 with a Z) because a busy cycle pushes
    thousands of them and a serializer instance per row costs a millisecond.
    """
    return {
        "id": str(notification.id),
        "type": notification.type,
        "title": notification.title,
        "message": notification.message,
        "priority": notification.priority,
        "is_read": notification.is_read,
        "created_at": contract.timestamp(notification.created_at),
        "data": notification.data,
    }


def email_allowed(*, notification_type: str, address_verified: bool) -> bool:
    """Mail goes only to a proven address, so nobody can sign up with a stranger's address and have us mail
    them alerts; security alerts go anyway, as the account's owner must hear of those whatever the address."""
    return address_verified or notification_type == NotificationType.SECURITY_ALERT


def notification_settings_for(*, user_ids: Iterable) -> dict:
    """Each user's settings; users without a stored row get the defaults (not saved)."""
    ids = set(user_ids)
    found = {s.user_id: s for s in NotificationSettings.objects.filter(user_id__in=ids)}
    return {uid: found.get(uid) or NotificationSettings(user_id=uid) for uid in ids}


def user_timezones(*, user_ids: Iterable) -> dict:
    """Each user's timezone for quiet hours: the accounts preference when it names a valid zone, else UTC."""
    from accounts.selectors import user_timezones as zone_names

    zones = {}
    for user_id, name in zone_names(user_ids=user_ids).items():
        try:
            zones[user_id] = ZoneInfo(name)
        except (ValueError, KeyError, OSError):
            zones[user_id] = UTC
    return zones


def in_quiet_hours(*, start: time | None, end: time | None, local: time) -> bool:
    """Quiet from `start` (inclusive) to `end` (exclusive); a start after the end wraps past midnight."""
    if start is None or end is None or start == end:
        return False
    if start < end:
        return start <= local < end
    return local >= start or local < end


def notifications_create(*, drafts: list[Draft], now: datetime | None = None) -> list[Notification]:
    """Store the drafts whose type each user has switched on; deliver them after the transaction commits.

    Duplicates of an announcement for the same user are skipped by the unique constraint, so a
    retried sender is harmless; only the rows this call really inserted are delivered.
    """
    if not drafts:
        return []
    now = now or timezone.now()
    prefs = notification_settings_for(user_ids=(d.user_id for d in drafts))
    rows = [_row(d, now) for d in drafts if prefs[d.user_id].allows(d.type)]
    announcement = any(d.announcement_id for d in drafts)
    # ON CONFLICT DO NOTHING only where a conflict is possible: it costs half again on a busy cycle's insert.
    Notification.objects.bulk_create(rows, batch_size=1000, ignore_conflicts=announcement)
    if announcement:
        inserted = set(Notification.objects.filter(id__in=[n.id for n in rows]).values_list("id", flat=True))
        rows = [n for n in rows if n.id in inserted]
    # Only users with quiet hours need their timezone (an accounts query, so only for those).
    quiet_users = {n.user_id for n in rows if prefs[n.user_id].quiet_hours_start is not None}
    zones = user_timezones(user_ids=quiet_users) if quiet_users else {}
    deliveries = [_plan(n, prefs[n.user_id], zones.get(n.user_id, UTC), now) for n in rows]
    transaction.on_commit(partial(_deliver, deliveries), robust=True)
    return rows


def _row(draft: Draft, now: datetime) -> Notification:
    return Notification(
        id=uuid.uuid4(),
        user_id=draft.user_id,
        type=draft.type,
        title=draft.title[:200],
        message=draft.message[:5000],
        priority=draft.priority,
        data=draft.data,
        created_at=now,
        announcement_id=draft.announcement_id,
    )


def _plan(notification: Notification, prefs: NotificationSettings, zone: ZoneInfo, now: datetime) -> _Delivery:
    local = now.astimezone(zone).time().replace(tzinfo=None)
    quiet = in_quiet_hours(start=prefs.quiet_hours_start, end=prefs.quiet_hours_end, local=local)
    return _Delivery(notification, push=prefs.in_app_enabled and not quiet, email=prefs.email_enabled and not quiet)


def _deliver(deliveries: list[_Delivery]) -> None:
    for delivery in deliveries:
        metrics.NOTIFICATIONS_SENT.labels(type=delivery.notification.type, channel="in_app").inc()
    _push([d.notification for d in deliveries if d.push])
    for delivery in deliveries:
        if delivery.email:
            _email_enqueue(delivery.notification)


def _push(notes: list[Notification]) -> None:
    """One pipelined publish for the whole batch: a busy cycle's fan-out costs one Redis round trip."""
    from realtime import events

    if not notes:
        return
    try:
        events.notification_push_many(notifications=[(str(note.user_id), notification_payload(note)) for note in notes])
    except Exception:
        # The rows are stored and listed; a failed live push must not fail the cycle.
        logger.exception("live push of %d notification(s) failed", len(notes))
        return
    for note in notes:
        metrics.NOTIFICATIONS_SENT.labels(type=note.type, channel="websocket").inc()


def _email_enqueue(note: Notification) -> None:
    from notifications.tasks import notification_email_send

    try:
        notification_email_send.delay(notification_id=str(note.id))
    except Exception:
        # Broker down: the notification is stored and was pushed; the mail is lost, and logged.
        logger.exception("could not enqueue the mail for notification %s", note.id)
