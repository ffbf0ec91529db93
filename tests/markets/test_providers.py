"""Provider parsers against recorded real responses, and every transport fault."""

from __future__ import annotations

import http.server
import os
import threading
import time
from decimal import Decimal

import httpx
import pytest
from prometheus_client import REGISTRY

from markets.providers.breaker import FAILURE_THRESHOLD, BreakerOpen, CircuitBreaker
from markets.providers.coinbase import Coinbase, parse_candles, parse_ticker
from markets.providers.coingecko import CoinGecko, base_url_and_headers, parse_market_chart, parse_markets
from markets.providers.http import (
    MAX_ATTEMPTS,
    Upstream,
    UpstreamError,
    build_client,
    retry_after_seconds,
    shared_client,
)
from tests.markets.conftest import COINBASE, COINGECKO, coingecko_rows, recorded, recorded_bytes


def rejected(provider: str) -> float:
    return REGISTRY.get_sample_value("coinlink_upstream_payloads_rejected_total", {"provider": provider}) or 0.0


def errors(provider: str, reason: str) -> float:
    return REGISTRY.get_sample_value("coinlink_upstream_errors_total", {"provider": provider, "reason": reason}) or 0.0


def far() -> float:
    return time.monotonic() + 60


class Coin:
    def __init__(self, symbol, coingecko_id, product=None, quotes="usd"):
        self.symbol, self.coingecko_id, self.coinbase_product, self.coinbase_quotes = (
            symbol,
            coingecko_id,
            product,
            quotes,
        )

    def coinbase_product_for(self, quote):
        from markets.models import Asset

        return Asset.coinbase_product_for(self, quote)


# --- CoinGecko parsers --------------------------------------------------------------------------


def test_it_parses_the_recorded_coins_markets_row():
    (row,) = parse_markets(recorded("coingecko_coins_markets_usd.json"), by_id={"bitcoin": "BTC"})
    assert row.symbol == "BTC"
    assert row.price == Decimal("49053")
    assert row.change_24h == Decimal("-2246.57482218")
    assert row.change_percent_24h == Decimal("-4.3793")  # rounded to the column's 4 places
    assert row.volume_24h == Decimal("61679663434")
    assert row.market_cap == Decimal("917825524991")
    assert row.last_updated.isoformat() == "2021-05-15T15:59:43.867000+00:00"
    assert row.source == "coingecko"


def test_it_keeps_only_the_ids_it_asked_for():
    rows = parse_markets(recorded("coingecko_coins_markets.json"), by_id={"ethereum": "ETH"})
    assert [r.symbol for r in rows] == ["ETH"]


@pytest.mark.parametrize(
    "bad",
    [
        {"current_price": "abc"},
        {"current_price": None},
        {"current_price": -1},
        {"current_price": 0},
        {"current_price": float("nan")},
        {"current_price": float("inf")},
        {"current_price": True},
        {"current_price": 1e30},
        {"current_price": [1]},
        {"market_cap": -5},
        {"market_cap": 1e40},
        {"price_change_24h": 1e30},
        {"price_change_24h": "1e999999"},
        {"price_change_percentage_24h": -250},
        {"last_updated": "2999-01-01T00:00:00Z"},
        {"last_updated": "yesterday"},
    ],
)
def test_it_drops_a_bad_row_and_keeps_the_good_ones(bad):
    rows = coingecko_rows({"bitcoin": 50000.0, "ethereum": 3000.0})
    rows[1].update(bad)
    before = rejected("coingecko")
    parsed = parse_markets(rows, by_id={"bitcoin": "BTC", "ethereum": "ETH"})
    assert [r.symbol for r in parsed] == ["BTC"]
    assert rejected("coingecko") == before + 1


def test_it_rejects_a_row_missing_its_price():
    rows = coingecko_rows({"bitcoin": 50000.0, "ethereum": 3000.0})
    del rows[0]["current_price"]
    assert [r.symbol for r in parse_markets(rows, by_id={"bitcoin": "BTC", "ethereum": "ETH"})] == ["ETH"]


