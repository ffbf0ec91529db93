"""List pagination (coinlink.pagination): `count`, `next` and the page are what the contract says,
and a page that is not full answers without the separate COUNT query."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from notifications.models import Notification

pytestmark = pytest.mark.django_db

URL = "/api/v2/notifications"


def _notes(user, n: int) -> None:
    Notification.objects.bulk_create(
        [Notification(user=user, type="system_alert", title=f"n{i}", message="m") for i in range(n)]
    )


def _get(client, query: str):
    with CaptureQueriesContext(connection) as queries:
        response = client.get(f"{URL}?{query}")
    counted = [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"].upper()]
    return response, counted


def test_a_short_list_reports_its_count_without_counting_separately(owner, owner_client):
    _notes(owner, 3)
    response, counted = _get(owner_client, "page_size=10")
    body = response.json()
    assert (body["count"], len(body["results"]), body["next"]) == (3, 3, None)
    assert counted == []


def test_a_long_list_counts_every_page_the_same(owner, owner_client):
    _notes(owner, 25)
    pages = {n: _get(owner_client, f"page_size=10&page={n}") for n in (1, 2, 3)}

    assert [pages[n][0].json()["count"] for n in (1, 2, 3)] == [25, 25, 25]
    assert [len(pages[n][0].json()["results"]) for n in (1, 2, 3)] == [10, 10, 5]
    assert pages[1][0].json()["next"] and pages[3][0].json()["next"] is None
    assert pages[1][1] and pages[2][1]  # a full page cannot tell the total: it counts
    assert pages[3][1] == []  # the last, partial page can
    titles = [r["title"] for n in (1, 2, 3) for r in pages[n][0].json()["results"]]
    assert len(set(titles)) == 25


def test_an_empty_list_is_one_empty_page_and_a_page_past_the_end_is_a_404(owner, owner_client):
    response, _ = _get(owner_client, "")
    assert response.status_code == 200
    assert (response.json()["count"], response.json()["results"]) == (0, [])

    _notes(owner, 5)
    for page in ("2", "9223372036854775807", "99999999999999999999999"):
        past, _ = _get(owner_client, f"page_size=5&page={page}")
        assert past.status_code == 404 and past.json()["code"], page
    assert _get(owner_client, "page=last")[0].json()["count"] == 5
