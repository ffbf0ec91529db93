"""Market test helpers: recorded upstream bodies, a respx-faked upstream, no real sleeping."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import respx

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "upstream"
COINGECKO = "https://api.coingecko.com/api/v3"
COINBASE = "https://api.exchange.coinbase.com"


def recorded(name: str):
    """A recorded upstream response body, parsed."""
    return json.loads((FIXTURES / name).read_text())


def recorded_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def coingecko_rows(prices: dict[str, float]) -> list[dict]:
    """/coins/markets rows for `prices` (coingecko id -> price), each a copy of the recorded BTC/USD row
    with id, symbol and price (and proportional change) replaced."""
    template = recorded("coingecko_coins_markets_usd.json")[0]
    rows = []
    for coin_id, price in prices.items():
        row = copy.deepcopy(template)
        scale = price / template["current_price"]
        row.update(
            id=coin_id,
            symbol=coin_id[:4],
            name=coin_id.title(),
            current_price=price,
            price_change_24h=template["price_change_24h"] * scale,
            market_cap=template["market_cap"] * scale,
            total_volume=template["total_volume"] * scale,
        )
        rows.append(row)
    return rows


@pytest.fixture
def waits(monkeypatch):
    """Backoff and Retry-After sleeps are recorded instead of slept."""
    slept: list[float] = []
    monkeypatch.setattr("markets.providers.http.sleep", slept.append)
    monkeypatch.setattr("markets.providers.coinbase.REQUESTS_PER_SECOND", 10_000.0)
    return slept


@pytest.fixture
def upstream(waits):
    """The outside world, faked at the HTTP level: every unmatched request fails the test."""
    with respx.mock(assert_all_called=False) as router:
        yield router


@pytest.fixture
def usd_only(settings):
    settings.MARKET_QUOTES = ("usd",)
    return settings


class FakeUpstream:
    """CoinGecko and Coinbase as the ingest sees them, answering from recorded bodies.

    `prices` (symbol -> price) drives /coins/markets (rows copied from the recorded BTC row);
    Coinbase answers the products in `coinbase_products` (None: all) with the recorded ticker and
    stats bodies, and 404 for the others.
    """

    def __init__(self, router):
        from markets.models import Asset

        self.router = router
        self.ids = dict(Asset.objects.values_list("coingecko_id", "symbol"))
        self.prices: dict[str, float] = {}
        self.coingecko_down = False
        self.coinbase_down = False
        self.unreachable = False  # every provider refuses the connection (offline)
        self.coinbase_products: set[str] | None = set()
        self.delay = 0.0  # seconds CoinGecko takes to answer (a slow upstream keeps a run in flight)
        self.coingecko = router.get(f"{COINGECKO}/coins/markets").mock(side_effect=self._markets)
        self.coinbase_ticker = router.get(url__regex=rf"{COINBASE}/products/[A-Z0-9]+-[A-Z]+/ticker").mock(
            side_effect=lambda request: self._coinbase(request, "coinbase_exchange_ticker.json")
        )
        self.coinbase_stats = router.get(url__regex=rf"{COINBASE}/products/[A-Z0-9]+-[A-Z]+/stats").mock(
            side_effect=lambda request: self._coinbase(request, "coinbase_exchange_stats.json")
        )

    def _markets(self, request):
        import httpx

        if self.delay:
            import time

            time.sleep(self.delay)
        self._refuse(request)
        if self.coingecko_down:
            return httpx.Response(500, content=recorded_bytes("coingecko_error_500.json"))
        wanted = request.url.params["ids"].split(",")
        symbols = {coin_id: self.ids[coin_id] for coin_id in wanted}
        prices = {c: self.prices[s] for c, s in symbols.items() if s in self.prices}
        return httpx.Response(200, json=coingecko_rows(prices))

    def _refuse(self, request):
        import httpx

        if self.unreachable:
            raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    def _coinbase(self, request, name):
        import httpx

        self._refuse(request)
        if self.coinbase_down:
            return httpx.Response(503, text="<html>down</html>", headers={"Content-Type": "text/html"})
        product = request.url.path.split("/")[2]
        if self.coinbase_products is not None and product not in self.coinbase_products:
            return httpx.Response(404, json={"message": "NotFound"})
        return httpx.Response(200, content=recorded_bytes(name), headers={"Content-Type": "application/json"})


@pytest.fixture
def fake(upstream, db):
    return FakeUpstream(upstream)


@pytest.fixture
def announced():
    """Every tickers_changed the ingest sends, as (quote, tickers, previous_prices, observed_at)."""
    from markets.signals import tickers_changed

    calls: list[dict] = []

    def receiver(sender, **kwargs):
        calls.append(kwargs)

    tickers_changed.connect(receiver, dispatch_uid="tests.markets.announced")
    yield calls
    tickers_changed.disconnect(dispatch_uid="tests.markets.announced")
