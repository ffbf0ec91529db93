"""Market data writes: the ingest cycle, candle upserts and provider health."""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from functools import partial

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from coinlink import metrics
from markets import signals, snapshot
from markets.models import Asset, Candle, ProviderStatus, Ticker
from markets.providers import Provider, providers_ordered
from markets.providers.http import CAUSES, UpstreamError
from markets.providers.validate import AMOUNT_MAX, CandleRow, TickerRow
from markets.selectors import PROVIDERS_UNREACHABLE_KEY, providers_unreachable_reason
from markets.vocabulary import INTERVAL_SECONDS

logger = logging.getLogger("markets.ingest")

LOCK_KEY = "markets:ingest:lock"
STALE_ANNOUNCED_KEY = "markets:stale-announced:{quote}"  # the symbols last announced stale
TICKER_UPDATE_FIELDS = [
    *("price", "change_24h", "change_percent_24h", "volume_24h", "market_cap"),
    *("bid", "ask", "source", "last_updated", "fetched_at"),
]


@dataclass
class ProviderOutcome:
    successes: int = 0
    error: str = ""
    cause: str = ""  # the last failure in public words (UpstreamError.cause)


@dataclass
class IngestResult:
    skipped: bool = False
    stored: dict[str, int] = field(default_factory=dict)
    changed: dict[str, int] = field(default_factory=dict)
    outcomes: dict[str, ProviderOutcome] = field(default_factory=dict)


def ingest_lock_acquire(*, ttl: int) -> str | None:
    token = uuid.uuid4().hex
    return token if cache.add(LOCK_KEY, token, timeout=ttl) else None


def ingest_lock_release(*, token: str) -> None:
    if cache.get(LOCK_KEY) == token:
        cache.delete(LOCK_KEY)


def market_ingest(*, providers: list[Provider] | None = None) -> IngestResult:
    """One ingest cycle for every configured quote; runs never overlap (a cache lock)."""
    poll = settings.MARKET_POLL_SECONDS
    token = ingest_lock_acquire(ttl=poll + 60)
    if token is None:
        metrics.INGEST_RUNS.labels(outcome="skipped").inc()
        logger.info("ingest skipped: another run holds the lock")
        return IngestResult(skipped=True)
    try:
        deadline = time.monotonic() + poll * 0.8
        return _ingest(providers if providers is not None else providers_ordered(), deadline=deadline)
    finally:
        ingest_lock_release(token=token)


def _ingest(providers: list[Provider], *, deadline: float) -> IngestResult:
    result = IngestResult(outcomes={p.name: ProviderOutcome() for p in providers})
    assets = list(Asset.objects.filter(is_active=True))
    for quote in settings.MARKET_QUOTES:
        rows, observed_at = _fetch_quote(providers, assets, quote, deadline, result.outcomes)
        if rows:
            changed = tickers_store(quote=quote, rows=rows, observed_at=observed_at)
            result.stored[quote], result.changed[quote] = len(rows), changed
        # After the store's own announcement (on commit, in order), and on a failed fetch too.
        transaction.on_commit(partial(staleness_announce, quote=quote), robust=True)
    provider_status_record(outcomes=result.outcomes)
    providers_reachability_record(outcomes=result.outcomes)
    outcome = "ok" if all(result.stored.get(q) for q in settings.MARKET_QUOTES) else "partial"
    metrics.INGEST_RUNS.labels(outcome="failed" if not result.stored else outcome).inc()
    return result


def _fetch_quote(providers, assets, quote, deadline, outcomes) -> tuple[dict[str, TickerRow], float]:
    """Primary first; each later provider only for the assets still missing that it serves."""
    rows: dict[str, TickerRow] = {}
    observed_at = time.time()
    for provider in providers:
        wanted = [a for a in assets if a.symbol not in rows and provider.serves(a, quote)]
        if not wanted:
            continue
        try:
            fetched = provider.fetch_tickers(assets=wanted, quote=quote, deadline=deadline)
        except UpstreamError as exc:
            outcomes[provider.name].error, outcomes[provider.name].cause = str(exc)[:500], exc.cause
            # Every cycle, so debug only: providers_reachability_record logs the changes.
            logger.debug("ingest %s from %s failed: %s", quote, provider.name, exc)
            continue
        observed_at = time.time()
        outcomes[provider.name].successes += 1
        for row in fetched:
            rows.setdefault(row.symbol, row)
    return rows, observed_at


