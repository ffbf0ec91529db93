"""The market REST endpoints as a client sees them (contract: /work/shared/API.md, Market)."""

from __future__ import annotations

import json

import pytest

from markets import snapshot
from markets.services import market_ingest

pytestmark = pytest.mark.django_db

TICKER_KEYS = {
    "symbol", "name", "price", "change_24h", "change_percent_24h", "volume_24h",
    "market_cap", "rank", "last_updated", "source", "stale",
}  # fmt: skip


@pytest.fixture
def market(fake, usd_only, django_capture_on_commit_callbacks):
    """Three assets priced by CoinGecko, BTC also by Coinbase (bid/ask) as the fallback would."""
    fake.prices = {"BTC": 50000.0, "ETH": 3000.0, "SOL": 150.0}
    with django_capture_on_commit_callbacks(execute=True):
        market_ingest()
    return fake


def get(client, url, **headers):
    return client.get(url, **{f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()})


# --- ticker -------------------------------------------------------------------------------------


def test_it_lists_tickers_by_rank_with_caching_headers(anon_client, market, settings):
    response = anon_client.get("/api/v2/market/ticker")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response["Cache-Control"] == f"public, max-age={settings.MARKET_POLL_SECONDS}"
    body = response.json()
    assert [t["symbol"] for t in body["data"]] == ["BTC", "ETH", "SOL"]
    assert set(body["data"][0]) == TICKER_KEYS
    assert body["stale"] is False and body["timestamp"].endswith("Z")


def test_it_answers_304_when_the_etag_still_matches(anon_client, market):
    etag = anon_client.get("/api/v2/market/ticker")["ETag"]
    response = get(anon_client, "/api/v2/market/ticker", if_none_match=etag)
    assert response.status_code == 304 and response.content == b"" and response["ETag"] == etag
    assert get(anon_client, "/api/v2/market/ticker", if_none_match='"other"').status_code == 200
    assert get(anon_client, "/api/v2/market/ticker", if_none_match=f'"x", W/{etag}').status_code == 304


def test_it_changes_the_etag_when_prices_change(anon_client, market, django_capture_on_commit_callbacks):
    etag = anon_client.get("/api/v2/market/ticker")["ETag"]
    market.prices["BTC"] = 50001.0
    with django_capture_on_commit_callbacks(execute=True):
        market_ingest()
    assert get(anon_client, "/api/v2/market/ticker", if_none_match=etag).status_code == 200


def test_it_filters_by_symbols_and_limit(anon_client, market):
    body = anon_client.get("/api/v2/market/ticker?symbols=sol,btc,NOPE").json()
    assert [t["symbol"] for t in body["data"]] == ["BTC", "SOL"]
    body = anon_client.get("/api/v2/market/ticker?limit=2").json()
    assert [t["symbol"] for t in body["data"]] == ["BTC", "ETH"]
    assert anon_client.get("/api/v2/market/ticker?symbols=BTC").json()["data"][0]["price"] == 50000.0


def test_the_cached_path_costs_no_query_and_no_json_encoding(
    anon_client, market, monkeypatch, django_assert_num_queries
):
    anon_client.get("/api/v2/market/ticker")  # warm this process's copy

    def forbidden(*args, **kwargs):
        raise AssertionError("the hot path must not encode JSON")

    monkeypatch.setattr("markets.snapshot.json.dumps", forbidden)
    monkeypatch.setattr("markets.api.views.json.dumps", forbidden)
    with django_assert_num_queries(0):
        assert anon_client.get("/api/v2/market/ticker").status_code == 200
        assert anon_client.get("/api/v2/market/BTC/price").status_code == 200
        assert anon_client.get("/api/v2/market/ticker?symbols=BTC,ETH&limit=1").status_code == 200


def test_it_serves_another_process_snapshot_from_the_cache(anon_client, market, django_assert_num_queries):
    snapshot._local.clear()  # as a fresh worker process would start
    with django_assert_num_queries(0):
        body = anon_client.get("/api/v2/market/ticker").json()
    assert body["data"][0]["symbol"] == "BTC"


def test_it_starts_cold_with_an_empty_stale_list(anon_client, usd_only):
    response = anon_client.get("/api/v2/market/ticker")
    assert response.status_code == 200
    assert response.json()["data"] == [] and response.json()["stale"] is True


def test_it_marks_old_prices_stale_but_still_serves_them(anon_client, market, settings, monkeypatch):
    import time

    later = time.time() + settings.MARKET_STALE_SECONDS + 5
    monkeypatch.setattr("markets.snapshot.time.time", lambda: later)
    body = anon_client.get("/api/v2/market/ticker").json()
    assert body["stale"] is True
    assert all(t["stale"] for t in body["data"]) and body["data"][0]["price"] == 50000.0
    assert anon_client.get("/api/v2/market/BTC/price").json()["stale"] is True


