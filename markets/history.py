"""The history endpoint's read: candles from PostgreSQL through the cache. An empty series is never
fetched in the request: it queues one paced backfill (markets.tasks.series_backfill) and answers
with what is stored."""

from __future__ import annotations

import hashlib
import json
import logging
from functools import partial

from django.conf import settings
from django.core.cache import cache
from django.db import transaction

from coinlink.embedded_scheduler import task_submit
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
BACKFILL_KEY = "markets:history:backfill:{symbol}:{quote}:{interval}"  # "pending", then "done"
BACKFILL_GUARD_SECONDS = 600  # one queued backfill per series per 10 minutes, however many ask
BACKFILL_LANE_KEY = "markets:history:backfill-lane"
PENDING, DONE = "pending", "done"


def history_get(*, asset: Asset, quote: str, interval: str, period: str) -> tuple[bytes, str, bool]:
    """`{symbol, interval, vs, candles}` as JSON bytes, its ETag, and whether a backfill of the series is pending."""
    if period not in ALLOWED[interval]:
        message = f"with interval {interval} the period must be one of {', '.join(ALLOWED[interval])}."
        raise DomainError(f"period: {message}", code="validation_error", errors={"period": [message]})
    key = _key(asset.symbol, quote, interval, period)
    cached = cache.get(key)
    if cached is not None:
        return cached
    candles = candle_history(asset=asset, quote=quote, interval=interval, period=period)
    pending = not candles and history_backfill_request(asset=asset, quote=quote, interval=interval)
    body = json.dumps(
        {"symbol": asset.symbol, "interval": interval, "vs": quote, "candles": candles},
        separators=(",", ":"),
        allow_nan=False,
    ).encode()
    value = (body, '"' + hashlib.blake2b(body, digest_size=10).hexdigest() + '"', pending)
    cache.set(key, value, settings.MARKET_POLL_SECONDS)
    return value


def history_backfill_request(*, asset: Asset, quote: str, interval: str) -> bool:
    """Queue one backfill of an empty series (claimed in the cache, so a burst queues it once); True while pending."""
    key = BACKFILL_KEY.format(symbol=asset.symbol, quote=quote, interval=interval)
    if not cache.add(key, PENDING, BACKFILL_GUARD_SECONDS):
        return cache.get(key) == PENDING
    kwargs = {"asset_id": asset.pk, "quote": quote, "interval": interval}
    transaction.on_commit(partial(_submit, key=key, kwargs=kwargs))
    return True


def _submit(*, key: str, kwargs: dict) -> None:
    from markets.tasks import series_backfill

    try:
        task_submit(series_backfill, kwargs=kwargs, expires=BACKFILL_GUARD_SECONDS)
    except Exception:  # broker down: the chart stays empty, a later request queues it again
        logger.warning("could not queue the backfill of %s", kwargs, exc_info=True)
        cache.delete(key)


class BackfillBusy(Exception):
    """Another queued backfill holds the lane: retry later, without holding a worker meanwhile."""


def history_backfill_claim(*, asset: Asset, quote: str, interval: str, seconds: float) -> bool:
    """Claim the lane (one queued backfill at a time across every worker, so a burst of them never fills
    the pool the ingest runs on). False when this one is done already (a redelivery); BackfillBusy while
    another runs."""
    key = BACKFILL_KEY.format(symbol=asset.symbol, quote=quote, interval=interval)
    if cache.get(key) == DONE:
        return False
    if not cache.add(BACKFILL_LANE_KEY, key, int(seconds) + 30):
        raise BackfillBusy(key)
    return True


def history_backfill_done(*, asset: Asset, quote: str, interval: str) -> None:
    """After a backfill: no other for 10 minutes, the lane is free, and the next read sees what it stored."""
    key = BACKFILL_KEY.format(symbol=asset.symbol, quote=quote, interval=interval)
    cache.set(key, DONE, BACKFILL_GUARD_SECONDS)
    cache.delete_many([_key(asset.symbol, quote, interval, p) for p in ALLOWED[interval]])
    if cache.get(BACKFILL_LANE_KEY) == key:  # not a lane another run claimed after ours expired
        cache.delete(BACKFILL_LANE_KEY)


def _key(symbol: str, quote: str, interval: str, period: str) -> str:
    return f"markets:history:{symbol}:{quote}:{interval}:{period}"