def tickers_store(*, quote: str, rows: dict[str, TickerRow], observed_at: float) -> int:
    """Upsert the latest tickers (on commit: refresh the snapshot, announce the changes), then the tick candles.

    A symbol the stream has priced more recently than `observed_at` keeps the streamed price; the
    poll still brings its market cap and volume, and does not announce it (the stream did).
    """
    fetched_at = datetime.fromtimestamp(observed_at, tz=UTC)
    assets = {a.symbol: a for a in Asset.objects.filter(symbol__in=rows)}
    streamed = snapshot.stream_prices_get(quote=quote)
    newer = {s for s in rows if s in streamed and streamed[s]["observed"] > observed_at}
    rows = {s: _stream_row(row, streamed[s]) if s in newer else row for s, row in rows.items()}
    with transaction.atomic():
        previous = tickers_lock(quote=quote, assets=assets.values())
        Ticker.objects.bulk_create(
            [_ticker(assets[s], quote, row, fetched_at) for s, row in rows.items() if s in assets],
            update_conflicts=True,
            unique_fields=["asset", "quote"],
            update_fields=TICKER_UPDATE_FIELDS,
        )
        changed = {
            s: previous.get(a.id) for s, a in assets.items() if s not in newer and previous.get(a.id) != rows[s].price
        }
        transaction.on_commit(lambda: tickers_publish(quote=quote, changed=changed, observed_at=observed_at))
    # The chart candles come after the announcement: the live feed does not need them, and their
    # read-modify-write was about 40 % of the time from the upstream answer to the frame. Their own
    # transaction takes the same ticker row locks, so overlapping ingests of a quote still widen
    # a candle one at a time.
    with transaction.atomic():
        tickers_lock(quote=quote, assets=assets.values())
        prices = {assets[s]: r.price for s, r in rows.items() if s in assets}
        candles_record_ticks(quote=quote, prices=prices, at=fetched_at)
    return len(changed)


def _stream_row(row: TickerRow, streamed: dict) -> TickerRow:
    return replace(
        row,
        price=streamed["price"],
        change_24h=streamed["change_24h"],
        change_percent_24h=streamed["change_percent_24h"],
        bid=streamed["bid"],
        ask=streamed["ask"],
        last_updated=streamed["last_updated"],
        source=snapshot.STREAM_SOURCE,
    )


def tickers_lock(*, quote: str, assets) -> dict[int, Decimal]:
    """Lock the quote's ticker rows of these assets (every writer of them and their candles does, in a
    transaction); returns their current prices by asset id."""
    rows = Ticker.objects.select_for_update().filter(quote=quote, asset__in=assets)
    return dict(rows.values_list("asset_id", "price"))


def _ticker(asset: Asset, quote: str, row: TickerRow, fetched_at: datetime) -> Ticker:
    volume = row.volume_24h if row.volume_24h is None or row.volume_24h < AMOUNT_MAX else None
    return Ticker(
        asset=asset,
        quote=quote,
        price=row.price,
        change_24h=row.change_24h,
        change_percent_24h=row.change_percent_24h,
        volume_24h=volume,
        market_cap=row.market_cap,
        bid=row.bid,
        ask=row.ask,
        source=row.source,
        last_updated=row.last_updated,
        fetched_at=fetched_at,
    )


def tickers_publish(*, quote: str, changed: dict[str, Decimal | None], observed_at: float) -> None:
    """Refresh the snapshot and announce the `changed` symbols (symbol -> previous price) to tickers_changed."""
    snapshot.last_success_mark(at=observed_at)
    metrics.MARKET_DATA_AGE.set(max(0.0, time.time() - observed_at))
    entry = snapshot.snapshot_build(quote=quote)
    tickers = [dict(entry["tickers"][s]) for s in entry["order"] if s in changed]
    if not tickers:
        return
    previous = {s: None if p is None else str(p) for s, p in changed.items()}
    for receiver, response in signals.tickers_changed.send_robust(
        sender=Ticker, quote=quote, tickers=tickers, previous_prices=previous, observed_at=observed_at
    ):
        if isinstance(response, Exception):
            logger.error("tickers_changed receiver %r failed: %r", receiver, response, exc_info=response)


def staleness_announce(*, quote: str) -> None:
    """Tell live clients when tickers go stale or come back; a failed fetch announces nothing else.

    Only the changes are sent: a client that connects meanwhile gets the flags in its snapshot. The
    ingest lock makes this one writer at a time.
    """
    entry = snapshot.snapshot_get(quote=quote)
    stale = snapshot.stale_symbols(entry)
    key = STALE_ANNOUNCED_KEY.format(quote=quote)
    announced = frozenset(cache.get(key) or ())
    flipped = stale ^ announced
    if not flipped:
        return
    tickers = [snapshot.ticker_with_staleness(entry, s, stale) for s in entry["order"] if s in flipped]
    cache.set(key, sorted(stale), None)
    if stale - announced:
        logger.warning("%d %s tickers are stale: no provider has answered for them", len(stale - announced), quote)
    for receiver, response in signals.tickers_staleness.send_robust(sender=Ticker, quote=quote, tickers=tickers):
        if isinstance(response, Exception):
            logger.error("tickers_staleness receiver %r failed: %r", receiver, response, exc_info=response)


