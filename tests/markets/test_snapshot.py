"""The per-process copy of the market snapshot: no Redis round trip per request, yet every worker
sees a new ingest within LOCAL_RECHECK_SECONDS."""

from __future__ import annotations

import pytest

from markets import snapshot
from markets.models import Asset, Ticker

pytestmark = pytest.mark.django_db


def _price(symbol: str, price: str) -> None:
    from django.utils import timezone

    Ticker.objects.update_or_create(
        asset=Asset.objects.get(symbol=symbol),
        quote="usd",
        defaults={"price": price, "source": "coingecko", "last_updated": timezone.now(), "fetched_at": timezone.now()},
    )


def test_a_worker_picks_up_another_workers_snapshot_within_the_recheck_period(monkeypatch, django_assert_num_queries):
    _price("BTC", "50000")
    mine = snapshot.snapshot_build(quote="usd")
    _price("BTC", "51000")
    snapshot.snapshot_build(quote="usd")  # "another process" (the ingest worker) publishes a new version
    snapshot._local["usd"] = mine  # ...while this process still holds the old one, checked just now
    clock = [snapshot._checked["usd"] + 0.5]
    monkeypatch.setattr("markets.snapshot.time.monotonic", lambda: clock[0])
    with django_assert_num_queries(0):
        assert snapshot.snapshot_get(quote="usd")["tickers"]["BTC"]["price"] == 50000.0
        clock[0] += snapshot.LOCAL_RECHECK_SECONDS
        assert snapshot.snapshot_get(quote="usd")["tickers"]["BTC"]["price"] == 51000.0


def test_it_serves_from_the_database_when_the_cache_is_down(monkeypatch):
    _price("BTC", "50000")

    def down(*args, **kwargs):
        raise ConnectionError("redis down")

    monkeypatch.setattr("markets.snapshot.cache.get", down)
    monkeypatch.setattr("markets.snapshot.cache.set", down)
    assert snapshot.snapshot_get(quote="usd")["tickers"]["BTC"]["price"] == 50000.0


def test_a_stale_ticker_keeps_its_values_and_only_flips_the_flag():
    _price("BTC", "0.00000001")
    entry = snapshot.snapshot_build(quote="usd")
    fresh = snapshot.fragment(entry, "BTC", frozenset())
    stale = snapshot.fragment(entry, "BTC", frozenset({"BTC"}))
    assert fresh.endswith(b'"stale":false}') and stale.endswith(b'"stale":true}')
    assert fresh[:-15] == stale[:-14]
    assert b'"price":1e-08' in fresh


def test_callers_get_copies_they_may_change():
    from markets.selectors import ticker_list

    _price("BTC", "50000")
    snapshot.snapshot_build(quote="usd")
    ticker_list(quote="usd")["data"][0]["price"] = -1
    assert ticker_list(quote="usd")["data"][0]["price"] == 50000.0
