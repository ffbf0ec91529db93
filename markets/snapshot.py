"""The pre-encoded market snapshot the hot path serves: one cache entry per quote currency.

Built once per ingest (or from the database on a cache miss), it holds every ticker as a dict
(for selectors) and as ready JSON bytes (for HTTP), the full ticker-list body, per-ticker ETags
and each ticker's fetch time. Serving it costs a small cache read of the version key and, when
this process already holds that version, nothing else: no query, no JSON encoding.
Staleness is applied at read time by flipping the pre-encoded `"stale":false}` suffix.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from datetime import UTC, datetime
from typing import overload

from django.conf import settings
from django.core.cache import cache

from coinlink import contract

logger = logging.getLogger("markets.snapshot")

CACHE_TTL = 300
VERSION_KEY = "markets:snapshot:{quote}:version"
ENTRY_KEY = "markets:snapshot:{quote}:entry"
LAST_SUCCESS_KEY = "markets:last_success"
# The streamer's newest price per symbol (markets.stream), kept apart from the Ticker rows, which it
# writes only once per poll period: whichever of a row and a streamed price was observed later wins.
STREAM_PRICES_KEY = "markets:stream:{quote}:prices"
STREAM_PRICES_TTL = 86400
STREAM_SOURCE = "coinbase_stream"
_FRESH_SUFFIX = b'"stale":false}'
_STALE_SUFFIX = b'"stale":true}'

# This process's copy of the newest entry per quote. It is revalidated against the shared version
# key at most once per LOCAL_RECHECK_SECONDS, so the hot path usually touches neither Redis nor the
# database; a new ingest reaches every worker within that second (the poll period is 30 s).
LOCAL_RECHECK_SECONDS = 1.0
_local: dict[str, dict] = {}
_checked: dict[str, float] = {}


@overload
def _iso(moment: datetime) -> str: ...
@overload
def _iso(moment: datetime | None) -> str | None: ...
def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else contract.timestamp(moment)


def _num(value) -> float | None:
    return None if value is None else float(value)


def _dumps(value) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def ticker_dict(ticker, asset) -> dict:
    """The contract `ticker` for one Ticker row (stale false; staleness is applied when read)."""
    return {
        "symbol": asset.symbol,
        "name": asset.name,
        "price": float(ticker.price),
        "change_24h": _num(ticker.change_24h),
        "change_percent_24h": _num(ticker.change_percent_24h),
        "volume_24h": _num(ticker.volume_24h),
        "market_cap": _num(ticker.market_cap),
        "rank": asset.rank,
        "last_updated": _iso(ticker.last_updated),
        "source": ticker.source,
        "stale": False,
    }


def snapshot_build(*, quote: str, store: bool = True) -> dict:
    """Read the latest tickers of active assets from the database and encode them once."""
    from markets.models import Ticker

    rows = (
        Ticker.objects.filter(quote=quote, asset__is_active=True)
        .select_related("asset")
        .order_by("asset__rank", "asset__symbol")
    )
    streamed = stream_prices_get(quote=quote)
    tickers, frags, etags, fetched, extra = {}, {}, {}, {}, {}
    for row in rows:
        symbol = row.asset.symbol
        tickers[symbol] = ticker_dict(row, row.asset)
        fetched[symbol] = row.fetched_at.timestamp()
        extra[symbol] = {"bid": _num(row.bid), "ask": _num(row.ask)}
        newer = streamed.get(symbol)
        if newer is not None and newer["observed"] > fetched[symbol]:
            tickers[symbol], fetched[symbol] = stream_ticker(tickers[symbol], newer), newer["observed"]
            extra[symbol] = {"bid": _num(newer["bid"]), "ask": _num(newer["ask"])}
        frags[symbol] = _dumps(tickers[symbol])
        etags[symbol] = hashlib.blake2b(frags[symbol], digest_size=8).hexdigest()
    built = time.time()
    timestamp = _iso(datetime.fromtimestamp(built, tz=UTC))
    tail = b'","stale":false}' if tickers else b'","stale":true}'  # a cold start has nothing fresh to offer
    body = b'{"data":[' + b",".join(frags.values()) + b'],"timestamp":"' + timestamp.encode() + tail
    version = hashlib.blake2b(body, digest_size=10).hexdigest()
    entry = {
        "version": version,
        "quote": quote,
        "built": built,
        "timestamp": timestamp,
        "order": list(tickers),
        "tickers": tickers,
        "frags": frags,
        "etags": etags,
        "fetched": fetched,
        "oldest": min(fetched.values()) if fetched else None,
        "extra": extra,
        "body": body,
    }
    entry["etag"] = f'"{version}"'
    if store:
        try:
            cache.set(ENTRY_KEY.format(quote=quote), entry, CACHE_TTL)
            cache.set(VERSION_KEY.format(quote=quote), entry["version"], CACHE_TTL)
        except Exception as exc:  # cache down: serve from the database, do not fail the caller
            logger.warning("snapshot not cached: %s", exc.__class__.__name__)
    _local[quote], _checked[quote] = entry, time.monotonic()
    return entry


def stream_ticker(ticker: dict, streamed: dict) -> dict:
    """`ticker` with the streamed price, its 24 h change and time; market cap, rank and volume stay."""
    return {
        **ticker,
        "price": float(streamed["price"]),
        "change_24h": _num(streamed["change_24h"]),
        "change_percent_24h": _num(streamed["change_percent_24h"]),
        "last_updated": _iso(streamed["last_updated"]),
        "source": STREAM_SOURCE,
    }


def stream_prices_get(*, quote: str) -> dict[str, dict]:
    """symbol -> {price, change_24h, change_percent_24h, bid, ask, last_updated, observed} from the streamer."""
    try:
        return cache.get(STREAM_PRICES_KEY.format(quote=quote)) or {}
    except Exception as exc:
        logger.warning("streamed prices unavailable: %s", exc.__class__.__name__)
        return {}


def stream_prices_put(*, quote: str, prices: dict[str, dict]) -> None:
    cache.set(STREAM_PRICES_KEY.format(quote=quote), prices, STREAM_PRICES_TTL)


def snapshot_get(*, quote: str) -> dict:
    """The newest snapshot for `quote`: this process's copy if current, else the cache, else the database."""
    local = _local.get(quote)
    now = time.monotonic()
    if local is not None and now - _checked.get(quote, -LOCAL_RECHECK_SECONDS) < LOCAL_RECHECK_SECONDS:
        return local
    try:
        version = cache.get(VERSION_KEY.format(quote=quote))
        if version is not None and local is not None and local["version"] == version:
            _checked[quote] = now
            return local
        entry = cache.get(ENTRY_KEY.format(quote=quote)) if version is not None else None
    except Exception as exc:
        logger.warning("snapshot cache unavailable: %s", exc.__class__.__name__)
        return snapshot_build(quote=quote, store=False)
    if entry is None:
        return snapshot_build(quote=quote)
    _local[quote], _checked[quote] = entry, now
    return entry


