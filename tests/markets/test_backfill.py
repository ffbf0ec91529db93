"""History backfill: Coinbase candles where the product exists, CoinGecko otherwise; idempotent."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from markets.backfill import Series, candles_backfill, series_fetch, series_needs_backfill
from markets.models import Asset, Candle
from tests.markets.conftest import COINBASE, COINGECKO, recorded

pytestmark = pytest.mark.django_db


def recent_coinbase_rows(count: int, step: int) -> list[list]:
    """The recorded ETH candles (verbatim values), re-timed to end at the current bar."""
    rows = recorded("coinbase_exchange_candles.json")[:count]
    now = int(time.time()) // step * step
    return [[now - i * step, *row[1:]] for i, row in enumerate(rows)]


def test_it_stores_coinbase_candles_with_real_volume(upstream):
    upstream.get(f"{COINBASE}/products/ETH-USD/candles").mock(
        return_value=httpx.Response(200, json=recent_coinbase_rows(24, 3600))
    )
    eth = Asset.objects.get(symbol="ETH")
    stored = series_fetch(series=Series(eth, "usd", "1h"), days=1, deadline=time.monotonic() + 30)
    assert stored == 24
    newest = Candle.objects.filter(asset=eth, interval="1h").latest("open_time")
    assert float(newest.volume) == recorded("coinbase_exchange_candles.json")[0][5]
    assert newest.source == "coinbase"


def test_it_falls_back_to_coingecko_market_chart(upstream):
    upstream.get(f"{COINBASE}/products/ETH-USD/candles").mock(return_value=httpx.Response(502))
    chart = upstream.get(f"{COINGECKO}/coins/ethereum/market_chart").mock(
        return_value=httpx.Response(200, json=recorded("coingecko_market_chart_1d.json"))
    )
    eth = Asset.objects.get(symbol="ETH")
    stored = series_fetch(series=Series(eth, "usd", "5m"), days=1, deadline=time.monotonic() + 30)
    assert stored > 30
    assert chart.calls[0].request.url.params["days"] == "1"
    assert set(Candle.objects.filter(asset=eth).values_list("source", flat=True)) == {"coingecko"}


def test_it_asks_coingecko_directly_for_assets_coinbase_does_not_list(upstream):
    chart = upstream.get(f"{COINGECKO}/coins/binancecoin/market_chart").mock(
        return_value=httpx.Response(200, json=recorded("coingecko_market_chart.json"))
    )
    bnb = Asset.objects.get(symbol="BNB")
    assert series_fetch(series=Series(bnb, "usd", "1d"), days=90, deadline=time.monotonic() + 30) >= 90
    assert chart.calls[0].request.url.params["interval"] == "daily"


def test_running_twice_never_duplicates_a_candle(upstream):
    upstream.get(f"{COINBASE}/products/BTC-USD/candles").mock(
        return_value=httpx.Response(200, json=recent_coinbase_rows(40, 86400))
    )
    btc = Asset.objects.get(symbol="BTC")
    for _ in range(2):
        series_fetch(series=Series(btc, "usd", "1d"), days=30, deadline=time.monotonic() + 30)
    assert Candle.objects.filter(asset=btc, interval="1d").count() == 40


def test_it_skips_series_that_are_already_covered():
    btc = Asset.objects.get(symbol="BTC")
    now = datetime.now(tz=UTC)
    series = Series(btc, "usd", "1d")
    assert series_needs_backfill(series=series, days=7, now=now)
    Candle.objects.bulk_create(
        Candle(
            asset=btc,
            quote="usd",
            interval="1d",
            open_time=now - timedelta(days=i, hours=1),
            open=1,
            high=1,
            low=1,
            close=1,
            source="coinbase",
        )
        for i in range(7)
    )
    assert not series_needs_backfill(series=series, days=7, now=now)


def test_a_run_is_bounded_and_survives_failing_providers(upstream, usd_only):
    upstream.get(url__regex=rf"{COINBASE}/products/.*/candles").mock(return_value=httpx.Response(500))
    upstream.get(url__regex=rf"{COINGECKO}/coins/.*/market_chart").mock(return_value=httpx.Response(500))
    Asset.objects.exclude(symbol__in=["BTC", "BNB"]).update(is_active=False)
    done = candles_backfill(max_series=4)
    assert done == {"checked": 4, "fetched": 4, "candles": 0}
