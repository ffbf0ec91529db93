"""Retention: read notifications older than NOTIFICATION_RETENTION_DAYS, and any beyond a user's newest
NOTIFICATION_INBOX_MAX, are purged in batches."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from notifications import services
from notifications.models import Notification
from tests.notifications.factories import NotificationFactory

pytestmark = pytest.mark.django_db


def test_it_purges_only_read_notifications_past_retention(owner, settings, monkeypatch):
    settings.NOTIFICATION_RETENTION_DAYS = 90
    monkeypatch.setattr(services, "PURGE_BATCH", 2)
    now = timezone.now()
    old_read = [NotificationFactory(user=owner, is_read=True, created_at=now - timedelta(days=91)) for _ in range(5)]
    old_unread = NotificationFactory(user=owner, is_read=False, created_at=now - timedelta(days=400))
    recent_read = NotificationFactory(user=owner, is_read=True, created_at=now - timedelta(days=89))

    from notifications.tasks import notifications_purge

    assert notifications_purge.apply().get() == 5

    remaining = set(Notification.objects.values_list("pk", flat=True))
    assert remaining == {old_unread.pk, recent_read.pk}
    assert not remaining & {n.pk for n in old_read}


def test_it_keeps_only_each_users_newest_notifications_past_the_inbox_cap(owner, other_user, settings, monkeypatch):
    settings.NOTIFICATION_INBOX_MAX = 3
    monkeypatch.setattr(services, "PURGE_BATCH", 2)
    now = timezone.now()
    flood = [
        NotificationFactory(user=owner, is_read=n % 2 == 0, created_at=now - timedelta(minutes=n)) for n in range(8)
    ]
    others = [NotificationFactory(user=other_user, created_at=now - timedelta(days=n)) for n in range(3)]

    from notifications.tasks import notifications_purge

    assert notifications_purge.apply().get() == 5

    assert set(Notification.objects.filter(user=owner).values_list("pk", flat=True)) == {n.pk for n in flood[:3]}
    assert Notification.objects.filter(user=other_user).count() == len(others)


def test_the_purge_is_scheduled():
    from coinlink.beat_schedule import beat_schedule

    assert beat_schedule()["notifications-purge"]["task"] == "notifications.tasks.notifications_purge"
