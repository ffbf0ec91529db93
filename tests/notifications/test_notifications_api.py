"""/api/v2/notifications: list, filters, read, read-all, delete, unread-count, settings; owner-only."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from notifications.models import Notification, NotificationSettings
from tests.helpers import assert_error_shape as assert_error
from tests.notifications.factories import NotificationFactory

pytestmark = pytest.mark.django_db

URL = "/api/v2/notifications"
FIELDS = {"id", "type", "title", "message", "priority", "is_read", "created_at", "data"}
SETTINGS_FIELDS = {
    "in_app_enabled",
    "email_enabled",
    "price_alerts",
    "news_updates",
    "system_alerts",
    "security_alerts",
    "quiet_hours_start",
    "quiet_hours_end",
}


def test_it_lists_the_users_notifications_newest_first(owner, other_user, owner_client):
    now = timezone.now()
    old = NotificationFactory(user=owner, created_at=now - timedelta(hours=1))
    new = NotificationFactory(user=owner, created_at=now, type="price_alert", data={"symbol": "BTC"})
    NotificationFactory(user=other_user)

    body = owner_client.get(URL).json()

    assert body["count"] == 2
    assert [n["id"] for n in body["results"]] == [str(new.pk), str(old.pk)]
    assert set(body["results"][0]) == FIELDS
    assert body["results"][0]["data"] == {"symbol": "BTC"}
    assert body["results"][0]["created_at"].endswith("Z")


def test_it_filters_by_unread_and_by_type(owner, owner_client):
    NotificationFactory(user=owner, type="price_alert", is_read=True)
    unread_price = NotificationFactory(user=owner, type="price_alert")
    NotificationFactory(user=owner, type="security_alert")

    unread = owner_client.get(URL + "?unread=true").json()["results"]
    price = owner_client.get(URL + "?type=price_alert").json()["results"]
    both = owner_client.get(URL + "?type=price_alert&unread=true").json()["results"]
    read = owner_client.get(URL + "?unread=false").json()["results"]

    assert len(unread) == 2
    assert len(price) == 2
    assert [n["id"] for n in both] == [str(unread_price.pk)]
    assert len(read) == 1


@pytest.mark.parametrize("query", ["type=spam", "unread=perhaps", "type=price_alert%00"])
def test_it_refuses_unknown_filters_with_a_400(owner_client, query):
    assert_error(owner_client.get(f"{URL}?{query}"), 400)


def test_it_pages_with_a_capped_page_size(owner, owner_client):
    Notification.objects.bulk_create(
        [Notification(user=owner, type="system_alert", title=f"n{i}", message="m") for i in range(105)]
    )

    body = owner_client.get(URL + "?page_size=1000").json()

    assert body["count"] == 105
    assert len(body["results"]) == 100


def test_it_marks_one_notification_read(owner, owner_client):
    note = NotificationFactory(user=owner)

    response = owner_client.post(f"{URL}/{note.pk}/read")

    assert response.status_code == 200
    assert response.json()["is_read"] is True
    assert set(response.json()) == FIELDS
    note.refresh_from_db()
    assert note.is_read and note.read_at is not None
    assert owner_client.post(f"{URL}/{note.pk}/read/").status_code == 200  # again: still 200


def test_it_marks_all_read_and_says_how_many_changed(owner, other_user, owner_client):
    NotificationFactory.create_batch(3, user=owner)
    NotificationFactory(user=owner, is_read=True)
    theirs = NotificationFactory(user=other_user)

    assert owner_client.post(URL + "/read-all").json() == {"updated": 3}
    assert owner_client.post(URL + "/read-all").json() == {"updated": 0}
    theirs.refresh_from_db()
    assert theirs.is_read is False


def test_a_full_page_reports_the_total_with_and_without_filters(owner, other_user, owner_client):
    NotificationFactory.create_batch(23, user=owner)
    NotificationFactory.create_batch(4, user=owner, is_read=True)
    NotificationFactory.create_batch(30, user=other_user)

    assert owner_client.get(URL + "?page_size=20").json()["count"] == 27
    assert owner_client.get(URL + "?page_size=20&unread=true").json()["count"] == 23
    assert owner_client.get(URL + "?page_size=2&unread=false").json()["count"] == 4


def test_it_counts_unread(owner, other_user, owner_client):
    NotificationFactory.create_batch(2, user=owner)
    NotificationFactory(user=owner, is_read=True)
    NotificationFactory(user=other_user)

    assert owner_client.get(URL + "/unread-count").json() == {"count": 2}


def test_it_deletes_a_notification(owner, owner_client):
    note = NotificationFactory(user=owner)

    assert owner_client.delete(f"{URL}/{note.pk}").status_code == 204
    assert not Notification.objects.filter(pk=note.pk).exists()


@pytest.mark.parametrize(("method", "suffix"), [("post", "/read"), ("delete", "")])
def test_another_users_notification_is_a_404(owner, other_client, anon_client, method, suffix):
    note = NotificationFactory(user=owner)

    assert_error(getattr(other_client, method)(f"{URL}/{note.pk}{suffix}"), 404, "not_found")
    assert_error(getattr(anon_client, method)(f"{URL}/{note.pk}{suffix}"), 401)

    note.refresh_from_db()
    assert note.is_read is False


@pytest.mark.parametrize(
    ("method", "path"),
    [("get", ""), ("post", "/read-all"), ("get", "/unread-count"), ("get", "/settings"), ("patch", "/settings")],
)
def test_anonymous_clients_get_401_everywhere(anon_client, method, path):
    assert_error(getattr(anon_client, method)(URL + path, {}, format="json"), 401)


def test_settings_start_from_the_defaults(owner_client):
    body = owner_client.get(URL + "/settings").json()

    assert body == {
        "in_app_enabled": True,
        "email_enabled": False,
        "price_alerts": True,
        "news_updates": True,
        "system_alerts": True,
        "security_alerts": True,
        "quiet_hours_start": None,
        "quiet_hours_end": None,
        "email_paused_reason": "email_unverified",
    }


def test_settings_can_be_patched_and_replaced(owner, owner_client):
    patched = owner_client.patch(
        URL + "/settings",
        {"email_enabled": True, "quiet_hours_start": "22:00", "quiet_hours_end": "07:30"},
        format="json",
    )
    assert patched.status_code == 200, patched.content
    assert patched.json()["quiet_hours_start"] == "22:00"
    assert patched.json()["email_enabled"] is True

    full = dict.fromkeys(SETTINGS_FIELDS, False) | {"quiet_hours_start": None, "quiet_hours_end": None}
    replaced = owner_client.put(URL + "/settings", full, format="json")
    assert replaced.status_code == 200
    assert replaced.json() == full | {"email_paused_reason": "email_unverified"}
    assert NotificationSettings.objects.get(user=owner).price_alerts is False


@pytest.mark.parametrize(
    "body",
    [
        {"quiet_hours_start": "25:00", "quiet_hours_end": "07:00"},
        {"quiet_hours_start": "22:00"},
        {"quiet_hours_start": "10pm", "quiet_hours_end": "07:00"},
        {"email_enabled": "sometimes"},
        {"sms_enabled": True},
    ],
)
def test_settings_refuse_bad_input(owner_client, body):
    assert_error(owner_client.patch(URL + "/settings", body, format="json"), 400, "validation_error")


def test_a_put_of_settings_needs_every_field(owner_client):
    assert_error(owner_client.put(URL + "/settings", {"email_enabled": True}, format="json"), 400)


def test_settings_are_per_user(owner, other_client, owner_client):
    owner_client.patch(URL + "/settings", {"price_alerts": False}, format="json")

    assert other_client.get(URL + "/settings").json()["price_alerts"] is True
