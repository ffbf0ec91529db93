"""/api/v2/alerts: CRUD, validation, the active-alert limit, and owner-only access."""

from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.exceptions import NotFound
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from coinlink.pagination import PageNumberPagination
from notifications import services
from notifications.api.serializers import AlertSerializer
from notifications.models import Alert
from tests.helpers import assert_error_shape as assert_error
from tests.notifications.factories import AlertFactory

pytestmark = pytest.mark.django_db

URL = "/api/v2/alerts"
FIELDS = {
    "id",
    "symbol",
    "condition",
    "target_value",
    "vs",
    "is_active",
    "repeat",
    "cooldown_seconds",
    "created_at",
    "last_triggered_at",
    "trigger_count",
}


def detail(alert) -> str:
    return f"{URL}/{alert.pk}"


def test_a_target_can_be_as_precise_as_a_ticker_price(owner_client, catalogue):
    # Tickers carry 12 decimal places; sub-cent tokens need them to name a price at all.
    response = owner_client.post(
        URL, {"symbol": "SHIB", "condition": "above", "target_value": "0.000000015"}, format="json"
    )

    assert response.status_code == 201, response.content
    assert response.json()["target_value"] == 1.5e-08
    too_fine = owner_client.post(
        URL, {"symbol": "SHIB", "condition": "above", "target_value": "0.0000000000001"}, format="json"
    )
    assert too_fine.status_code == 400 and "target_value" in too_fine.json()["errors"]


def test_an_alert_renders_exactly_as_drfs_own_field_by_field_path(owner):
    # AlertSerializer writes the object directly for speed; DRF's generic path is the reference.
    from datetime import UTC, datetime

    from rest_framework import serializers

    from notifications.api.serializers import AlertSerializer

    fired = AlertFactory(user=owner, target_value=Decimal("0.000000015"), repeat=True, cooldown_seconds=60)
    Alert.objects.filter(pk=fired.pk).update(
        last_triggered_at=datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC), trigger_count=7, is_active=False
    )
    never = AlertFactory(
        user=owner, symbol="ETH", condition="crosses_below", target_value=Decimal("-12.5"), quote="eur"
    )
    for alert in Alert.objects.filter(pk__in=[fired.pk, never.pk]):
        serializer = AlertSerializer(alert)
        assert serializer.data == serializers.ModelSerializer.to_representation(serializer, alert)


def test_it_creates_an_alert_with_the_contract_fields(owner_client, catalogue):
    response = owner_client.post(
        URL, {"symbol": "btc", "condition": "above", "target_value": "65000.5", "vs": "eur"}, format="json"
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == FIELDS
    assert body["symbol"] == "BTC"
    assert body["target_value"] == 65000.5
    assert body["vs"] == "eur"
    assert body["is_active"] is True
    assert body["repeat"] is False
    assert body["cooldown_seconds"] == 3600
    assert body["trigger_count"] == 0
    assert body["last_triggered_at"] is None


def test_it_answers_the_same_with_a_trailing_slash(owner_client, catalogue):
    response = owner_client.post(URL + "/", {"symbol": "ETH", "condition": "below", "target_value": 1}, format="json")

    assert response.status_code == 201


def test_it_accepts_a_negative_percent_for_a_24h_drop(owner_client, catalogue):
    response = owner_client.post(
        URL, {"symbol": "SOL", "condition": "change_pct_24h_below", "target_value": -7.5}, format="json"
    )

    assert response.status_code == 201
    assert response.json()["target_value"] == -7.5


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"symbol": "NOPE"}, "symbol"),
        ({"symbol": "DOGE"}, "symbol"),  # delisted from the catalogue
        ({"symbol": "BT C"}, "symbol"),
        ({"symbol": "B" * 16}, "symbol"),
        ({"symbol": 42}, "symbol"),
        ({"symbol": "BTC\x00"}, None),
        ({"condition": "sideways"}, "condition"),
        ({"target_value": 0}, "target_value"),
        ({"target_value": -1}, "target_value"),
        ({"target_value": "NaN"}, "target_value"),
        ({"target_value": "Infinity"}, "target_value"),
        ({"target_value": "abc"}, "target_value"),
        ({"target_value": True}, "target_value"),
        ({"target_value": [1]}, "target_value"),
        ({"target_value": "1e30"}, "target_value"),
        ({"target_value": "0.0000000000001"}, "target_value"),  # finer than a ticker price
        ({"target_value": 10**400}, "target_value"),
        ({"condition": "change_pct_24h_below", "target_value": -101}, "target_value"),
        ({"vs": "jpy"}, "vs"),
        ({"cooldown_seconds": 59}, "cooldown_seconds"),
        ({"cooldown_seconds": 31 * 86400}, "cooldown_seconds"),
        ({"cooldown_seconds": "soon"}, "cooldown_seconds"),
        ({"repeat": "maybe"}, "repeat"),
        ({"owner": "someone-else"}, "owner"),
    ],
)
def test_it_refuses_bad_input_with_a_400_naming_the_field(owner_client, catalogue, change, field):
    body = {"symbol": "BTC", "condition": "above", "target_value": "100", **change}

    response = owner_client.post(URL, body, format="json")

    error = assert_error(response, 400)
    if field:
        assert field in error["errors"]
    assert not Alert.objects.exists()


