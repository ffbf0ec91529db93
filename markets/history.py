"""The history endpoint's read: candles from PostgreSQL through the cache, with a bounded
on-demand backfill when the database has nothing for the asked series yet."""

from __future__ import annotations

import hashlib
import json
import logging
import time

from django.conf import settings
from django.core.cache import cache

from coinlink.errors import DomainError
from markets.models import Asset
from markets.selectors import candle_history

logger = logging.getLogger("markets.history")

# Which periods make sense per interval (at most ~2,200 candles per answer).
ALLOWED = {
    "5m": ("1d", "7d"),
    "1h": ("1d", "7d", "30d", "90d"),
    "1d": ("7d", "30d", "90d", "1y"),
}
PERIOD_DAYS = {"1d": 1, "7d": 7, "30d": 30, "90d": 90, "1y": 365}
ON_DEMAND_SECONDS = 8.0
ON_DEMAND_GUARD_SECONDS = 600


def history_get(*, asset: Asset, quote: str, interval: str, period: str) -> tuple[bytes, str]:
    """`{symbol, interval, vs, candles}` as JSON bytes and its ETag."""
    if period not in ALLOWED[interval]:
        message = f"with interval {interval} the period must be one of {', '.join(ALLOWED[interval])}."
        raise DomainError(f"period: {message}", code="validation_error", errors={"period": [message]})
    key = f"markets:history:{asset.symbol}:{quote}:{interval}:{period}"
    cached = cache.get(key)
    if cached is not None:
        return cached
    candles = candle_history(asset=asset, quote=quote, interval=interval, period=period)
    if not candles and _on_demand_backfill(asset=asset, quote=quote, interval=interval, period=period):
        candles = candle_history(asset=asset, quote=quote, interval=interval, period=period)
    body = json.dumps(
        {"symbol": asset.symbol, "interval": interval, "vs": quote, "candles": candles},
        separators=(",", ":"),
        allow_nan=False,
    ).encode()
    value = (body, '"' + hashlib.blake2b(body, digest_size=10).hexdigest() + '"')
    cache.set(key, value, settings.MARKET_POLL_SECONDS)
    return value


def _on_demand_backfill(*, asset: Asset, quote: str, interval: str, period: str) -> int:
    """One bounded provider fetch per series per 10 minutes, so an empty chart fills on first view."""
    from markets.backfill import Series, series_fetch

    if not cache.add(f"markets:history:ondemand:{asset.symbol}:{quote}:{interval}", 1, ON_DEMAND_GUARD_SECONDS):
        return 0
    try:
        return series_fetch(
            series=Series(asset, quote, interval),
            days=PERIOD_DAYS[period],
            deadline=time.monotonic() + ON_DEMAND_SECONDS,
        )
    except Exception:  # the chart stays empty; never a 500 because an upstream misbehaved
        logger.exception("on-demand backfill of %s/%s %s failed", asset.symbol, quote, interval)
        return 0
