"""The SPA's unfiltered notification list is read as prepared rows (no model instances): its bytes are
those of DRF's own path (the ORM's QuerySet, the project's paginator, NotificationSerializer)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.exceptions import NotFound
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from coinlink.pagination import PageNumberPagination
from notifications.api.serializers import NotificationSerializer
from notifications.models import Notification
from tests.notifications.factories import NotificationFactory

pytestmark = pytest.mark.django_db

URL = "/api/v2/notifications"
TYPES = ["price_alert", "news_update", "system_alert", "security_alert"]
DATA = [{}, {"symbol": "BTC", "price": "105000.5"}, {"nested": {"a": [1, 2.5, None, True]}, "ünï": "cødé ✓"}]


@pytest.fixture
def inbox(owner, other_user):
    """45 notifications of every type and read state; some share a created_at (the id breaks the tie)."""
    now = timezone.now().replace(microsecond=123456)
    for n in range(45):
        created = now - timedelta(minutes=n // 3, microseconds=0 if n % 5 else 123456)
        NotificationFactory(
            user=owner,
            type=TYPES[n % 4],
            title=f'Title {n} «quoted» "and" escaped\\n',
            priority=["low", "medium", "high", "critical"][n % 4],
            is_read=n % 3 == 0,
            created_at=created.replace(microsecond=0) if n % 7 == 0 else created,
            data=DATA[n % 3],
        )
    NotificationFactory.create_batch(5, user=other_user)
    return owner


def drf_path(user, query: str) -> tuple[int, bytes | None]:
    """What DRF's generic path answers for the same request."""
    request = Request(APIRequestFactory().get(URL + query))
    paginator = PageNumberPagination()
    notes = Notification.objects.filter(user=user).order_by("-created_at", "-id")
    try:
        page = paginator.paginate_queryset(notes, request)
    except NotFound:
        return 404, None
    data = paginator.get_paginated_response(NotificationSerializer(page, many=True).data).data
    return 200, JSONRenderer().render(data)


QUERIES = [""] + [
    f"?page_size={size}&page={page}" for size in (1, 7, 20, 45, 100) for page in (1, 2, 3, 7, 45, 46, "last")
]


@pytest.mark.parametrize("query", [*QUERIES, "?page=2", "?page=3", "?page=0", "?page=x", "?page_size=500&page=1"])
def test_every_page_is_byte_equal_to_drfs_own_path(inbox, owner_client, query):
    expected_status, expected = drf_path(inbox, query)

    response = owner_client.get(URL + query)

    assert response.status_code == expected_status
    if expected is not None:
        assert response.content == expected


def test_it_stays_equal_as_notifications_are_read_and_removed(inbox, owner_client):
    for step in range(3):
        notes = list(Notification.objects.filter(user=inbox).order_by("?")[:5])
        Notification.objects.filter(pk__in=[n.pk for n in notes[:3]]).update(is_read=True)
        Notification.objects.filter(pk__in=[n.pk for n in notes[3:]]).delete()
        for query in ("?page_size=7&page=2", "?page_size=100", ""):
            assert owner_client.get(URL + query).content == drf_path(inbox, query)[1], (step, query)


def test_an_empty_list_is_byte_equal_too(owner, owner_client):
    assert owner_client.get(URL).content == drf_path(owner, "")[1]


def test_a_page_is_one_query_and_a_full_page_adds_the_count(inbox, owner_client):
    owner_client.get(URL)  # the statements are written on first use
    with CaptureQueriesContext(connection) as short:
        owner_client.get(f"{URL}?page_size=50")
    with CaptureQueriesContext(connection) as full:
        owner_client.get(f"{URL}?page_size=20&page=2")

    assert len(short.captured_queries) == 1  # not a full page: it tells the total itself
    assert len(full.captured_queries) == 2


def test_filtered_lists_still_filter(inbox, owner_client):
    unread = owner_client.get(f"{URL}?unread=true&page_size=100").json()
    typed = owner_client.get(f"{URL}?type=news_update&page_size=100").json()

    assert unread["count"] == Notification.objects.filter(user=inbox, is_read=False).count() == 30
    assert {n["type"] for n in typed["results"]} == {"news_update"}
    assert owner_client.get(f"{URL}?unread=maybe").status_code == 400
