"""Retention: read notifications older than NOTIFICATION_RETENTION_DAYS are purged in batches."""

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


def test_the_purge_is_scheduled():
    from coinlink.schedule import beat_schedule

    assert beat_schedule()["notifications-purge"]["task"] == "notifications.tasks.notifications_purge"