@pytest.mark.parametrize("payload", [{"error": "x"}, "text", None, 42])
def test_it_rejects_a_payload_that_is_not_a_list(payload):
    before = rejected("coingecko")
    with pytest.raises(UpstreamError) as exc:
        parse_markets(payload, by_id={"bitcoin": "BTC"})
    assert exc.value.reason == "bad_payload"
    assert rejected("coingecko") == before + 1


def test_it_fails_when_every_row_is_bad():
    rows = coingecko_rows({"bitcoin": 50000.0})
    rows[0]["current_price"] = "NaN"
    with pytest.raises(UpstreamError):
        parse_markets(rows, by_id={"bitcoin": "BTC"})


def test_it_buckets_the_recorded_market_chart_into_5_minute_candles():
    candles = parse_market_chart(recorded("coingecko_market_chart_1d.json"), interval_seconds=300)
    points = recorded("coingecko_market_chart_1d.json")["prices"]
    assert 30 <= len(candles) <= len(points)
    first = candles[0]
    assert first.open_time.timestamp() == points[0][0] // 1000 // 300 * 300
    assert first.open == Decimal(str(points[0][1]))
    assert all(c.low <= c.open <= c.high and c.low <= c.close <= c.high for c in candles)
    assert all(c.volume is None for c in candles)
    assert [c.open_time for c in candles] == sorted(c.open_time for c in candles)


def test_it_buckets_the_recorded_daily_market_chart():
    candles = parse_market_chart(recorded("coingecko_market_chart.json"), interval_seconds=86400)
    assert 90 <= len(candles) <= 91


def test_it_drops_bad_market_chart_points():
    payload = {"prices": [[1621003519770, 50675.2], [1621003958620, "x"], "junk", [1621004333667, -3]]}
    assert len(parse_market_chart(payload, interval_seconds=300)) == 1


def test_it_picks_the_demo_or_pro_key_header_and_host(settings):
    settings.COINGECKO_API_KEY = "k"
    settings.COINGECKO_API_PLAN = "demo"
    assert base_url_and_headers() == (COINGECKO, {"x-cg-demo-api-key": "k"})
    settings.COINGECKO_API_PLAN = "pro"
    assert base_url_and_headers() == ("https://pro-api.coingecko.com/api/v3", {"x-cg-pro-api-key": "k"})
    settings.COINGECKO_BASE_URL = "http://proxy.local/cg"
    assert base_url_and_headers() == ("http://proxy.local/cg", {"x-cg-pro-api-key": "k"})
    settings.COINGECKO_API_KEY = ""
    assert base_url_and_headers()[1] == {}


# --- Coinbase parsers ---------------------------------------------------------------------------


def test_it_parses_the_recorded_coinbase_ticker_and_stats():
    row = parse_ticker(recorded("coinbase_exchange_ticker.json"), recorded("coinbase_exchange_stats.json"), symbol="X")
    assert row.price == Decimal("73367.8")
    assert row.bid == Decimal("73360.34") and row.ask == Decimal("73369.19")
    assert row.change_24h == Decimal("73367.8") - Decimal("1157.45")
    assert row.volume_24h == (Decimal("40329.34314175") * Decimal("73367.8")).quantize(Decimal("0.01"))
    assert row.market_cap is None
    assert row.source == "coinbase"


def test_it_rejects_a_crossed_coinbase_book():
    ticker = {**recorded("coinbase_exchange_ticker.json"), "bid": "80000", "ask": "70000"}
    with pytest.raises(ValueError, match="crossed"):
        parse_ticker(ticker, recorded("coinbase_exchange_stats.json"), symbol="BTC")


def test_it_parses_recorded_coinbase_candles_oldest_first():
    raw = recorded("coinbase_exchange_candles.json")
    candles = parse_candles(raw)
    assert len(candles) == len(raw) == 40
    newest = raw[0]  # [time, low, high, open, close, volume], newest first
    last = candles[-1]
    assert last.open_time.timestamp() == newest[0]
    assert (last.low, last.high, last.open, last.close) == tuple(Decimal(str(x)) for x in newest[1:5])
    assert last.volume == Decimal(str(newest[5]))
    assert candles[0].open_time < candles[-1].open_time