def test_it_refuses_a_missing_body_field(owner_client, catalogue):
    error = assert_error(owner_client.post(URL, {"symbol": "BTC"}, format="json"), 400, "validation_error")

    assert set(error["errors"]) == {"condition", "target_value"}


def test_it_lists_only_the_users_alerts_newest_first_and_paginated(owner, other_user, owner_client):
    mine = [AlertFactory(user=owner, target_value=Decimal(i + 1)) for i in range(3)]
    AlertFactory(user=other_user)

    body = owner_client.get(URL + "?page_size=2").json()

    assert body["count"] == 3
    assert [a["id"] for a in body["results"]] == [str(mine[2].pk), str(mine[1].pk)]
    assert body["next"] is not None


def test_it_retrieves_replaces_patches_and_deletes_the_owners_alert(owner, owner_client, catalogue):
    alert = AlertFactory(user=owner)

    assert owner_client.get(detail(alert)).json()["id"] == str(alert.pk)

    replaced = owner_client.put(
        detail(alert),
        {"symbol": "ETH", "condition": "crosses_below", "target_value": 3000, "repeat": True},
        format="json",
    )
    assert replaced.status_code == 200, replaced.content
    assert (replaced.json()["symbol"], replaced.json()["condition"], replaced.json()["repeat"]) == (
        "ETH",
        "crosses_below",
        True,
    )

    patched = owner_client.patch(detail(alert), {"cooldown_seconds": 120}, format="json")
    assert patched.status_code == 200
    assert patched.json()["cooldown_seconds"] == 120
    assert patched.json()["symbol"] == "ETH"

    assert owner_client.delete(detail(alert)).status_code == 204
    assert not Alert.objects.filter(pk=alert.pk).exists()


def test_a_put_needs_every_required_field(owner, owner_client, catalogue):
    alert = AlertFactory(user=owner)

    assert_error(owner_client.put(detail(alert), {"target_value": 5}, format="json"), 400, "validation_error")


def test_a_patch_is_validated_against_the_alerts_other_fields(owner, owner_client, catalogue):
    alert = AlertFactory(user=owner, condition="change_pct_24h_below", target_value=Decimal("-5"))

    error = assert_error(owner_client.patch(detail(alert), {"condition": "below"}, format="json"), 400)

    assert "target_value" in error["errors"]


@pytest.mark.parametrize(
    ("method", "body"),
    [
        ("get", None),
        ("put", {"symbol": "BTC", "condition": "above", "target_value": 1}),
        ("patch", {"target_value": 1}),
        ("delete", None),
    ],
)
def test_another_users_alert_is_a_404_on_every_verb(owner, other_client, anon_client, catalogue, method, body):
    alert = AlertFactory(user=owner, target_value=Decimal("7"))

    assert_error(getattr(other_client, method)(detail(alert), body, format="json"), 404, "not_found")
    assert_error(getattr(anon_client, method)(detail(alert), body, format="json"), 401)

    alert.refresh_from_db()
    assert alert.target_value == Decimal("7")


def test_anonymous_clients_cannot_list_or_create(anon_client, catalogue):
    assert_error(anon_client.get(URL), 401)
    assert_error(anon_client.post(URL, {"symbol": "BTC", "condition": "above", "target_value": 1}, format="json"), 401)


