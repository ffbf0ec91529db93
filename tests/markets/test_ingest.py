"""The ingest end to end, with only the outside world (CoinGecko, Coinbase) faked at the HTTP level."""

from __future__ import annotations

import logging
import threading
import time
from decimal import Decimal

import pytest
from django.db import connection

from markets import selectors, snapshot
from markets.models import Asset, Candle, ProviderStatus, Ticker
from markets.services import LOCK_KEY, market_ingest

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _usd(usd_only):
    return usd_only


def run(capture):
    with capture(execute=True):
        return market_ingest()


def test_it_stores_every_coingecko_price_and_serves_them_by_rank(fake, announced, django_capture_on_commit_callbacks):
    fake.prices = {"BTC": 50000.0, "ETH": 3000.0, "USDT": 1.0001}
    result = run(django_capture_on_commit_callbacks)
    assert result.stored == {"usd": 3}
    assert fake.coingecko.call_count == 1  # one call for every asset of the quote
    listing = selectors.ticker_list(quote="usd")
    assert [t["symbol"] for t in listing["data"]] == ["BTC", "ETH", "USDT"]
    assert listing["stale"] is False
    btc = listing["data"][0]
    assert btc["price"] == 50000.0 and btc["source"] == "coingecko" and btc["rank"] == 1 and btc["stale"] is False
    assert Ticker.objects.get(asset__symbol="BTC", quote="usd").price == Decimal("50000")


def test_it_announces_only_changed_tickers_after_commit(fake, announced, django_capture_on_commit_callbacks):
    fake.prices = {"BTC": 50000.0, "ETH": 3000.0}
    run(django_capture_on_commit_callbacks)
    (first,) = announced
    assert first["quote"] == "usd"
    assert [t["symbol"] for t in first["tickers"]] == ["BTC", "ETH"]
    assert first["previous_prices"] == {"BTC": None, "ETH": None}
    assert isinstance(first["observed_at"], float) and abs(first["observed_at"] - time.time()) < 5
    assert isinstance(first["tickers"][0]["last_updated"], str)

    fake.prices = {"BTC": 50100.5, "ETH": 3000.0}
    run(django_capture_on_commit_callbacks)
    second = announced[1]
    assert [t["symbol"] for t in second["tickers"]] == ["BTC"]
    assert second["tickers"][0]["price"] == 50100.5
    assert second["previous_prices"] == {"BTC": "50000.000000000000"}

    run(django_capture_on_commit_callbacks)
    assert len(announced) == 2  # nothing changed, nothing announced


def test_a_tiny_price_beyond_the_stored_precision_is_not_a_change(fake, announced, django_capture_on_commit_callbacks):
    fake.prices = {"PEPE": 0.0000123456789012345}
    run(django_capture_on_commit_callbacks)
    run(django_capture_on_commit_callbacks)
    assert len(announced) == 1
    assert selectors.ticker_get(quote="usd", symbol="PEPE")["price"] == 0.000012345679


def test_it_announces_nothing_when_the_transaction_does_not_commit(fake, announced, django_capture_on_commit_callbacks):
    fake.prices = {"BTC": 50000.0}
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        market_ingest()
    assert announced == [] and len(callbacks) == 2  # the announcement and the staleness check wait for it


@pytest.mark.django_db(transaction=True)
def test_the_announcement_does_not_wait_for_the_chart_candles(upstream):
    """The live feed's latency is the upstream answer to the frame: the candles are written after it."""
    from markets.catalogue import catalogue_load
    from markets.signals import tickers_changed
    from tests.markets.conftest import FakeUpstream

    catalogue_load()
    fake = FakeUpstream(upstream)  # after the catalogue: it answers for every asset the ingest asks about
    candles_at_announcement: list[int] = []

    def receiver(sender, **kwargs):
        candles_at_announcement.append(Candle.objects.filter(quote="usd").count())

    fake.prices = {"BTC": 50000.0, "ETH": 3000.0}
    tickers_changed.connect(receiver, dispatch_uid="tests.markets.candles_order")
    try:
        market_ingest()
    finally:
        tickers_changed.disconnect(dispatch_uid="tests.markets.candles_order")

    assert candles_at_announcement == [0]
    assert Candle.objects.filter(quote="usd").count() == 6  # then 5m, 1h and 1d for each


