"""Staff see and edit the catalogue, read provider health and candles; nobody edits history."""

from __future__ import annotations

import pytest

from markets.models import Asset, ProviderStatus
from markets.providers.breaker import FAILURE_THRESHOLD, CircuitBreaker

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client, django_user_model):
    admin = django_user_model.objects.create_superuser(email="staff@example.com", password="x" * 16)
    client.force_login(admin)
    return client


def test_staff_list_and_filter_assets(staff_client):
    response = staff_client.get("/admin/markets/asset/?is_active__exact=1&q=bit")
    assert response.status_code == 200
    assert b"bitcoin" in response.content


def test_staff_disable_an_asset_and_it_leaves_the_ticker_list(staff_client):
    from markets.selectors import asset_symbols_top

    doge = Asset.objects.get(symbol="DOGE")
    assert "DOGE" in asset_symbols_top(limit=50)
    data = {
        f: getattr(doge, f) for f in ("symbol", "name", "coingecko_id", "coinbase_product", "coinbase_quotes", "rank")
    }
    response = staff_client.post(f"/admin/markets/asset/{doge.pk}/change/", {**data, "is_active": ""})
    assert response.status_code == 302
    assert "DOGE" not in asset_symbols_top(limit=50)


def test_staff_see_provider_health_with_the_live_breaker(staff_client):
    ProviderStatus.objects.create(provider="coingecko", last_error="coingecko: http_5xx", consecutive_failures=5)
    breaker = CircuitBreaker("coingecko")
    for _ in range(FAILURE_THRESHOLD):
        breaker.record_failure()
    response = staff_client.get("/admin/markets/providerstatus/")
    assert response.status_code == 200
    assert b"http_5xx" in response.content and b">open<" in response.content


def test_candles_are_read_only(staff_client):
    assert staff_client.get("/admin/markets/candle/").status_code == 200
    assert staff_client.get("/admin/markets/candle/add/").status_code == 403


def test_readyz_reports_the_market_data_age(client, fake, usd_only, django_capture_on_commit_callbacks):
    from markets.services import market_ingest

    assert client.get("/readyz").json()["checks"]["market_data"]["status"] == "stale"
    fake.prices = {"BTC": 50000.0}
    with django_capture_on_commit_callbacks(execute=True):
        market_ingest()
    check = client.get("/readyz").json()["checks"]["market_data"]
    assert check["status"] == "ok" and 0 <= check["age_seconds"] < 5 and check["last_success"].endswith("Z")