def test_a_malformed_id_is_a_404(owner_client):
    assert_error(owner_client.get(URL + "/not-a-uuid"), 404)


def test_it_allows_at_most_100_active_alerts(owner, owner_client, catalogue):
    Alert.objects.bulk_create(
        [Alert(user=owner, symbol="BTC", condition="above", target_value=i + 1) for i in range(100)]
    )

    body = {"symbol": "BTC", "condition": "above", "target_value": 1}
    assert_error(owner_client.post(URL, body, format="json"), 400, "alert_limit_reached")

    paused = owner_client.post(URL, {**body, "is_active": False}, format="json")
    assert paused.status_code == 201
    reactivated = owner_client.patch(f"{URL}/{paused.json()['id']}", {"is_active": True}, format="json")
    assert_error(reactivated, 400, "alert_limit_reached")


def test_the_limit_counts_only_active_alerts_and_only_the_users_own(owner, other_user, owner_client, catalogue):
    Alert.objects.bulk_create(
        [Alert(user=owner, symbol="BTC", condition="above", target_value=1, is_active=False) for _ in range(100)]
        + [Alert(user=other_user, symbol="BTC", condition="above", target_value=1) for _ in range(100)]
    )

    response = owner_client.post(URL, {"symbol": "BTC", "condition": "above", "target_value": 1}, format="json")

    assert response.status_code == 201


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_creates_cannot_overshoot_the_limit(owner, catalogue):
    Alert.objects.bulk_create(
        [Alert(user=owner, symbol="BTC", condition="above", target_value=i + 1) for i in range(98)]
    )
    barrier = threading.Barrier(6)
    outcomes: list = []

    def create():
        try:
            barrier.wait()
            services.alert_create(user=owner, symbol="ETH", condition="below", target_value=Decimal(10))
            outcomes.append("created")
        except services.AlertLimitReached:
            outcomes.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=create) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)

    assert sorted(outcomes) == ["created"] * 2 + ["refused"] * 4
    assert Alert.objects.filter(user=owner, is_active=True).count() == 100


@pytest.fixture
def many_alerts(owner, other_user):
    """23 alerts of every condition and state, some triggered; some share a created_at (the id breaks the tie)."""
    now = timezone.now().replace(microsecond=654321)
    conditions = ["above", "below", "crosses_above", "crosses_below", "change_pct_24h_above", "change_pct_24h_below"]
    for n in range(23):
        AlertFactory(
            user=owner,
            symbol=["BTC", "ETH", "SOL"][n % 3],
            condition=conditions[n % 6],
            target_value=Decimal("-12.5") if n % 6 == 5 else Decimal(f"{n}.000000012345") + 1,
            quote=["usd", "eur", "btc"][n % 3] if n % 4 else "usd",
            is_active=n % 5 != 0,
            repeat=n % 2 == 0,
            cooldown_seconds=60 + n,
            created_at=now - timedelta(seconds=n // 2, microseconds=0 if n % 3 else 654321),
            last_triggered_at=now.replace(microsecond=0) if n % 4 == 0 else None,
            trigger_count=n % 4,
        )
    AlertFactory.create_batch(3, user=other_user)
    return owner


def _drf_alert_page(user, query: str):
    """What DRF's own path answers: the ORM's QuerySet, the project's paginator, AlertSerializer."""
    request = Request(APIRequestFactory().get(URL + query))
    paginator = PageNumberPagination()
    try:
        page = paginator.paginate_queryset(Alert.objects.filter(user=user).order_by("-created_at", "-id"), request)
    except NotFound:
        return 404, None
    return 200, JSONRenderer().render(paginator.get_paginated_response(AlertSerializer(page, many=True).data).data)


@pytest.mark.parametrize(
    "query",
    ["", "?page=2", "?page=3", "?page=last", "?page=0"]
    + [f"?page_size={size}&page={page}" for size in (1, 5, 23, 100) for page in (1, 2, 5, 23, 24)],
)
def test_every_page_of_the_list_is_byte_equal_to_drfs_own_path(many_alerts, owner_client, query):
    """The list reads prepared rows (no model instances) and renders without a serializer."""
    expected_status, expected = _drf_alert_page(many_alerts, query)

    response = owner_client.get(URL + query)

    assert response.status_code == expected_status
    if expected is not None:
        assert response.content == expected