def test_it_fails_over_to_coinbase_for_the_assets_it_lists(fake, django_capture_on_commit_callbacks):
    fake.prices = {"BTC": 50000.0, "BNB": 600.0}
    fake.coingecko_down = True
    fake.coinbase_products = None
    result = run(django_capture_on_commit_callbacks)
    by_symbol = {t["symbol"]: t for t in selectors.ticker_list(quote="usd")["data"]}
    assert by_symbol["BTC"]["source"] == "coinbase"
    assert by_symbol["BTC"]["price"] == 73367.8  # the recorded Coinbase ticker
    assert "BNB" not in by_symbol and "USDT" not in by_symbol  # Coinbase lists no BNB-USD; nothing is invented
    coinbase_products = Asset.objects.exclude(coinbase_product=None).filter(coinbase_quotes__contains="usd").count()
    assert result.stored["usd"] == coinbase_products
    status = {s.provider: s for s in ProviderStatus.objects.all()}
    assert status["coingecko"].last_error and status["coingecko"].last_success is None
    assert status["coinbase"].last_success is not None
    assert Ticker.objects.get(asset__symbol="BTC").bid == Decimal("73360.34")


def test_it_asks_coinbase_only_for_what_the_primary_missed(fake, django_capture_on_commit_callbacks):
    fake.prices = {"BTC": 50000.0}  # CoinGecko answers BTC only
    fake.coinbase_products = None
    run(django_capture_on_commit_callbacks)
    asked = {str(c.request.url).split("/products/")[1].split("/")[0] for c in fake.coinbase_ticker.calls}
    assert "BTC-USD" not in asked and "ETH-USD" in asked
    assert selectors.ticker_get(quote="usd", symbol="BTC")["source"] == "coingecko"


def test_it_puts_coinbase_first_when_configured(fake, settings, django_capture_on_commit_callbacks):
    settings.MARKET_PRIMARY_PROVIDER = "coinbase"
    fake.coinbase_products = {"BTC-USD"}
    fake.prices = {"BTC": 50000.0, "BNB": 600.0}
    run(django_capture_on_commit_callbacks)
    assert selectors.ticker_get(quote="usd", symbol="BTC")["source"] == "coinbase"
    assert selectors.ticker_get(quote="usd", symbol="BNB")["source"] == "coingecko"
    assert "bitcoin" not in fake.coingecko.calls[0].request.url.params["ids"].split(",")


def test_it_keeps_the_good_rows_when_one_is_bad(fake, django_capture_on_commit_callbacks, monkeypatch):
    fake.prices = {"BTC": 50000.0, "ETH": -3.0}
    fake.coinbase_down = True
    run(django_capture_on_commit_callbacks)
    assert [t["symbol"] for t in selectors.ticker_list(quote="usd")["data"]] == ["BTC"]


def test_it_serves_the_last_good_values_as_stale_when_every_provider_fails(
    fake, settings, django_capture_on_commit_callbacks, monkeypatch
):
    fake.prices = {"BTC": 50000.0}
    run(django_capture_on_commit_callbacks)
    fake.coingecko_down = fake.coinbase_down = True
    later = time.time() + settings.MARKET_STALE_SECONDS + 1
    run(django_capture_on_commit_callbacks)
    monkeypatch.setattr("markets.snapshot.time.time", lambda: later)
    monkeypatch.setattr("markets.selectors.time.time", lambda: later)
    listing = selectors.ticker_list(quote="usd")
    assert listing["stale"] is True
    assert listing["data"][0]["price"] == 50000.0 and listing["data"][0]["stale"] is True
    assert selectors.market_data_status()["status"] == "stale"
    assert selectors.market_data_status()["age_seconds"] > settings.MARKET_STALE_SECONDS


def test_live_clients_hear_once_when_prices_go_stale_and_once_when_they_come_back(
    fake, settings, django_capture_on_commit_callbacks, monkeypatch
):
    from markets import signals

    heard: list[list[tuple[str, bool]]] = []

    def record(sender, *, quote, tickers, **kwargs):
        heard.append([(t["symbol"], t["stale"]) for t in tickers])

    signals.tickers_staleness.connect(record, dispatch_uid="test-staleness")
    try:
        fake.prices = {"BTC": 50000.0, "ETH": 3000.0}
        run(django_capture_on_commit_callbacks)
        assert heard == []

        fake.coingecko_down = fake.coinbase_down = True
        later = time.time() + settings.MARKET_STALE_SECONDS + 1
        monkeypatch.setattr("markets.snapshot.time.time", lambda: later)
        run(django_capture_on_commit_callbacks)
        run(django_capture_on_commit_callbacks)  # still down: nothing new to say
        assert heard == [[("BTC", True), ("ETH", True)]]

        fake.coingecko_down = fake.coinbase_down = False  # back, with the same prices: no price changed
        monkeypatch.setattr("markets.snapshot.time.time", time.time)
        run(django_capture_on_commit_callbacks)
        assert heard[1:] == [[("BTC", False), ("ETH", False)]]
    finally:
        signals.tickers_staleness.disconnect(dispatch_uid="test-staleness")


