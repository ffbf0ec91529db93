"""CoinGecko: /coins/markets for every ticker of a quote in one call; /coins/{id}/market_chart for history."""

from __future__ import annotations

from datetime import UTC, datetime
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

NAME = "coingecko"
PUBLIC_BASE_URL = "https://api.coingecko.com/api/v3"
PRO_BASE_URL = "https://pro-api.coingecko.com/api/v3"
HISTORY_CALL_INTERVAL = 4.0  # 15 calls/min for history, across every process


def base_url_and_headers() -> tuple[str, dict[str, str]]:
    """Demo keys use the public host with x-cg-demo-api-key; pro keys the pro host (unless overridden)."""
    key, plan, base = settings.COINGECKO_API_KEY, settings.COINGECKO_API_PLAN, settings.COINGECKO_BASE_URL
    if plan == "pro":
        return (PRO_BASE_URL if base.rstrip("/") == PUBLIC_BASE_URL else base), (
            {"x-cg-pro-api-key": key} if key else {}
        )
    return base, ({"x-cg-demo-api-key": key} if key else {})


class CoinGecko:
    name = NAME

    def __init__(self, upstream: Upstream | None = None, *, lane: str = "ingest"):
        """The history lane is paced across every process, well under the demo plan's 30 calls/min
        beside the ingest's ~6/min, and has its own breaker (see `Upstream`)."""
        if upstream is None:
            base, headers = base_url_and_headers()
            upstream = Upstream(NAME, base, headers=headers, lane=lane)
        self.upstream = upstream
        self.pacer = Pacer(0.0) if lane == "ingest" else SharedPacer(f"{NAME}-{lane}", HISTORY_CALL_INTERVAL)

    def fetch_tickers(self, *, assets: Sequence[Asset], quote: str, deadline: float) -> list[TickerRow]:
        """Tickers for `assets` (objects with symbol and coingecko_id) in `quote`, one HTTP call."""
        by_id = {a.coingecko_id: a.symbol for a in assets if a.coingecko_id}
        if not by_id:
            return []
        payload = self.upstream.get_json(
            "/coins/markets",
            {
                "vs_currency": quote,
                "ids": ",".join(sorted(by_id)),
                "per_page": 250,
                "page": 1,
                "precision": "full",
                "sparkline": "false",
            },
            endpoint="coins_markets",
            deadline=deadline,
        )
        return parse_markets(payload, by_id=by_id)

    def serves(self, asset: Asset, quote: str) -> bool:
        return bool(asset.coingecko_id)

    def candle_days(self, interval: str) -> int | None:
        """market_chart has ~5-minute points only for the last day."""
        return 1 if interval == "5m" else None

    def fetch_candles(self, *, asset: Asset, quote: str, interval: str, days: int, deadline: float) -> list[CandleRow]:
        self.pacer.wait(deadline=deadline)
        params: dict = {"vs_currency": quote, "days": market_chart_days(interval=interval, days=days)}
        if interval == "1d":
            params["interval"] = "daily"
        payload = self.upstream.get_json(
            f"/coins/{asset.coingecko_id}/market_chart", params, endpoint="market_chart", deadline=deadline
        )
        return parse_market_chart(payload, interval_seconds=INTERVAL_SECONDS[interval])


def market_chart_days(*, interval: str, days: int) -> int:
    """market_chart gives ~5-minute points for days=1, hourly up to 90 days, daily beyond."""
    if interval == "5m":
        return 1
    return min(days, 90) if interval == "1h" else days


def parse_markets(payload, *, by_id: dict[str, str]) -> list[TickerRow]:
    """Rows of /coins/markets for the ids we asked for; a bad row is dropped and counted."""
    if not isinstance(payload, list):
        v.reject(NAME, "coins/markets payload", Rejected(f"expected a list, got {type(payload).__name__}"))
        raise UpstreamError(NAME, "bad_payload", "coins/markets is not a list")
    now = datetime.now(tz=UTC)
    rows: list[TickerRow] = []
    seen: set[str] = set()
    for item in payload:
        try:
            row = _ticker(item, by_id, now)
        except Rejected as exc:
            v.reject(NAME, f"row {str(item.get('id') if isinstance(item, dict) else item)[:40]!r}", exc)
            continue
        if row is not None and row.symbol not in seen:
            seen.add(row.symbol)
            rows.append(row)
    if payload and not rows:
        raise UpstreamError(NAME, "bad_payload", "no valid row in coins/markets")
    return rows


def _ticker(item, by_id: dict[str, str], now: datetime) -> TickerRow | None:
    if not isinstance(item, dict):
        raise Rejected("row is not an object")
    symbol = by_id.get(item.get("id"))  # type: ignore[arg-type]
    if symbol is None:
        return None  # not one we asked for
    return TickerRow(
        symbol=symbol,
        price=v.price(item.get("current_price"), "current_price"),
        change_24h=v.change(item.get("price_change_24h"), "price_change_24h"),
        change_percent_24h=v.change_percent(item.get("price_change_percentage_24h"), "price_change_percentage_24h"),
        volume_24h=v.amount(item.get("total_volume"), "total_volume"),
        market_cap=v.amount(item.get("market_cap"), "market_cap"),
        bid=None,
        ask=None,
        last_updated=v.timestamp(item.get("last_updated"), "last_updated", default=now),
        source=NAME,
    )


def parse_market_chart(payload, *, interval_seconds: int) -> list[CandleRow]:
    """Bucket the sampled `prices` [[ms, price], ...] into OHLC bars (volume unknown: null)."""
    if not isinstance(payload, dict) or not isinstance(payload.get("prices"), list):
        v.reject(NAME, "market_chart payload", Rejected("no prices list"))
        raise UpstreamError(NAME, "bad_payload", "market_chart has no prices list")
    buckets: dict[int, list[Decimal]] = {}
    for point in payload["prices"]:
        try:
            if not isinstance(point, list) or len(point) < 2:
                raise Rejected("point is not [ms, price]")
            ms = v.number(point[0], "time", minimum=Decimal(0), maximum=Decimal("1e14"))
            value = v.price(point[1])
        except Rejected as exc:
            v.reject(NAME, "market_chart point", exc)
            continue
        start = int(ms) // 1000 // interval_seconds * interval_seconds
        buckets.setdefault(start, []).append(value)
    return [
        CandleRow(datetime.fromtimestamp(start, tz=UTC), prices[0], max(prices), min(prices), prices[-1], None)
        for start, prices in sorted(buckets.items())
    ]