def snapshot_forget() -> None:
    """Drop this process's copies (tests, after clearing the cache)."""
    _local.clear()
    _checked.clear()


def snapshot_cached(*, quote: str) -> bool:
    """Whether the shared cache holds a snapshot for `quote` right now."""
    try:
        return cache.get(VERSION_KEY.format(quote=quote)) is not None
    except Exception:
        return False


def stale_symbols(entry: dict, *, now: float | None = None) -> frozenset[str]:
    """Symbols whose price was fetched longer ago than MARKET_STALE_SECONDS."""
    limit = settings.MARKET_STALE_SECONDS
    now = time.time() if now is None else now
    if entry["oldest"] is None or now - entry["oldest"] <= limit:
        return frozenset()
    return frozenset(s for s, at in entry["fetched"].items() if now - at > limit)


def fragment(entry: dict, symbol: str, stale: frozenset[str]) -> bytes:
    frag = entry["frags"][symbol]
    return frag[: -len(_FRESH_SUFFIX)] + _STALE_SUFFIX if symbol in stale else frag


def ticker_with_staleness(entry: dict, symbol: str, stale: frozenset[str]) -> dict:
    """A copy (callers may change it; the snapshot is shared by every request of this process)."""
    return {**entry["tickers"][symbol], "stale": symbol in stale}


def list_body(entry: dict, symbols: list[str], stale: frozenset[str]) -> tuple[bytes, bool]:
    """`{data, timestamp, stale}` bytes for `symbols` (in the given order); the flag is the top-level stale."""
    is_stale = bool(stale & set(symbols)) or not entry["order"]
    if symbols == entry["order"] and not stale:
        return entry["body"], is_stale
    frags = b",".join(fragment(entry, s, stale) for s in symbols)
    tail = b'","stale":true}' if is_stale else b'","stale":false}'
    return b'{"data":[' + frags + b'],"timestamp":"' + entry["timestamp"].encode() + tail, is_stale


def last_success_mark(*, at: float) -> None:
    try:
        cache.set(LAST_SUCCESS_KEY, at, None)
    except Exception as exc:
        logger.warning("last success not cached: %s", exc.__class__.__name__)


def last_success_get() -> float | None:
    try:
        return cache.get(LAST_SUCCESS_KEY)
    except Exception:
        return None