def test_a_bad_token_does_not_hide_public_data(anon_client, market):
    response = anon_client.get("/api/v2/market/ticker", HTTP_AUTHORIZATION="Bearer not-a-token")
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("vs=jpy", "vs"),
        ("vs=", "vs"),
        ("limit=abc", "limit"),
        ("limit=0", "limit"),
        ("limit=-1", "limit"),
        ("limit=1.5", "limit"),
        ("limit=" + "9" * 30, "limit"),
        ("symbols=B$C", "symbols"),
        ("symbols=,,,", "symbols"),
        ("symbols=" + "A" * 40, "symbols"),
        ("symbols=%E2%82%BF", "symbols"),
        ("symbols=" + ",".join(f"S{i}" for i in range(200)), "symbols"),
    ],
)
def test_it_rejects_bad_parameters_in_the_error_shape(anon_client, usd_only, query, field):
    response = anon_client.get(f"/api/v2/market/ticker?{query}")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "validation_error" and field in body["errors"] and body["trace_id"]


def test_it_rejects_nul_bytes(anon_client):
    response = anon_client.get("/api/v2/market/ticker?symbols=BTC%00")
    assert response.status_code == 400 and response.json()["code"] == "invalid_characters"


@pytest.mark.parametrize("path", ["/api/v2/market/ticker/", "/api/v2/market/BTC/price/", "/api/bitcoin/price/"])
def test_it_answers_with_a_trailing_slash_too(anon_client, market, path):
    assert anon_client.get(path).status_code == 200


def test_it_refuses_writes_in_the_error_shape(anon_client):
    response = anon_client.post("/api/v2/market/ticker", {}, format="json")
    assert response.status_code == 405 and response.json()["code"] == "method_not_allowed"


# --- price --------------------------------------------------------------------------------------


def test_it_returns_one_ticker_case_insensitively(anon_client, market):
    response = anon_client.get("/api/v2/market/eth/price")
    assert response.status_code == 200
    assert response.json()["symbol"] == "ETH" and set(response.json()) == TICKER_KEYS
    assert (
        response["ETag"]
        and get(anon_client, "/api/v2/market/ETH/price", if_none_match=response["ETag"]).status_code == 304
    )


@pytest.mark.parametrize("symbol", ["NOPE", "B$C", "X" * 40])
def test_it_404s_an_unknown_symbol(anon_client, market, symbol):
    response = anon_client.get(f"/api/v2/market/{symbol}/price")
    assert response.status_code == 404 and response.json()["code"] == "unknown_symbol"


def test_it_503s_a_known_asset_without_a_price_yet(anon_client, market):
    response = anon_client.get("/api/v2/market/BNB/price")
    assert response.status_code == 503 and response["Retry-After"]
    assert response.json()["code"] == "market_data_unavailable"


def test_it_rejects_an_unconfigured_quote(anon_client, market):
    assert anon_client.get("/api/v2/market/BTC/price?vs=eur").status_code == 400  # this test runs USD only


# --- history ------------------------------------------------------------------------------------


def test_it_serves_tick_candles_oldest_first(anon_client, market):
    body = anon_client.get("/api/v2/market/BTC/history?interval=5m&period=1d").json()
    assert body["symbol"] == "BTC" and body["interval"] == "5m" and body["vs"] == "usd"
    (candle,) = body["candles"]
    assert set(candle) == {"time", "open", "high", "low", "close", "volume"}
    assert candle["close"] == 50000.0 and candle["volume"] is None


@pytest.mark.parametrize(
    "query",
    ["interval=5m&period=1y", "interval=5m&period=30d", "interval=1h&period=1y", "interval=1d&period=1d",
     "interval=2h&period=7d", "interval=1h&period=2y", "interval=1h&period=7d&vs=jpy"],
)  # fmt: skip
def test_it_rejects_history_combinations_that_make_no_sense(anon_client, market, query):
    response = anon_client.get(f"/api/v2/market/BTC/history?{query}")
    assert response.status_code == 400 and response.json()["code"] == "validation_error"


def test_it_404s_the_history_of_an_unknown_symbol(anon_client, market):
    assert anon_client.get("/api/v2/market/NOPE/history").status_code == 404


# --- assets, stats, movers, legacy ---------------------------------------------------------------


