"""Staff announcements: one system_alert per active user, in batches, sent once."""

from __future__ import annotations

import pytest

from notifications import services
from notifications.models import Announcement, Notification, NotificationSettings
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def small_batches(monkeypatch):
    monkeypatch.setattr(services, "ANNOUNCEMENT_BATCH", 3)


@pytest.fixture
def announcement(db):
    return Announcement.objects.create(title="Maintenance tonight", message="The API is down 02:00-02:15 UTC.")


def test_it_sends_one_system_alert_to_every_active_user_in_batches(
    small_batches, announcement, pushes, django_capture_on_commit_callbacks
):
    users = [UserFactory() for _ in range(8)]
    UserFactory(is_active=False)
    muted = UserFactory()
    NotificationSettings.objects.create(user=muted, system_alerts=False)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        created = services.announcement_send(announcement_id=announcement.pk)

    assert created == 8
    assert len(callbacks) == 3  # 9 active users (one muted) in batches of 3: one delivery per batch
    notes = Notification.objects.filter(announcement=announcement)
    assert sorted(n.user_id for n in notes) == sorted(u.pk for u in users)
    assert {(n.type, n.title) for n in notes} == {("system_alert", "Maintenance tonight")}
    assert sorted(p["user_id"] for p in pushes) == sorted(str(u.pk) for u in users)
    announcement.refresh_from_db()
    assert announcement.sent_at is not None and announcement.completed_at is not None
    assert announcement.recipients == 8


def test_it_sends_an_announcement_only_once(announcement, pushes, django_capture_on_commit_callbacks):
    UserFactory.create_batch(2)

    with django_capture_on_commit_callbacks(execute=True):
        first = services.announcement_send(announcement_id=announcement.pk)
        second = services.announcement_send(announcement_id=announcement.pk)

    assert (first, second) == (2, 0)
    assert Notification.objects.count() == 2
    assert len(pushes) == 2


def test_a_retry_resumes_without_duplicating_or_repushing(
    small_batches, announcement, pushes, django_capture_on_commit_callbacks
):
    from django.utils import timezone

    users = sorted(UserFactory.create_batch(5), key=lambda u: u.pk)
    # The first attempt claimed the announcement and delivered to the first two users, then died.
    Announcement.objects.filter(pk=announcement.pk).update(sent_at=timezone.now())
    for user in users[:2]:
        Notification.objects.create(user=user, type="system_alert", title="t", message="m", announcement=announcement)

    with django_capture_on_commit_callbacks(execute=True):
        resumed = services.announcement_send(announcement_id=announcement.pk, resume=True)

    assert resumed == 3
    assert Notification.objects.filter(announcement=announcement).count() == 5
    assert sorted(p["user_id"] for p in pushes) == sorted(str(u.pk) for u in users[2:])


def test_a_completed_announcement_is_not_resent_even_by_a_retry(announcement):
    UserFactory.create_batch(2)
    services.announcement_send(announcement_id=announcement.pk)

    assert services.announcement_send(announcement_id=announcement.pk, resume=True) == 0
    assert Notification.objects.count() == 2


def test_the_database_refuses_a_second_copy_for_the_same_user(owner, announcement):
    from django.db import IntegrityError, transaction

    Notification.objects.create(user=owner, type="system_alert", title="t", message="m", announcement=announcement)
    with pytest.raises(IntegrityError), transaction.atomic():
        Notification.objects.create(user=owner, type="system_alert", title="t", message="m", announcement=announcement)


def test_saving_a_new_announcement_in_the_admin_queues_its_sending(
    owner, password, client, django_capture_on_commit_callbacks
):
    owner.is_staff = owner.is_superuser = True
    owner.save()
    client.force_login(owner)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(
            "/admin/notifications/announcement/add/",
            {"title": "New feature", "message": "Alerts now support EUR.", "priority": "low"},
        )

    assert response.status_code == 302, response.content[:500]
    announcement = Announcement.objects.get()
    assert announcement.created_by == owner
    assert announcement.sent_at is None  # sent by the task, after commit
    assert len(callbacks) == 1


def test_the_admin_finds_alerts_and_notifications_by_email_and_symbol(owner, client):
    from tests.notifications.factories import AlertFactory, NotificationFactory

    owner.is_staff = owner.is_superuser = True
    owner.save()
    client.force_login(owner)
    AlertFactory(user=owner, symbol="ETH")
    NotificationFactory(user=owner, type="price_alert", data={"symbol": "ETH"})

    alerts = client.get("/admin/notifications/alert/?q=ETH")
    by_email = client.get("/admin/notifications/notification/?q=owner@example.com")
    by_symbol = client.get("/admin/notifications/notification/?q=ETH")
    trigger_list = client.get("/admin/notifications/alerttrigger/?q=owner@example.com")

    assert alerts.status_code == by_email.status_code == by_symbol.status_code == trigger_list.status_code == 200
    assert alerts.context["cl"].result_count == 1
    assert by_email.context["cl"].result_count == 1
    assert by_symbol.context["cl"].result_count == 1
    assert client.get("/admin/notifications/alert/?q=nobody@example.com").context["cl"].result_count == 0


def test_the_admin_send_action_queues_only_unsent_announcements(owner, client, django_capture_on_commit_callbacks):
    from django.utils import timezone

    owner.is_staff = owner.is_superuser = True
    owner.save()
    client.force_login(owner)
    unsent = Announcement.objects.create(title="a", message="m")
    sent = Announcement.objects.create(title="b", message="m", sent_at=timezone.now())

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(
            "/admin/notifications/announcement/",
            {"action": "send", "_selected_action": [unsent.pk, sent.pk]},
        )

    assert response.status_code == 302
    assert len(callbacks) == 1
    page = client.get(f"/admin/notifications/announcement/{sent.pk}/change/")
    assert page.status_code == 200
    assert 'name="title"' not in page.content.decode()  # what went out stays as it went out