def test_it_parses_the_one_row_coinbase_hourly_candle():
    (candle,) = parse_candles(recorded("coinbase_exchange_candles_1h.json"))
    assert candle.open_time.timestamp() == 1710327600


def test_it_drops_inconsistent_coinbase_candles():
    raw = [[1669248000, 1300, 1200, 1250, 1250, 1], [1669161600, 1127.76, 1191.31, 1139.48, 1184.67, 4]]
    assert [c.open_time.timestamp() for c in parse_candles(raw)] == [1669161600]


# --- Transport faults ---------------------------------------------------------------------------


def client() -> Upstream:
    return Upstream("coingecko", COINGECKO)


def test_it_retries_a_500_with_backoff_then_gives_up(upstream, waits):
    route = upstream.get(f"{COINGECKO}/ping").mock(
        return_value=httpx.Response(500, content=recorded_bytes("coingecko_error_500.json"))
    )
    with pytest.raises(UpstreamError) as exc:
        client().get_json("/ping", endpoint="ping", deadline=far())
    assert exc.value.reason == "http_5xx"
    assert route.call_count == MAX_ATTEMPTS
    assert len(waits) == MAX_ATTEMPTS - 1
    assert all(0 <= w <= 8 for w in waits)


def test_it_recovers_when_a_retry_succeeds(upstream):
    upstream.get(f"{COINGECKO}/ping").mock(
        side_effect=[httpx.Response(503, text="busy"), httpx.Response(200, json={"gecko_says": "(V3) To the Moon!"})]
    )
    assert client().get_json("/ping", endpoint="ping", deadline=far()) == {"gecko_says": "(V3) To the Moon!"}


def test_it_honours_retry_after_on_429(upstream, waits):
    upstream.get(f"{COINGECKO}/ping").mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "7"}, content=recorded_bytes("coingecko_error_429.json")),
            httpx.Response(200, json={"ok": 1}),
        ]
    )
    assert client().get_json("/ping", endpoint="ping", deadline=far()) == {"ok": 1}
    assert waits == [7.0]


def test_it_never_sleeps_past_the_poll_period_and_cools_down(upstream, waits):
    route = upstream.get(f"{COINGECKO}/ping").mock(
        return_value=httpx.Response(
            429, headers={"Retry-After": "119"}, content=recorded_bytes("coingecko_error_429.json")
        )
    )
    with pytest.raises(UpstreamError) as exc:
        client().get_json("/ping", endpoint="ping", deadline=time.monotonic() + 25)
    assert exc.value.reason == "http_429"
    assert waits == [] and route.call_count == 1
    # Every worker now respects the provider's Retry-After instead of calling again.
    with pytest.raises(UpstreamError) as again:
        client().get_json("/ping", endpoint="ping", deadline=far())
    assert again.value.reason == "breaker_open"
    assert route.call_count == 1


def test_it_treats_an_html_429_like_any_429(upstream, waits):
    upstream.get(f"{COINGECKO}/ping").mock(
        side_effect=[
            httpx.Response(429, html="<html><body>Rate limited</body></html>"),
            httpx.Response(200, json={"ok": 1}),
        ]
    )
    assert client().get_json("/ping", endpoint="ping", deadline=far()) == {"ok": 1}
    assert waits == [5.0]


def test_it_does_not_retry_a_4xx(upstream):
    route = upstream.get(f"{COINGECKO}/coins/markets").mock(
        return_value=httpx.Response(422, content=recorded_bytes("coingecko_error_422_missing_vs_currency.json"))
    )
    with pytest.raises(UpstreamError) as exc:
        client().get_json("/coins/markets", endpoint="coins_markets", deadline=far())
    assert exc.value.reason == "http_4xx" and route.call_count == 1


def test_it_turns_a_timeout_into_an_upstream_error(upstream):
    route = upstream.get(f"{COINGECKO}/ping").mock(side_effect=httpx.ReadTimeout("slow"))
    before = errors("coingecko", "timeout")
    with pytest.raises(UpstreamError) as exc:
        client().get_json("/ping", endpoint="ping", deadline=far())
    assert exc.value.reason == "timeout"
    assert route.call_count == MAX_ATTEMPTS
    assert errors("coingecko", "timeout") == before + MAX_ATTEMPTS