def test_it_recovers_from_staleness_on_the_next_good_run(fake, settings, django_capture_on_commit_callbacks):
    fake.prices = {"BTC": 50000.0}
    run(django_capture_on_commit_callbacks)
    Ticker.objects.update(fetched_at=Ticker.objects.get().fetched_at.replace(year=2020))
    snapshot.snapshot_build(quote="usd")
    assert selectors.ticker_list(quote="usd")["stale"] is True
    fake.prices = {"BTC": 51000.0}
    run(django_capture_on_commit_callbacks)
    listing = selectors.ticker_list(quote="usd")
    assert listing["stale"] is False and listing["data"][0]["price"] == 51000.0
    assert selectors.market_data_status()["status"] == "ok"


def test_it_starts_cold_with_an_empty_stale_list():
    assert selectors.ticker_list(quote="usd")["data"] == []
    assert selectors.ticker_list(quote="usd")["stale"] is True
    assert selectors.market_data_status() == {"status": "stale", "age_seconds": None, "last_success": None}


def test_it_folds_ticks_into_candles_without_duplicates(fake, django_capture_on_commit_callbacks):
    fake.prices = {"BTC": 50000.0}
    run(django_capture_on_commit_callbacks)
    fake.prices = {"BTC": 50500.0}
    run(django_capture_on_commit_callbacks)
    fake.prices = {"BTC": 49900.0}
    run(django_capture_on_commit_callbacks)
    candles = Candle.objects.filter(asset__symbol="BTC", quote="usd")
    # One bar per interval (two if a run crossed a bar boundary), never one per run.
    assert {"5m", "1h", "1d"} == set(candles.values_list("interval", flat=True))
    assert candles.count() <= 6
    keys = list(candles.values_list("interval", "open_time"))
    assert len(keys) == len(set(keys))
    day = candles.filter(interval="1d").latest("open_time")
    assert day.close == Decimal("49900") and day.low == Decimal("49900")
    if candles.filter(interval="1d").count() == 1:
        assert (day.open, day.high) == (Decimal("50000"), Decimal("50500"))
    assert day.volume is None and day.source == "ticks"


def test_it_skips_a_run_while_another_holds_the_lock(fake):
    from django.core.cache import cache

    cache.add(LOCK_KEY, "other-worker", 60)
    assert market_ingest().skipped is True
    assert fake.coingecko.call_count == 0


def test_it_records_provider_health_for_the_admin(fake, django_capture_on_commit_callbacks):
    fake.coingecko_down = True
    fake.coinbase_down = True
    run(django_capture_on_commit_callbacks)
    status = ProviderStatus.objects.get(provider="coingecko")
    assert "http_5xx" in status.last_error and status.consecutive_failures == 1
    assert status.breaker_state == "closed"
    for _ in range(4):
        run(django_capture_on_commit_callbacks)
    status.refresh_from_db()
    assert status.breaker_state == "open" and status.consecutive_failures == 5


def test_the_task_runs_the_ingest(fake, django_capture_on_commit_callbacks):
    from markets.tasks import market_ingest as task

    fake.prices = {"BTC": 50000.0}
    with django_capture_on_commit_callbacks(execute=True):
        result = task.apply().get()
    assert result == {"skipped": False, "stored": {"usd": 1}, "changed": {"usd": 1}}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_workers_at_once_never_duplicate_a_candle(upstream, settings, waits):
    """Two threads run the ingest at the same moment against PostgreSQL (and each other's lock)."""
    from markets.catalogue import catalogue_load

    settings.MARKET_QUOTES = ("usd",)
    catalogue_load()
    fake = __import__("tests.markets.conftest", fromlist=["FakeUpstream"]).FakeUpstream(upstream)
    fake.prices = {"BTC": 50000.0, "ETH": 3000.0}
    fake.delay = 0.5  # the first run is still in flight when the second one starts
    barrier = threading.Barrier(2)
    results, failures = [], []

    def worker():
        try:
            barrier.wait()
            results.append(market_ingest())
        except Exception as exc:  # surfaced below
            failures.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    assert sorted(r.skipped for r in results) == [False, True]
    # Even without the lock (it expired, or a slow worker), the upsert keeps one row per bar.
    from django.core.cache import cache

    def unlocked():
        try:
            barrier.wait()
            cache.delete(LOCK_KEY)
            market_ingest()
        except Exception as exc:
            failures.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=unlocked) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    for symbol in ("BTC", "ETH"):
        per_interval = Candle.objects.filter(asset__symbol=symbol, quote="usd").values_list("interval", "open_time")
        assert len(per_interval) == len(set(per_interval))
    assert Ticker.objects.filter(asset__symbol="BTC", quote="usd").count() == 1