@dataclass
class Bar:
    """Open, high, low and close of the prices seen in one interval."""

    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal

    @classmethod
    def of(cls, price: Decimal) -> Bar:
        return cls(price, price, price, price)

    def add(self, price: Decimal) -> None:
        self.high, self.low, self.close = max(self.high, price), min(self.low, price), price


def candles_record_ticks(*, quote: str, prices: dict[Asset, Decimal], at: datetime) -> None:
    """Fold one observed price per asset into the current 5m, 1h and 1d candles (open kept, high/low widened)."""
    candles_record_bars(quote=quote, bars={asset: Bar.of(price) for asset, price in prices.items()}, at=at)


def candles_record_bars(*, quote: str, bars: dict[Asset, Bar], at: datetime) -> None:
    """Fold each asset's bar of prices seen around `at` into the 5m, 1h and 1d candles holding `at`."""
    epoch = int(at.timestamp())
    buckets = {i: datetime.fromtimestamp(epoch - epoch % INTERVAL_SECONDS[i], tz=UTC) for i in INTERVAL_SECONDS}
    existing = {
        (c.asset_id, c.interval): c
        for c in Candle.objects.filter(quote=quote, asset__in=list(bars), open_time__in=list(buckets.values()))
        if buckets[c.interval] == c.open_time
    }
    candles = []
    for asset, bar in bars.items():
        for interval, start in buckets.items():
            old = existing.get((asset.id, interval))
            candles.append(
                Candle(
                    asset=asset,
                    quote=quote,
                    interval=interval,
                    open_time=start,
                    open=old.open if old else bar.open,
                    high=max(old.high, bar.high) if old else bar.high,
                    low=min(old.low, bar.low) if old else bar.low,
                    close=bar.close,
                    volume=old.volume if old else None,
                    source=old.source if old else "ticks",
                )
            )
    _candles_upsert(candles)


def candles_upsert(*, asset: Asset, quote: str, interval: str, rows: list[CandleRow], source: str) -> int:
    """Insert or overwrite candles from a provider's history; the unique constraint makes it idempotent."""
    candles = [
        Candle(
            asset=asset,
            quote=quote,
            interval=interval,
            open_time=r.open_time,
            open=r.open,
            high=r.high,
            low=r.low,
            close=r.close,
            volume=r.volume,
            source=source,
        )
        for r in rows
    ]
    _candles_upsert(candles)
    return len(candles)


def _candles_upsert(candles: list[Candle]) -> None:
    Candle.objects.bulk_create(
        candles,
        batch_size=500,
        update_conflicts=True,
        unique_fields=["asset", "quote", "interval", "open_time"],
        update_fields=["open", "high", "low", "close", "volume", "source"],
    )


def provider_status_record(*, outcomes: dict[str, ProviderOutcome]) -> None:
    """Mirror this run's outcome and the shared breaker into ProviderStatus (for the admin)."""
    from markets.providers.breaker import CircuitBreaker

    now = timezone.now()
    for name, outcome in outcomes.items():
        breaker = CircuitBreaker(name)
        status, _ = ProviderStatus.objects.get_or_create(provider=name)
        if outcome.successes:
            status.last_success = now
        if outcome.error:
            status.last_error, status.last_error_at = outcome.error, now
        status.consecutive_failures = breaker.failures()
        status.breaker_state = breaker.state()
        status.save()


def providers_reachability_record(*, outcomes: dict[str, ProviderOutcome]) -> None:
    """Remember whether any provider answered this cycle, with one log line per change (not per attempt).

    Unreachable means every provider asked failed; `/readyz` and the live page show the reason. The
    ingest lock makes this one writer at a time.
    """
    asked = {name: o for name, o in outcomes.items() if o.successes or o.error}
    if not asked:
        return
    previous = cache.get(PROVIDERS_UNREACHABLE_KEY)
    if any(o.successes for o in asked.values()):
        if previous is not None:
            cache.delete(PROVIDERS_UNREACHABLE_KEY)
            logger.warning("market data providers reachable again after %.0f s", time.time() - previous["since"])
        return
    causes = _unreachable_causes(asked, previous["causes"] if previous else {})
    since = previous["since"] if previous else time.time()
    cache.set(PROVIDERS_UNREACHABLE_KEY, {"since": since, "causes": causes}, None)
    if previous is None:
        reason = providers_unreachable_reason(causes)
        logger.warning("market data %s; prices are served stale until one answers", reason)


def _unreachable_causes(asked: dict[str, ProviderOutcome], known: dict[str, str]) -> dict[str, str]:
    """Each provider's cause; a paused breaker is no news, so what made it open is kept when known."""
    causes = dict(known)
    for name, outcome in asked.items():
        if outcome.cause != CAUSES["breaker_open"] or name not in causes:
            causes[name] = outcome.cause
    return causes
