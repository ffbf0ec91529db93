"""Reads of market data. The ticker reads come from the pre-encoded snapshot (markets.snapshot)."""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, TypedDict

from django.conf import settings
from django.core.cache import cache
from django.db.models import F, FilteredRelation, OrderBy, Q, QuerySet

from coinlink import metrics
from markets import snapshot
from markets.models import Asset, Candle, ProviderStatus
from markets.vocabulary import INTERVAL_SECONDS, PERIOD_DAYS, Priced, ticker_render

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations


class TickerColumns(TypedDict):
    """What `asset_list` annotates on each asset: its ticker in the quote, all null before the first price."""

    t_price: Decimal | None
    t_change_24h: Decimal | None
    t_change_percent_24h: Decimal | None
    t_volume_24h: Decimal | None
    t_market_cap: Decimal | None
    t_last_updated: datetime | None
    t_fetched_at: datetime | None
    t_source: str | None


ACTIVE_SYMBOLS_KEY = "markets:active_symbols"
# {"since": epoch, "causes": {provider: cause}} while no provider answers the ingest (markets.services).
PROVIDERS_UNREACHABLE_KEY = "markets:providers:unreachable"


def ticker_list(*, quote: str = "usd", symbols: list[str] | None = None, limit: int | None = None) -> dict:
    """`{data: [ticker], timestamp, stale}` ordered by rank; empty and stale on a cold start, never raises for it."""
    entry = snapshot.snapshot_get(quote=quote)
    stale = snapshot.stale_symbols(entry)
    order = ticker_order(entry=entry, symbols=symbols, limit=limit)
    data = [snapshot.ticker_with_staleness(entry, s, stale) for s in order]
    return {"data": data, "timestamp": entry["timestamp"], "stale": not entry["order"] or bool(stale & set(order))}


def ticker_order(*, entry: dict, symbols: list[str] | None, limit: int | None) -> list[str]:
    """Symbols of `entry` in rank order, filtered to `symbols` and cut to `limit`."""
    order = entry["order"]
    if symbols is not None:
        wanted = {s.upper() for s in symbols}
        order = [s for s in order if s in wanted]
    return order if limit is None else order[:limit]


def ticker_get(*, quote: str, symbol: str) -> dict | None:
    entry = snapshot.snapshot_get(quote=quote)
    if symbol not in entry["tickers"]:
        return None
    return snapshot.ticker_with_staleness(entry, symbol, snapshot.stale_symbols(entry))


def _active_symbols() -> list[str]:
    symbols = cache.get(ACTIVE_SYMBOLS_KEY)
    if symbols is None:
        symbols = list(Asset.objects.filter(is_active=True).order_by("rank", "symbol").values_list("symbol", flat=True))
        cache.set(ACTIVE_SYMBOLS_KEY, symbols, 60)
    return symbols


def active_symbols_forget() -> None:
    """Drop the cached symbol list (after staff edit assets)."""
    cache.delete(ACTIVE_SYMBOLS_KEY)


def asset_symbols_top(*, limit: int = 20) -> list[str]:
    """Active symbols by rank."""
    return _active_symbols()[: max(0, limit)]


def symbols_known(*, symbols: Iterable[str]) -> set[str]:
    """The subset of `symbols` (upper-cased) that are active catalogue assets."""
    wanted = {str(s).upper() for s in symbols}
    return wanted & set(_active_symbols())


def market_data_status() -> dict:
    """For /readyz: how old the newest successful provider answer is, and why none came lately."""
    status = _market_data_age()
    unreachable = cache.get(PROVIDERS_UNREACHABLE_KEY)
    if unreachable is not None:
        status["reason"] = providers_unreachable_reason(unreachable["causes"])
    return status


def _market_data_age() -> dict:
    last = snapshot.last_success_get()
    if last is None:
        newest = ProviderStatus.objects.exclude(last_success=None).order_by("-last_success")
        success = newest.values_list("last_success", flat=True).first()
        last = success.timestamp() if success else None
    if last is None:
        return {"status": "stale", "age_seconds": None, "last_success": None}
    age = max(0.0, time.time() - last)
    metrics.MARKET_DATA_AGE.set(age)
    return {
        "status": "ok" if age <= settings.MARKET_STALE_SECONDS else "stale",
        "age_seconds": round(age, 1),
        "last_success": snapshot._iso(datetime.fromtimestamp(last, tz=UTC)),
    }


def providers_unreachable_reason(causes: dict[str, str]) -> str:
    """`providers unreachable: coingecko: ConnectError; coinbase: ConnectError`."""
    return "providers unreachable: " + "; ".join(f"{name}: {cause}" for name, cause in causes.items())


ASSET_ORDERINGS: dict[str, tuple[str | OrderBy, ...]] = {
    "rank": ("rank", "symbol"),
    "-change_percent_24h": (F("t__change_percent_24h").desc(nulls_last=True), "rank"),
    "-volume_24h": (F("t__volume_24h").desc(nulls_last=True), "rank"),
}