def test_the_number_of_queries_of_a_cycle_does_not_grow_with_the_number_of_assets(
    fake, django_assert_max_num_queries, django_capture_on_commit_callbacks
):
    from markets.models import Asset

    symbols = list(Asset.objects.filter(is_active=True).order_by("rank").values_list("symbol", flat=True)[:20])
    fake.prices = {s: 100.0 + i for i, s in enumerate(symbols[:2])}
    run(django_capture_on_commit_callbacks)
    fake.prices = {s: 200.0 + i for i, s in enumerate(symbols[:2])}
    with django_assert_max_num_queries(1000) as captured:
        run(django_capture_on_commit_callbacks)
    few = len(captured.captured_queries)
    fake.prices = {s: 300.0 + i for i, s in enumerate(symbols)}
    run(django_capture_on_commit_callbacks)
    fake.prices = {s: 400.0 + i for i, s in enumerate(symbols)}
    with django_assert_max_num_queries(few):  # ten times the assets, not one query more
        run(django_capture_on_commit_callbacks)


OFFLINE = "providers unreachable: coingecko: ConnectError; coinbase: ConnectError"


@pytest.fixture
def offline(fake, monkeypatch, caplog):
    """CoinGecko and Coinbase both refuse connections; the breakers retry at once (no 30 s wait)."""
    monkeypatch.setattr("markets.providers.breaker.OPEN_SECONDS", 0.0)
    fake.coinbase_products = None  # Coinbase lists every product, so the ingest falls back to it
    fake.unreachable = True
    caplog.set_level(logging.DEBUG)
    return fake


def warnings_logged(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def test_it_logs_once_when_the_providers_become_unreachable_and_once_when_they_answer_again(
    offline, caplog, django_capture_on_commit_callbacks
):
    for _ in range(6):
        run(django_capture_on_commit_callbacks)
    offline.unreachable, offline.prices = False, {"BTC": 50000.0}
    for _ in range(3):
        run(django_capture_on_commit_callbacks)

    lines = warnings_logged(caplog)
    assert [line for line in lines if "unreachable" in line] == [
        f"market data {OFFLINE}; prices are served stale until one answers"
    ]
    assert len([line for line in lines if "reachable again" in line]) == 1
    # Besides those, only the breakers' own state changes: nothing per attempt or per cycle.
    others = [line for line in lines if "reachable" not in line]
    # (How many failures the opening line counts depends on which of Coinbase's threads got there first.)
    assert sorted(line.split(" after ")[0] for line in others) == [
        "coinbase circuit opened",
        "coingecko circuit opened",
    ]
    assert any("ConnectError" in r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG)


def test_readyz_names_why_there_are_no_prices(offline, client, django_capture_on_commit_callbacks):
    for _ in range(7):  # long enough for both breakers to open: the reason stays the connection error
        run(django_capture_on_commit_callbacks)

    body = client.get("/readyz").json()

    assert body["status"] == "degraded"
    assert body["checks"]["market_data"] == {
        "status": "stale", "age_seconds": None, "last_success": None, "reason": OFFLINE,
        "latency_ms": body["checks"]["market_data"]["latency_ms"],
    }  # fmt: skip
    offline.unreachable, offline.prices = False, {"BTC": 50000.0}
    run(django_capture_on_commit_callbacks)
    assert "reason" not in client.get("/readyz").json()["checks"]["market_data"]


def test_a_failing_provider_beside_one_that_answers_is_not_unreachable(
    fake, client, django_capture_on_commit_callbacks
):
    fake.coingecko_down, fake.coinbase_products = True, None
    run(django_capture_on_commit_callbacks)
    assert "reason" not in client.get("/readyz").json()["checks"]["market_data"]