def test_it_turns_a_refused_connection_into_an_upstream_error(upstream):
    upstream.get(f"{COINGECKO}/ping").mock(side_effect=httpx.ConnectError("refused"))
    with pytest.raises(UpstreamError) as exc:
        client().get_json("/ping", endpoint="ping", deadline=far())
    assert exc.value.reason == "connect"


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(
            200,
            content=recorded_bytes("coingecko_coins_markets_usd.json")[:-40],
            headers={"Content-Type": "application/json"},
        ),
        httpx.Response(200, html="<!DOCTYPE html><html><title>Just a moment...</title></html>"),
        httpx.Response(200, content=b"", headers={"Content-Type": "application/json"}),
        httpx.Response(200, content=b"   ", headers={"Content-Type": "application/json"}),
    ],
    ids=["truncated-json", "html-error-page", "empty-body", "blank-body"],
)
def test_it_rejects_unusable_bodies(upstream, response):
    upstream.get(f"{COINGECKO}/coins/markets").mock(return_value=response)
    with pytest.raises(UpstreamError) as exc:
        CoinGecko(client()).fetch_tickers(assets=[Coin("BTC", "bitcoin")], quote="usd", deadline=far())
    assert exc.value.reason == "bad_payload"


class _CountingUpstream(http.server.BaseHTTPRequestHandler):
    """A keep-alive JSON server on loopback that counts the TCP connections it accepts."""

    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        self.server.connections += 1

    def do_GET(self):
        body = b"[]"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def counting_upstream():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _CountingUpstream)
    server.daemon_threads = True
    server.connections = 0
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def test_every_poll_reuses_the_process_s_connection_to_the_provider(counting_upstream):
    base = f"http://127.0.0.1:{counting_upstream.server_port}"

    for _ in range(3):  # each poll builds its providers afresh (providers_ordered)
        assert Upstream("coingecko", base).get_json("/coins/markets", endpoint="markets", deadline=far()) == []

    assert counting_upstream.connections == 1


@pytest.mark.slow
def test_the_connection_outlives_httpx_s_five_second_idle_default(counting_upstream):
    base = f"http://127.0.0.1:{counting_upstream.server_port}"
    upstream = Upstream("coingecko", base, client=build_client())

    upstream.get_json("/coins/markets", endpoint="markets", deadline=far())
    time.sleep(5.5)  # httpx would have dropped it by now
    upstream.get_json("/coins/markets", endpoint="markets", deadline=far())

    assert counting_upstream.connections == 1


def test_a_forked_worker_process_builds_its_own_client():
    parent = shared_client()
    assert shared_client() is parent
    readable, writable = os.pipe()
    pid = os.fork()
    if pid == 0:  # Celery's prefork child: the parent's pooled sockets are not its to use
        try:
            os.write(writable, b"own" if shared_client() is not parent else b"parent's")
        finally:
            os._exit(0)
    os.close(writable)
    os.waitpid(pid, 0)
    assert os.read(readable, 16) == b"own"
    os.close(readable)


def test_it_uses_the_configured_timeouts(settings):
    settings.UPSTREAM_CONNECT_TIMEOUT, settings.UPSTREAM_READ_TIMEOUT = 1.5, 4.0
    timeout = build_client().timeout
    assert (timeout.connect, timeout.read) == (1.5, 4.0)


@pytest.mark.parametrize(
    ("header", "expected"), [("7", 7.0), (None, None), ("soon", None), ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0)]
)
def test_it_reads_retry_after_as_seconds_or_a_date(header, expected):
    assert retry_after_seconds(header) == expected


# --- Circuit breaker ----------------------------------------------------------------------------


def test_it_opens_the_breaker_after_consecutive_failures_and_refuses_fast(upstream):
    route = upstream.get(f"{COINGECKO}/ping").mock(return_value=httpx.Response(500))
    up = client()
    for _ in range(FAILURE_THRESHOLD):
        with pytest.raises(UpstreamError):
            up.get_json("/ping", endpoint="ping", deadline=far())
    calls = route.call_count
    assert CircuitBreaker("coingecko").state() == "open"
    with pytest.raises(UpstreamError) as exc:
        client().get_json("/ping", endpoint="ping", deadline=far())  # another process, same shared state
    assert exc.value.reason == "breaker_open"
    assert route.call_count == calls


