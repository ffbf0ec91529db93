"""The history endpoint never calls a provider: an empty series queues one paced backfill on the broker,
which fills it without spending the ingest's budget (its rate limit or its circuit breaker)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from coinlink.celery import app
from markets.history import history_backfill_request
from markets.models import Asset, Candle
from markets.providers.breaker import CircuitBreaker
from markets.services import market_ingest
from tests.markets.conftest import COINBASE, COINGECKO, recorded

pytestmark = [pytest.mark.django_db, pytest.mark.redis]

URL = "/api/v2/market/ETH/history?interval=1h&period=1d"


def broker_take(task: str) -> list[dict]:
    """The kwargs of every `task` message waiting on the real broker (taken off it; others are dropped)."""
    taken = []
    with app.connection_for_read() as conn:
        while (message := conn.default_channel.basic_get("celery", no_ack=True)) is not None:
            if message.headers.get("task") == task:
                taken.append(message.decode()[1])
    return taken


def run_queued(kwargs: dict) -> int:
    """Run a taken message's task in this process, where respx fakes the upstream."""
    return app.tasks["markets.tasks.series_backfill"].apply(kwargs=kwargs).get()


@pytest.fixture
def history(fake, usd_only, monkeypatch, django_capture_on_commit_callbacks):
    """Prices ingested once, ETH's hourly series empty, history paced fast, and a clean broker queue."""
    monkeypatch.setattr("markets.providers.coinbase.HISTORY_CALL_INTERVAL", 0.01)
    monkeypatch.setattr("markets.providers.coingecko.HISTORY_CALL_INTERVAL", 0.01)
    fake.prices = {"BTC": 50000.0, "ETH": 3000.0, "SOL": 150.0}
    with django_capture_on_commit_callbacks(execute=True):
        market_ingest()
    Candle.objects.filter(asset__symbol="ETH", interval="1h").delete()
    broker_take("")
    return fake


def eth_candles(router, status: int = 200):
    now = datetime.now(tz=UTC).replace(minute=0, second=0, microsecond=0)
    rows = recorded("coinbase_exchange_candles.json")[:5]  # recorded rows, moved to the last few hours
    shifted = [[int((now - timedelta(hours=i + 1)).timestamp()), *row[1:]] for i, row in enumerate(rows)]
    response = httpx.Response(200, json=shifted) if status == 200 else httpx.Response(status)
    return router.get(f"{COINBASE}/products/ETH-USD/candles").mock(return_value=response)


def test_a_burst_of_anonymous_requests_calls_no_provider_and_queues_one_backfill(
    anon_client, history, django_capture_on_commit_callbacks
):
    candles = eth_candles(history.router)
    chart = history.router.get(url__regex=rf"{COINGECKO}/coins/ethereum/market_chart").mock(
        return_value=httpx.Response(200, json=recorded("coingecko_market_chart.json"))
    )
    calls_before = len(history.router.calls)

    with django_capture_on_commit_callbacks(execute=True):
        responses = [anon_client.get(URL) for _ in range(25)]

    assert len(history.router.calls) == calls_before and candles.call_count == 0 and chart.call_count == 0
    for response in responses:
        assert response.status_code == 200 and response["X-History-Backfill"] == "pending"
        assert response.json() == {"symbol": "ETH", "interval": "1h", "vs": "usd", "candles": []}
    assert broker_take("markets.tasks.series_backfill") == [
        {"asset_id": Asset.objects.get(symbol="ETH").pk, "quote": "usd", "interval": "1h"}
    ]
    assert CircuitBreaker("coingecko").state() == "closed" and CircuitBreaker("coinbase").state() == "closed"
    assert market_ingest().stored == {"usd": 3}


def test_concurrent_requests_for_one_series_queue_it_once():
    eth = Asset.objects.get(symbol="ETH")
    broker_take("")
    barrier = threading.Barrier(8)
    answers: list[bool] = []

    def ask():
        barrier.wait()
        answers.append(history_backfill_request(asset=eth, quote="usd", interval="1h"))

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert answers == [True] * 8  # every one of them is told a backfill is pending
    assert len(broker_take("markets.tasks.series_backfill")) == 1


def test_the_queued_backfill_fills_the_series_and_a_later_request_returns_candles(
    anon_client, history, django_capture_on_commit_callbacks
):
    candles = eth_candles(history.router)
    with django_capture_on_commit_callbacks(execute=True):
        assert anon_client.get(URL).json()["candles"] == []
    (queued,) = broker_take("markets.tasks.series_backfill")

    assert run_queued(queued) > 0

    assert candles.call_count >= 1
    response = anon_client.get(URL)
    body = response.json()
    assert len(body["candles"]) == 5 and body["candles"][0]["time"] < body["candles"][-1]["time"]
    assert body["candles"][-1]["volume"] == recorded("coinbase_exchange_candles.json")[0][5]
    assert "X-History-Backfill" not in response
    assert run_queued(queued) == 0  # run again (a redelivery): the series is covered, nothing is fetched
    assert Candle.objects.filter(asset__symbol="ETH", interval="1h", source="coinbase").count() == 5