def asset_list(
    *, quote: str, search: str = "", ordering: str = "rank"
) -> QuerySet[WithAnnotations[Asset, TickerColumns]]:
    """Active assets with their ticker in `quote` (fields t_*; null before the first price)."""
    qs = Asset.objects.filter(is_active=True).annotate(t=FilteredRelation("tickers", condition=Q(tickers__quote=quote)))
    if search:
        qs = qs.filter(Q(symbol__icontains=search) | Q(name__icontains=search) | Q(coingecko_id__icontains=search))
    return qs.annotate(
        t_price=F("t__price"),
        t_change_24h=F("t__change_24h"),
        t_change_percent_24h=F("t__change_percent_24h"),
        t_volume_24h=F("t__volume_24h"),
        t_market_cap=F("t__market_cap"),
        t_last_updated=F("t__last_updated"),
        t_fetched_at=F("t__fetched_at"),
        t_source=F("t__source"),
    ).order_by(*ASSET_ORDERINGS[ordering])


def asset_dict(*, asset: WithAnnotations[Asset, TickerColumns], quote: str) -> dict:
    """Contract ticker + {id, coingecko_id, coinbase_product, is_active} for an `asset_list` row."""
    fetched = asset.t_fetched_at
    priced: Priced = {
        "price": asset.t_price,
        "change_24h": asset.t_change_24h,
        "change_percent_24h": asset.t_change_percent_24h,
        "volume_24h": asset.t_volume_24h,
        "market_cap": asset.t_market_cap,
        "last_updated": asset.t_last_updated,
        "source": asset.t_source,
    }
    stale = fetched is None or time.time() - fetched.timestamp() > settings.MARKET_STALE_SECONDS
    return {
        "id": asset.id,
        **ticker_render(symbol=asset.symbol, name=asset.name, rank=asset.rank, priced=priced, stale=stale),
        "coingecko_id": asset.coingecko_id,
        "coinbase_product": asset.coinbase_product,
        "is_active": asset.is_active,
    }


def asset_active_get(*, symbol: str) -> Asset | None:
    return Asset.objects.filter(symbol=symbol.upper(), is_active=True).first()


def candle_history(*, asset: Asset, quote: str, interval: str, period: str, now: datetime | None = None) -> list[dict]:
    """Candles of the last `period`, oldest first, as contract dicts."""
    now = now or datetime.now(tz=UTC)
    start = now - timedelta(days=PERIOD_DAYS[period], seconds=INTERVAL_SECONDS[interval])
    rows = Candle.objects.filter(asset=asset, quote=quote, interval=interval, open_time__gte=start)
    rows = rows.order_by("open_time")
    return [
        {
            "time": snapshot._iso(c.open_time),
            "open": float(c.open),
            "high": float(c.high),
            "low": float(c.low),
            "close": float(c.close),
            "volume": None if c.volume is None else float(c.volume),
        }
        for c in rows.only("open_time", "open", "high", "low", "close", "volume")
    ]


def market_stats(*, quote: str) -> dict:
    entry = snapshot.snapshot_get(quote=quote)
    tickers = entry["tickers"].values()
    caps = [t["market_cap"] for t in tickers if t["market_cap"] is not None]
    total_cap = sum(caps)
    btc_cap = entry["tickers"].get("BTC", {}).get("market_cap")
    return {
        "total_market_cap": total_cap if caps else None,
        "total_volume_24h": sum(t["volume_24h"] for t in tickers if t["volume_24h"] is not None) if tickers else None,
        "btc_dominance": round(btc_cap / total_cap * 100, 4) if btc_cap and total_cap else None,
        "assets_tracked": len(entry["order"]),
        "last_updated": max((t["last_updated"] for t in tickers), default=None),
        "stale": not entry["order"] or bool(snapshot.stale_symbols(entry)),
    }


def market_movers(*, quote: str, limit: int = 5) -> dict:
    """Top gainers and losers by 24 h percent change; assets without a change are left out."""
    entry = snapshot.snapshot_get(quote=quote)
    stale = snapshot.stale_symbols(entry)
    ranked = sorted(
        (s for s in entry["order"] if entry["tickers"][s]["change_percent_24h"] is not None),
        key=lambda s: entry["tickers"][s]["change_percent_24h"],
    )
    gainers = [s for s in reversed(ranked) if entry["tickers"][s]["change_percent_24h"] > 0][:limit]
    losers = [s for s in ranked if entry["tickers"][s]["change_percent_24h"] < 0][:limit]
    return {
        "gainers": [snapshot.ticker_with_staleness(entry, s, stale) for s in gainers],
        "losers": [snapshot.ticker_with_staleness(entry, s, stale) for s in losers],
    }