def _opened_30s_ago(monkeypatch, provider="coingecko") -> CircuitBreaker:
    breaker = CircuitBreaker(provider)
    for _ in range(FAILURE_THRESHOLD):
        breaker.record_failure()
    opened = time.time()
    monkeypatch.setattr("markets.providers.breaker.time.time", lambda: opened + 31)
    return breaker


def test_it_lets_exactly_one_trial_through_when_half_open(monkeypatch):
    breaker = _opened_30s_ago(monkeypatch)
    assert breaker.state() == "half_open"
    breaker.before_call()  # this worker holds the trial
    with pytest.raises(BreakerOpen):
        CircuitBreaker("coingecko").before_call()  # another worker waits for its outcome


def test_it_closes_the_breaker_when_the_trial_succeeds(upstream, monkeypatch):
    breaker = _opened_30s_ago(monkeypatch)
    upstream.get(f"{COINGECKO}/ping").mock(return_value=httpx.Response(200, json={"gecko_says": "(V3) To the Moon!"}))
    assert client().get_json("/ping", endpoint="ping", deadline=far()) == {"gecko_says": "(V3) To the Moon!"}
    assert breaker.state() == "closed" and breaker.failures() == 0


def test_it_reopens_when_the_trial_fails():
    breaker = CircuitBreaker("coinbase")
    for _ in range(FAILURE_THRESHOLD):
        breaker.record_failure()
    breaker.record_failure()
    assert breaker.state() == "open"


def test_workers_failing_at_once_log_the_opening_once(caplog, monkeypatch):
    from django.core.cache import cache

    for _ in range(FAILURE_THRESHOLD - 1):
        CircuitBreaker("coinbase").record_failure()
    barrier = threading.Barrier(6)

    class Together:
        """The real cache; every worker counts its failure before any of them decides to open."""

        def __getattr__(self, name):
            return getattr(cache, name)

        def incr(self, key):
            value = cache.incr(key)
            barrier.wait(5)
            return value

    monkeypatch.setattr("markets.providers.breaker.cache", Together())

    def fail():
        CircuitBreaker("coinbase").record_failure()  # each its own instance: state only in the cache

    threads = [threading.Thread(target=fail) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert CircuitBreaker("coinbase").state() == "open"
    assert len([r for r in caplog.records if "circuit opened" in r.getMessage()]) == 1


# --- Coinbase fetch -----------------------------------------------------------------------------


def test_it_fetches_coinbase_tickers_only_for_listed_products(upstream):
    upstream.get(f"{COINBASE}/products/BTC-EUR/ticker").mock(
        return_value=httpx.Response(200, json=recorded("coinbase_exchange_ticker.json"))
    )
    upstream.get(f"{COINBASE}/products/BTC-EUR/stats").mock(
        return_value=httpx.Response(200, json=recorded("coinbase_exchange_stats.json"))
    )
    coins = [
        Coin("BTC", "bitcoin", "BTC-USD", "usd,eur,gbp"),
        Coin("AVAX", "avalanche-2", "AVAX-USD"),
        Coin("BNB", "binancecoin"),
    ]
    rows = Coinbase(threads=2).fetch_tickers(assets=coins, quote="eur", deadline=far())
    assert [r.symbol for r in rows] == ["BTC"]


def test_it_pages_coinbase_candles_within_300_per_call(upstream):
    from datetime import UTC, datetime, timedelta

    route = upstream.get(f"{COINBASE}/products/BTC-USD/candles").mock(
        return_value=httpx.Response(200, json=recorded("coinbase_exchange_candles_1h.json"))
    )
    end = datetime(2024, 3, 14, tzinfo=UTC)
    rows = Coinbase().fetch_candles_between(
        product="BTC-USD", interval="1h", start=end - timedelta(days=30), end=end, deadline=far()
    )
    assert route.call_count == 3  # 720 hourly candles
    assert len(rows) == 1  # the same recorded row each time, stored once
    assert route.calls[0].request.url.params["granularity"] == "3600"