def test_failed_backfills_leave_the_ingest_breaker_closed_and_are_not_queued_again_at_once(
    anon_client, history, django_capture_on_commit_callbacks
):
    history.router.get(url__regex=rf"{COINBASE}/products/.+/candles").mock(return_value=httpx.Response(500))
    history.router.get(url__regex=rf"{COINGECKO}/coins/.+/market_chart").mock(
        return_value=httpx.Response(200, html="<html>oops</html>")
    )
    Candle.objects.all().delete()
    urls = [f"/api/v2/market/{s}/history?interval={i}&period=7d" for s in ("BTC", "ETH", "SOL") for i in ("5m", "1h")]
    with django_capture_on_commit_callbacks(execute=True):
        assert all(anon_client.get(url)["X-History-Backfill"] == "pending" for url in urls)
    queued = broker_take("markets.tasks.series_backfill")
    assert len(queued) == 6
    for kwargs in queued:  # more failed history calls than it takes to open a breaker
        assert run_queued(kwargs) == 0

    assert CircuitBreaker("coinbase-history").state() == "open"
    assert CircuitBreaker("coinbase").state() == "closed" and CircuitBreaker("coingecko").state() == "closed"
    with django_capture_on_commit_callbacks(execute=True):
        response = anon_client.get(urls[0])
    assert response.json()["candles"] == [] and "X-History-Backfill" not in response
    assert broker_take("markets.tasks.series_backfill") == []
    assert market_ingest().stored == {"usd": 3}


def test_the_backfill_leaves_a_provider_alone_while_the_ingest_breaker_is_not_closed(history):
    candles = eth_candles(history.router)
    for _ in range(5):
        CircuitBreaker("coinbase").record_failure()
    eth = Asset.objects.get(symbol="ETH")
    chart = history.router.get(url__regex=rf"{COINGECKO}/coins/ethereum/market_chart").mock(
        return_value=httpx.Response(200, json=recorded("coingecko_market_chart.json"))
    )

    run_queued({"asset_id": eth.pk, "quote": "usd", "interval": "1h"})

    assert candles.call_count == 0  # not even the half-open trial: that one is the ingest's
    assert chart.call_count == 1  # CoinGecko, whose breaker is closed, filled it instead
    assert Candle.objects.filter(asset=eth, interval="1h", source="coingecko").exists()


def test_one_queued_backfill_runs_at_a_time_and_the_next_waits_off_the_worker(history):
    from django.core.cache import cache

    from markets.backfill import series_backfill
    from markets.history import BACKFILL_LANE_KEY, BackfillBusy

    candles = eth_candles(history.router)
    eth = Asset.objects.get(symbol="ETH")
    cache.add(BACKFILL_LANE_KEY, "another series", 60)  # another worker is filling a series

    with pytest.raises(BackfillBusy):  # the task retries later (countdown), freeing its worker
        series_backfill(asset_id=eth.pk, quote="usd", interval="1h", budget_seconds=30)
    assert candles.call_count == 0

    cache.delete(BACKFILL_LANE_KEY)
    assert series_backfill(asset_id=eth.pk, quote="usd", interval="1h", budget_seconds=30) == 5
    assert cache.get(BACKFILL_LANE_KEY) is None


def test_history_calls_are_paced_across_processes(monkeypatch):
    from markets.providers.http import SharedPacer

    deadline = time.monotonic() + 10
    workers = [SharedPacer("test-history", 0.5) for _ in range(3)]  # one per "process": state in the cache
    started = []
    for pacer in workers:
        pacer.wait(deadline=deadline)
        started.append(time.monotonic())
    assert started[2] - started[0] >= 0.5  # three calls need at least three half-second slots


def test_a_backfill_that_would_wait_past_its_deadline_gives_up(monkeypatch):
    from markets.providers.http import SharedPacer, UpstreamError

    SharedPacer("test-deadline", 30).wait(deadline=time.monotonic() + 60)
    with pytest.raises(UpstreamError, match="deadline"):
        SharedPacer("test-deadline", 30).wait(deadline=time.monotonic() + 0.1)


def test_embedded_the_in_process_scheduler_fills_the_series_after_the_request(
    anon_client, history, settings, django_capture_on_commit_callbacks
):
    from coinlink.embedded_scheduler import InProcessScheduler

    settings.EMBEDDED = True  # no broker: Celery is eager there, so the request must not run the task itself
    candles = eth_candles(history.router)
    with django_capture_on_commit_callbacks(execute=True):
        response = anon_client.get(URL)
    assert response["X-History-Backfill"] == "pending" and candles.call_count == 0
    assert broker_take("markets.tasks.series_backfill") == []

    InProcessScheduler({})._run_submitted()  # the scheduler thread's next turn

    assert candles.call_count >= 1
    assert len(anon_client.get(URL).json()["candles"]) == 5
