"""Candle history from the providers: Coinbase candles (real OHLCV) where the product exists, else
CoinGecko market_chart (OHLC bucketed from sampled prices, volume null). Bounded per run."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.utils import timezone

from markets.history import ALLOWED, history_backfill_claim, history_backfill_done
from markets.models import Asset, Candle
from markets.providers import Provider
from markets.providers.coinbase import Coinbase
from markets.providers.coingecko import CoinGecko
from markets.providers.http import UpstreamError
from markets.services import candles_upsert
from markets.vocabulary import INTERVAL_SECONDS, PERIOD_DAYS

logger = logging.getLogger("markets.backfill")

# How far back each interval is kept and fetched: the longest period the history endpoint allows.
WINDOW_DAYS = {interval: max(PERIOD_DAYS[p] for p in periods) for interval, periods in ALLOWED.items()}
SERIES_PER_RUN = 60
COVERAGE = 0.9


@dataclass
class Series:
    asset: Asset
    quote: str
    interval: str


def series_needs_backfill(*, series: Series, days: int, now: datetime) -> bool:
    """True when fewer than 90% of the expected candles of the window are stored."""
    start = now - timedelta(days=days)
    stored = Candle.objects.filter(
        asset=series.asset, quote=series.quote, interval=series.interval, open_time__gte=start
    ).count()
    return stored < COVERAGE * days * 86400 / INTERVAL_SECONDS[series.interval]


def history_providers() -> list[Provider]:
    """The providers on the history lane, Coinbase first (real OHLCV; CoinGecko's bars are bucketed samples).

    Paced across every process and with breakers of their own, so history never spends the
    ingest's rate limit nor opens its breaker."""
    return [Coinbase(threads=1, lane="history"), CoinGecko(lane="history")]


def series_fetch(*, series: Series, days: int, deadline: float, providers: list[Provider] | None = None) -> int:
    """Fetch and store one series from the first provider that serves it and answers with candles."""
    for provider in providers or history_providers():
        if not provider.serves(series.asset, series.quote):
            continue
        try:
            rows = provider.fetch_candles(
                asset=series.asset, quote=series.quote, interval=series.interval, days=days, deadline=deadline
            )
        except UpstreamError as exc:
            # Per series and provider, so debug only: the ingest logs when the providers become unreachable.
            logger.debug("backfill %s/%s %s from %s failed: %s", *_label(series), provider.name, exc)
            continue
        if rows:
            return candles_upsert(
                asset=series.asset, quote=series.quote, interval=series.interval, rows=rows, source=provider.name
            )
    return 0


def series_window_days(*, series: Series, providers: list[Provider]) -> int:
    """Days of history kept for a series: the interval's window, or less if no provider serving it goes further back."""
    window = WINDOW_DAYS[series.interval]
    limits = [p.candle_days(series.interval) for p in providers if p.serves(series.asset, series.quote)]
    if limits and None not in limits:
        return min(window, max(d for d in limits if d is not None))
    return window


def _label(series: Series) -> tuple[str, str, str]:
    return series.asset.symbol, series.quote, series.interval


def candles_backfill(*, max_series: int = SERIES_PER_RUN, budget_seconds: float = 600.0) -> dict[str, int]:
    """Fill the least-covered series, highest rank and USD first, within a per-run budget."""
    deadline = time.monotonic() + budget_seconds
    now = datetime.now(tz=UTC)
    providers = history_providers()
    done = {"checked": 0, "fetched": 0, "candles": 0}
    quotes = sorted(settings.MARKET_QUOTES, key=lambda q: q != "usd")
    for quote in quotes:
        for asset in Asset.objects.filter(is_active=True).order_by("rank"):
            for interval in WINDOW_DAYS:
                if done["fetched"] >= max_series or time.monotonic() >= deadline:
                    return done
                series = Series(asset, quote, interval)
                days = series_window_days(series=series, providers=providers)
                done["checked"] += 1
                if not series_needs_backfill(series=series, days=days, now=now):
                    continue
                done["fetched"] += 1
                done["candles"] += series_fetch(series=series, days=days, deadline=deadline, providers=providers)
    return done


def series_backfill(*, asset_id: int, quote: str, interval: str, budget_seconds: float) -> int:
    """Fill one series the history endpoint found empty; idempotent (a covered series is not fetched)."""
    asset = Asset.objects.filter(pk=asset_id, is_active=True).first()
    if asset is None or quote not in settings.MARKET_QUOTES or interval not in WINDOW_DAYS:
        return 0
    if not history_backfill_claim(asset=asset, quote=quote, interval=interval, seconds=budget_seconds):
        return 0
    series = Series(asset, quote, interval)
    providers = history_providers()
    days = series_window_days(series=series, providers=providers)
    stored = 0
    try:
        if series_needs_backfill(series=series, days=days, now=timezone.now()):
            deadline = time.monotonic() + budget_seconds
            stored = series_fetch(series=series, days=days, deadline=deadline, providers=providers)
    finally:
        history_backfill_done(asset=asset, quote=quote, interval=interval)
    logger.info("backfill of %s/%s %s on demand stored %d candles", *_label(series), stored)
    return stored
