"""Coinbase Exchange: /products/{id}/ticker + /stats per product (fallback tickers), /candles for history.

Only products Coinbase really lists are asked for (Asset.coinbase_product_for). Calls are paced
below the public limit (10 requests/s per IP) and run on a few threads so a full fallback cycle
fits in one poll period.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from django.conf import settings

from markets.providers import validate as v
from markets.providers.http import Pacer, SharedPacer, Upstream, UpstreamError
from markets.providers.validate import CandleRow, Rejected, TickerRow
from markets.vocabulary import INTERVAL_SECONDS

if TYPE_CHECKING:
    from collections.abc import Sequence

    from markets.models import Asset

NAME = "coinbase"
REQUESTS_PER_SECOND = 8.0
HISTORY_CALL_INTERVAL = 1.0  # history across every process: with the ingest's 8/s, under the 10/s per IP
MAX_CANDLES_PER_CALL = 300


class Coinbase:
    name = NAME

    def __init__(self, upstream: Upstream | None = None, *, threads: int = 4, lane: str = "ingest"):
        """The history lane is paced across every process and has its own breaker (see `Upstream`)."""
        self.upstream = upstream or Upstream(NAME, settings.COINBASE_EXCHANGE_BASE_URL, lane=lane)
        self.threads = threads
        history = lane != "ingest"
        self.pacer = SharedPacer(f"{NAME}-{lane}", HISTORY_CALL_INTERVAL) if history else Pacer(1 / REQUESTS_PER_SECOND)

    def _get(self, path: str, params: dict | None, *, endpoint: str, deadline: float):
        self.pacer.wait(deadline=deadline)
        if time.monotonic() >= deadline:
            raise UpstreamError(NAME, "deadline", "poll period used up")
        return self.upstream.get_json(path, params, endpoint=endpoint, deadline=deadline)

    def fetch_tickers(self, *, assets: Sequence[Asset], quote: str, deadline: float) -> list[TickerRow]:
        """Tickers for the `assets` Coinbase lists in `quote`; raises UpstreamError only if every product failed."""
        products = {a.coinbase_product_for(quote): a.symbol for a in assets}
        products.pop(None, None)
        if not products:
            return []
        with ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="coinbase") as pool:
            results = list(pool.map(lambda item: self._ticker(*item, deadline=deadline), products.items()))
        rows = [r for r in results if isinstance(r, TickerRow)]
        errors = [r for r in results if isinstance(r, UpstreamError)]
        if errors and not rows:
            raise errors[0]
        return rows

    def _ticker(self, product: str, symbol: str, *, deadline: float) -> TickerRow | UpstreamError | None:
        try:
            ticker = self._get(f"/products/{product}/ticker", None, endpoint="ticker", deadline=deadline)
            stats = self._get(f"/products/{product}/stats", None, endpoint="stats", deadline=deadline)
            return parse_ticker(ticker, stats, symbol=symbol)
        except UpstreamError as exc:
            return exc
        except Rejected as exc:
            v.reject(NAME, f"ticker {product}", exc)
            return None

    def serves(self, asset: Asset, quote: str) -> bool:
        """Only where Coinbase lists the product."""
        return asset.coinbase_product_for(quote) is not None

    def candle_days(self, interval: str) -> int | None:
        return None

    def fetch_candles(self, *, asset: Asset, quote: str, interval: str, days: int, deadline: float) -> list[CandleRow]:
        product = asset.coinbase_product_for(quote)
        if product is None:  # not served
            return []
        end = datetime.now(tz=UTC)
        return self.fetch_candles_between(
            product=product, interval=interval, start=end - timedelta(days=days), end=end, deadline=deadline
        )

    def fetch_candles_between(
        self, *, product: str, interval: str, start: datetime, end: datetime, deadline: float
    ) -> list[CandleRow]:
        """Candles in [start, end), paged 300 at a time, oldest first."""
        step = INTERVAL_SECONDS[interval]
        rows: dict[datetime, CandleRow] = {}
        window_start = start
        while window_start < end:
            window_end = min(end, window_start + timedelta(seconds=step * MAX_CANDLES_PER_CALL))
            payload = self._get(
                f"/products/{product}/candles",
                {"granularity": step, "start": window_start.isoformat(), "end": window_end.isoformat()},
                endpoint="candles",
                deadline=deadline,
            )
            for row in parse_candles(payload):
                rows[row.open_time] = row
            window_start = window_end
        return [rows[t] for t in sorted(rows)]


def parse_ticker(ticker, stats, *, symbol: str) -> TickerRow:
    """/ticker gives price, bid, ask and time; /stats the 24 h open and base volume."""
    if not isinstance(ticker, dict) or not isinstance(stats, dict):
        raise Rejected("ticker or stats is not an object")
    price = v.price(ticker.get("price"))
    bid = v.price(ticker.get("bid"), "bid", required=False)
    ask = v.price(ticker.get("ask"), "ask", required=False)
    if bid is not None and ask is not None and bid > ask:
        raise Rejected(f"crossed book: bid {bid} > ask {ask}")
    open_24h = v.price(stats.get("open"), "open", required=False)
    base_volume = v.base_volume(stats.get("volume", ticker.get("volume")), "volume")
    change = change_percent = None
    if open_24h is not None:
        change = price - open_24h
        change_percent = v.change_percent(change / open_24h * 100, "change percent")
    return TickerRow(
        symbol=symbol,
        price=price,
        change_24h=change,
        change_percent_24h=change_percent,
        # Coinbase reports volume in the base asset; the contract's volume_24h is in the quote currency.
        volume_24h=None if base_volume is None else v.amount(base_volume * price, "quote volume"),
        market_cap=None,
        bid=bid,
        ask=ask,
        last_updated=v.timestamp(ticker.get("time"), "time", default=datetime.now(tz=UTC)),
        source=NAME,
    )


def parse_candles(payload) -> list[CandleRow]:
    """Rows `[time, low, high, open, close, volume]`, newest first; returns the valid ones oldest first."""
    if not isinstance(payload, list):
        v.reject(NAME, "candles payload", Rejected(f"expected a list, got {type(payload).__name__}"))
        raise UpstreamError(NAME, "bad_payload", "candles is not a list")
    rows: list[CandleRow] = []
    for item in payload:
        try:
            if not isinstance(item, list) or len(item) < 6:
                raise Rejected("row is not [time, low, high, open, close, volume]")
            seconds = v.number(item[0], "time", minimum=Decimal(0), maximum=Decimal("1e11"))
            when = datetime.fromtimestamp(int(seconds), tz=UTC)
            rows.append(v.candle(when, item[3], item[2], item[1], item[4], item[5]))
        except Rejected as exc:
            v.reject(NAME, "candle row", exc)
    rows.sort(key=lambda r: r.open_time)
    return rows
