"""Delivery: after commit, live to the user's sockets, mailed when asked, held back in quiet hours."""

from __future__ import annotations

from datetime import UTC, datetime, time
from decimal import Decimal

import pytest
from django.core import mail

from notifications import evaluation, services
from notifications.delivery import Draft, in_quiet_hours, notification_payload, notifications_create
from notifications.models import Notification, NotificationSettings
from tests.notifications.factories import AlertFactory, NotificationFactory
from tests.notifications.smtp_server import FlakySMTPServer

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _owner_verified(owner):
    """Notification mail goes only to verified addresses (tests/accounts/test_recovery.py); here it is delivery."""
    type(owner).objects.filter(pk=owner.pk).update(is_verified=True)
    owner.refresh_from_db()


def fire_btc_alert(user, *, now=None):
    AlertFactory(user=user, symbol="BTC", condition="above", target_value=Decimal("100"))
    return evaluation.alerts_evaluate(
        quote="usd",
        prices=[{"symbol": "BTC", "price": "101", "change_percent_24h": "1.5"}],
        previous_prices={"BTC": "99"},
        now=now,
    )


def test_a_fired_alert_is_pushed_only_after_commit_with_the_contract_payload(
    owner, other_user, pushes, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        fire_btc_alert(owner)
    assert pushes == []  # nothing leaves before the transaction commits

    for callback in callbacks:
        callback()

    note = Notification.objects.get(user=owner)
    assert pushes == [{"user_id": str(owner.pk), "notification": notification_payload(note)}]
    assert set(pushes[0]["notification"]) == {
        "id",
        "type",
        "title",
        "message",
        "priority",
        "is_read",
        "created_at",
        "data",
    }


def test_the_pushed_payload_is_what_the_api_lists(owner, owner_client, pushes, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        fire_btc_alert(owner)

    listed = owner_client.get("/api/v2/notifications").json()["results"]

    assert listed == [pushes[0]["notification"]]


def test_nothing_is_pushed_when_the_transaction_rolls_back(owner, pushes, django_capture_on_commit_callbacks):
    from django.db import transaction

    with django_capture_on_commit_callbacks(execute=True):
        try:
            with transaction.atomic():
                fire_btc_alert(owner)
                raise RuntimeError("the surrounding work failed")
        except RuntimeError:
            pass

    assert pushes == []
    assert not Notification.objects.exists()


@pytest.mark.parametrize(
    ("start", "end", "local", "quiet"),
    [
        (time(22), time(7), time(23, 30), True),
        (time(22), time(7), time(3), True),
        (time(22), time(7), time(22), True),
        (time(22), time(7), time(7), False),
        (time(22), time(7), time(12), False),
        (time(9), time(17), time(9), True),
        (time(9), time(17), time(16, 59), True),
        (time(9), time(17), time(17), False),
        (time(9), time(17), time(8, 59), False),
        (time(9), time(9), time(9), False),
        (None, None, time(3), False),
    ],
)
def test_quiet_hours_run_from_start_to_end_and_may_wrap_midnight(start, end, local, quiet):
    assert in_quiet_hours(start=start, end=end, local=local) is quiet


def test_in_quiet_hours_a_notification_is_stored_but_neither_pushed_nor_mailed(
    owner, pushes, django_capture_on_commit_callbacks
):
    NotificationSettings.objects.create(
        user=owner, email_enabled=True, quiet_hours_start=time(22), quiet_hours_end=time(7)
    )

    with django_capture_on_commit_callbacks(execute=True):
        fire_btc_alert(owner, now=datetime(2026, 1, 10, 23, 15, tzinfo=UTC))

    assert Notification.objects.filter(user=owner, type="price_alert").count() == 1
    assert pushes == []
    assert mail.outbox == []


def test_quiet_hours_are_read_in_the_users_timezone(owner, pushes, django_capture_on_commit_callbacks):
    from accounts.selectors import preferences_get

    preferences = preferences_get(user=owner)
    preferences.timezone = "Asia/Tokyo"  # UTC+9: 14:00 UTC is 23:00 there
    preferences.save()
    NotificationSettings.objects.create(user=owner, quiet_hours_start=time(22), quiet_hours_end=time(7))

    with django_capture_on_commit_callbacks(execute=True):
        fire_btc_alert(owner, now=datetime(2026, 1, 10, 14, 0, tzinfo=UTC))

    assert pushes == []
    assert Notification.objects.filter(user=owner).count() == 1


def test_outside_quiet_hours_it_is_pushed_and_mailed(owner, pushes, django_capture_on_commit_callbacks, settings):
    NotificationSettings.objects.create(
        user=owner, email_enabled=True, quiet_hours_start=time(22), quiet_hours_end=time(7)
    )

    with django_capture_on_commit_callbacks(execute=True):
        fire_btc_alert(owner, now=datetime(2026, 1, 10, 12, 0, tzinfo=UTC))

    assert len(pushes) == 1
    if settings.CELERY_TASK_ALWAYS_EAGER:  # embedded: the mail task ran in-process
        assert len(mail.outbox) == 1
        assert mail.outbox[0].to == [owner.email]
        assert "BTC" in mail.outbox[0].subject


def test_with_in_app_delivery_off_it_is_stored_but_not_pushed(owner, pushes, django_capture_on_commit_callbacks):
    NotificationSettings.objects.create(user=owner, in_app_enabled=False)

    with django_capture_on_commit_callbacks(execute=True):
        fire_btc_alert(owner)

    assert pushes == []
    assert Notification.objects.filter(user=owner).count() == 1


def test_a_switched_off_type_is_not_created(owner, pushes, django_capture_on_commit_callbacks):
    NotificationSettings.objects.create(user=owner, security_alerts=False)

    with django_capture_on_commit_callbacks(execute=True):
        created = services.security_alert_new_device(user=owner, ip_address="203.0.113.9", user_agent="Firefox")

    assert created is None
    assert not Notification.objects.exists()
    assert pushes == []


def test_a_new_device_sign_in_creates_and_pushes_a_security_alert(owner, pushes, django_capture_on_commit_callbacks):
    from accounts.signals import user_signed_in

    with django_capture_on_commit_callbacks(execute=True):
        user_signed_in.send(
            sender=None, user=owner, session=None, new_device=True, ip_address="203.0.113.9", user_agent="Firefox/140"
        )
        user_signed_in.send(
            sender=None, user=owner, session=None, new_device=False, ip_address="203.0.113.9", user_agent="Firefox/140"
        )

    note = Notification.objects.get(user=owner)
    assert note.type == "security_alert"
    assert note.priority == "high"
    assert "203.0.113.9" in note.message
    # The text can be mailed, so the client's own words stay out of it; the SPA reads them from data.
    assert "Firefox" not in note.message and "Firefox" not in note.title
    assert note.data == {"ip_address": "203.0.113.9", "user_agent": "Firefox/140"}
    assert [p["notification"]["id"] for p in pushes] == [str(note.pk)]


def _smtp_failing_first(failures: int, settings) -> FlakySMTPServer:
    """A real SMTP server on loopback that refuses the first `failures` sessions; mail goes to it."""
    server = FlakySMTPServer(fail_first=failures)
    server.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_USE_TLS, settings.EMAIL_TIMEOUT = (
        "127.0.0.1",
        server.port,
        False,
        5,
    )
    return server


def test_the_mail_task_retries_until_the_smtp_server_accepts(owner, settings):
    from notifications.tasks import notification_email_send

    server = _smtp_failing_first(2, settings)
    note = NotificationFactory(user=owner, title="BTC crossed above 100 USD")
    try:
        result = notification_email_send.apply(kwargs={"notification_id": str(note.pk)})
    finally:
        server.stop()

    assert result.successful(), result.traceback
    assert server.connections == 3
    assert len(server.messages) == 1
    assert "BTC crossed above 100 USD" in server.messages[0]
    note.refresh_from_db()
    assert note.emailed_at is not None


def test_a_mail_retried_after_an_smtp_failure_counts_once_against_the_budget(owner, settings, monkeypatch):
    import django_ratelimit.core

    from notifications.tasks import notification_email_send

    monkeypatch.setattr(django_ratelimit.core.time, "time", lambda: 1_800_000_000.0)  # one window
    settings.NOTIFICATION_EMAILS_PER_HOUR = 1
    server = _smtp_failing_first(2, settings)
    try:
        result = notification_email_send.apply(kwargs={"notification_id": str(NotificationFactory(user=owner).pk)})
    finally:
        server.stop()

    assert result.get() is True
    assert len(server.messages) == 1


def test_the_mail_task_gives_up_after_its_retries(owner, settings):
    from notifications.tasks import notification_email_send

    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_USE_TLS, settings.EMAIL_TIMEOUT = "127.0.0.1", 9, False, 1
    note = NotificationFactory(user=owner)

    result = notification_email_send.apply(kwargs={"notification_id": str(note.pk)})

    assert result.failed()
    note.refresh_from_db()
    assert note.emailed_at is None


def test_the_mail_task_never_mails_the_same_notification_twice(owner):
    from notifications.tasks import notification_email_send

    note = NotificationFactory(user=owner)

    assert notification_email_send.apply(kwargs={"notification_id": str(note.pk)}).get() is True
    assert notification_email_send.apply(kwargs={"notification_id": str(note.pk)}).get() is False
    assert len(mail.outbox) == 1


def test_a_deactivated_user_is_not_mailed_and_an_unverified_one_only_security_alerts(owner):
    from notifications.models import NotificationType
    from notifications.tasks import notification_email_send

    price_note = NotificationFactory(user=owner)
    security_note = NotificationFactory(user=owner, type=NotificationType.SECURITY_ALERT)
    type(owner).objects.filter(pk=owner.pk).update(is_verified=False)

    assert notification_email_send.apply(kwargs={"notification_id": str(price_note.pk)}).get() is False
    assert notification_email_send.apply(kwargs={"notification_id": str(security_note.pk)}).get() is True
    type(owner).objects.filter(pk=owner.pk).update(is_active=False)
    another_alert = NotificationFactory(user=owner, type=NotificationType.SECURITY_ALERT)
    assert notification_email_send.apply(kwargs={"notification_id": str(another_alert.pk)}).get() is False
    assert [m.to for m in mail.outbox] == [[owner.email]]


def test_mail_to_one_inbox_stops_at_its_hourly_budget_across_plus_tagged_accounts(owner, settings, monkeypatch):
    """Sign-up does not verify addresses: alerts of accounts made in a stranger's name must not flood them."""
    import django_ratelimit.core
    from django.contrib.auth import get_user_model

    from notifications.tasks import notification_email_send

    monkeypatch.setattr(django_ratelimit.core.time, "time", lambda: 1_800_000_000.0)  # one window
    settings.NOTIFICATION_EMAILS_PER_HOUR = 3
    User = get_user_model()
    accounts = [
        User.objects.create_user(email=f"stranger+{n}@example.org", password="plum orchard velvet 42", is_verified=True)
        for n in range(2)
    ]
    notes = [NotificationFactory(user=accounts[n % 2]) for n in range(5)]

    sent = [notification_email_send.apply(kwargs={"notification_id": str(note.pk)}).get() for note in notes]

    assert sent == [True, True, True, False, False]
    assert len(mail.outbox) == 3
    another_inbox = NotificationFactory(user=owner)
    assert notification_email_send.apply(kwargs={"notification_id": str(another_inbox.pk)}).get() is True


def test_price_alerts_switched_off_in_the_preferences_are_not_delivered(owner_client, owner, pushes):
    owner_client.patch("/api/v2/user/preferences", {"price_alerts": False}, format="json")

    fire_btc_alert(owner)

    assert not Notification.objects.filter(user=owner).exists()
    assert pushes == []


def test_notifications_create_skips_types_a_user_switched_off_but_not_others(owner, other_user):
    NotificationSettings.objects.create(user=owner, system_alerts=False)
    drafts = [
        Draft(user_id=u.pk, type="system_alert", title="Maintenance", message="Tonight.") for u in (owner, other_user)
    ]

    created = notifications_create(drafts=drafts)

    assert [n.user_id for n in created] == [other_user.pk]


def test_the_payload_formats_fields_as_drf_would(owner):
    from rest_framework import serializers

    note = NotificationFactory(user=owner, data={"symbol": "BTC", "price": 101.5})

    payload = notification_payload(note)

    assert payload["created_at"] == serializers.DateTimeField().to_representation(note.created_at)
    assert payload["id"] == str(note.pk)
    assert payload["data"] == {"symbol": "BTC", "price": 101.5}


def test_a_busy_cycle_pushes_every_notification_to_its_own_user(pushes, django_capture_on_commit_callbacks):
    from tests.factories import UserFactory

    users = [UserFactory() for _ in range(40)]  # above the threshold where pushes overlap on threads
    for user in users:
        AlertFactory(user=user, symbol="ETH", condition="below", target_value=Decimal("3000"))

    with django_capture_on_commit_callbacks(execute=True):
        fired = evaluation.alerts_evaluate(
            quote="usd", prices=[{"symbol": "ETH", "price": "2900"}], previous_prices={"ETH": "3100"}
        )

    assert fired == 40
    pushed = {(p["user_id"], p["notification"]["id"]) for p in pushes}
    stored = {(str(n.user_id), str(n.pk)) for n in Notification.objects.all()}
    assert pushed == stored and len(pushed) == 40