def test_it_pages_assets_with_their_tickers(anon_client, market):
    body = anon_client.get("/api/v2/market/assets?page_size=2").json()
    assert body["count"] == 50 and len(body["results"]) == 2 and body["next"]
    btc = body["results"][0]
    assert set(btc) == TICKER_KEYS | {"id", "coingecko_id", "coinbase_product", "is_active"}
    assert (btc["symbol"], btc["coingecko_id"], btc["coinbase_product"], btc["price"]) == (
        "BTC", "bitcoin", "BTC-USD", 50000.0,
    )  # fmt: skip
    usdt = anon_client.get("/api/v2/market/assets?search=tether").json()["results"][0]
    assert usdt["coinbase_product"] is None and usdt["price"] is None and usdt["stale"] is True


def test_it_searches_and_orders_assets(anon_client, market):
    assert [a["symbol"] for a in anon_client.get("/api/v2/market/assets?search=bitcoin").json()["results"]] == [
        "BTC", "WBTC", "BCH",
    ]  # fmt: skip
    by_volume = anon_client.get("/api/v2/market/assets?ordering=-volume_24h&page_size=3").json()["results"]
    assert [a["symbol"] for a in by_volume] == ["BTC", "ETH", "SOL"]
    assert anon_client.get("/api/v2/market/assets?ordering=-change_percent_24h").status_code == 200


@pytest.mark.parametrize("query", ["ordering=price;drop", "search=" + "x" * 60, "vs=jpy"])
def test_it_rejects_bad_asset_queries(anon_client, market, query):
    assert anon_client.get(f"/api/v2/market/assets?{query}").status_code == 400


def test_it_caps_the_page_size_and_404s_a_page_past_the_end(anon_client, market):
    assert len(anon_client.get("/api/v2/market/assets?page_size=1000").json()["results"]) == 50
    response = anon_client.get("/api/v2/market/assets?page=999")
    assert response.status_code == 404 and "code" in response.json()


def test_it_sums_the_market_stats(anon_client, market):
    body = anon_client.get("/api/v2/market/stats").json()
    assert body["assets_tracked"] == 3
    total = body["total_market_cap"]
    assert total > 0 and 0 < body["btc_dominance"] < 100
    btc_cap = anon_client.get("/api/v2/market/BTC/price").json()["market_cap"]
    assert body["btc_dominance"] == pytest.approx(btc_cap / total * 100, rel=1e-3)
    assert anon_client.get("/api/v2/market/stats")["ETag"]


def test_it_lists_movers_by_24h_change(anon_client, market, django_capture_on_commit_callbacks):
    body = anon_client.get("/api/v2/market/movers?limit=2").json()
    assert body["gainers"] == []  # the recorded row fell 4.38 %, and so do its copies
    assert len(body["losers"]) == 2 and all(t["change_percent_24h"] < 0 for t in body["losers"])
    assert anon_client.get("/api/v2/market/movers?limit=500").status_code == 400


def test_it_keeps_the_legacy_bitcoin_price_shape(anon_client, market):
    body = anon_client.get("/api/bitcoin/price").json()
    assert set(body) == {"data", "timestamp", "cached"}
    assert set(body["data"]) == {"symbol", "price", "change_24h", "volume", "timestamp", "bid", "ask"}
    assert body["data"]["symbol"] == "BTC" and body["data"]["price"] == 50000.0
    assert body["data"]["change_24h"] == pytest.approx(-4.3793)  # the percent change, legacy naming
    assert body["cached"] is True


def test_the_schema_documents_every_market_endpoint(anon_client):
    response = anon_client.get("/api/schema?format=json")
    assert response.status_code == 200
    paths = json.loads(response.content)["paths"]
    for path in (
        "/api/v2/market/ticker", "/api/v2/market/assets", "/api/v2/market/stats", "/api/v2/market/movers",
        "/api/v2/market/{symbol}/price", "/api/v2/market/{symbol}/history", "/api/bitcoin/price",
    ):  # fmt: skip
        assert "get" in paths[path], path


def test_the_bench_baseline_view_is_not_routed_by_default(anon_client):
    response = anon_client.get("/api/bench/constant")
    assert response.status_code == 404 and response.json()["code"] == "not_found"


def test_the_cached_path_skips_redis_between_rechecks(anon_client, market, monkeypatch):
    from markets import snapshot as snap

    anon_client.get("/api/v2/market/ticker")
    checked = snap._checked["usd"]
    monkeypatch.setattr("markets.snapshot.time.monotonic", lambda: checked + snap.LOCAL_RECHECK_SECONDS / 2)

    def no_cache(*args, **kwargs):
        raise AssertionError("the hot path must not call the cache within the recheck period")

    monkeypatch.setattr("markets.snapshot.cache.get", no_cache)
    assert anon_client.get("/api/v2/market/ticker").status_code == 200
    assert anon_client.get("/api/v2/market/ETH/price").status_code == 200
