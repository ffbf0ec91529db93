"""The streamer's writes (sync; the runner calls them from its one worker thread).

Every flush goes to the cache: the shared streamed prices, then the snapshot and the tickers_changed
hook the poll uses, so REST, the WebSocket feed and alert evaluation all see it. PostgreSQL gets the
ticker rows and the candles at most once per poll period.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal

from django.conf import settings
from django.db import transaction

from markets import services, snapshot
from markets.models import Asset, Ticker
from markets.providers import validate as v
from markets.providers.validate import Rejected
from markets.services import Bar
from markets.stream.messages import Trade

logger = logging.getLogger("markets.stream")


def stream_products() -> dict[str, tuple[str, str]]:
    """Coinbase product id -> (symbol, quote) for every active asset Coinbase lists in an ingested quote."""
    products = {}
    for asset in Asset.objects.filter(is_active=True).order_by("rank", "symbol"):
        for quote in settings.MARKET_QUOTES:
            product = asset.coinbase_product_for(quote)
            if product:
                products[product] = (asset.symbol, quote)
    return products


def stream_price(trade: Trade, *, received: float) -> dict:
    """The streamed-price record of one trade; the 24 h change comes from the feed's open_24h."""
    change = percent = None
    if trade.open_24h is not None:
        try:
            diff = trade.price - trade.open_24h
            percent = v.change_percent(diff / trade.open_24h * 100, "change percent")
            change = v.change(diff, "change")
        except Rejected:
            change = percent = None
    return {
        "price": trade.price,
        "change_24h": change,
        "change_percent_24h": percent,
        "bid": trade.bid,
        "ask": trade.ask,
        "last_updated": trade.time,
        "observed": received,
    }


def stream_prices_publish(*, quote: str, prices: dict[str, dict], observed_at: float) -> list[str]:
    """Fold one flush into the streamed prices and the snapshot; announce the symbols whose price moved.

    The previous price of a symbol is the one the last flush published (or, the first time, the
    snapshot's), which is what the alerts' crossing conditions compare against. Returns the symbols announced.
    """
    streamed = snapshot.stream_prices_get(quote=quote)
    # A replica that just took over may hold trades older than the last leader published.
    prices = {s: p for s, p in prices.items() if s not in streamed or p["last_updated"] > streamed[s]["last_updated"]}
    first = {s for s in prices if s not in streamed}  # never streamed: the previous price is the poll's
    current = snapshot.snapshot_get(quote=quote)["tickers"] if first else {}
    unseen = {s: prices[s] for s in first if s not in current}
    if unseen:  # no Ticker row yet (no poll has answered for it): the snapshot is built from rows
        stream_prices_persist(quote=quote, prices=unseen, bars={})
    changed: dict[str, Decimal | None] = {}
    for symbol, price in prices.items():
        before = _decimal(current.get(symbol, {}).get("price")) if symbol in first else streamed[symbol]["price"]
        if before != price["price"]:
            changed[symbol] = before
    snapshot.stream_prices_put(quote=quote, prices={**streamed, **prices})
    services.tickers_publish(quote=quote, changed=changed, observed_at=observed_at)
    return list(changed)


def _decimal(value) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def stream_prices_persist(*, quote: str, prices: dict[str, dict], bars: dict[tuple[str, int], Bar]) -> None:
    """Write the streamed prices to their Ticker rows (never over a newer row) and the bars into the candles."""
    assets = {a.symbol: a for a in Asset.objects.filter(symbol__in={*prices, *(s for s, _ in bars)})}
    with transaction.atomic():
        existing = services.tickers_lock(quote=quote, assets=assets.values())  # as the poll's writes do
        for symbol, price in prices.items():
            asset = assets.get(symbol)
            if asset is None:
                continue
            if asset.id in existing:
                _ticker_update(asset, quote, price)
            else:
                Ticker.objects.bulk_create([_ticker_new(asset, quote, price)], ignore_conflicts=True)
        by_bucket: dict[int, dict[Asset, Bar]] = defaultdict(dict)
        for (symbol, bucket), bar in bars.items():
            if symbol in assets:
                by_bucket[bucket][assets[symbol]] = bar
        for bucket, folded in sorted(by_bucket.items()):
            services.candles_record_bars(quote=quote, bars=folded, at=datetime.fromtimestamp(bucket, tz=UTC))


def _fields(price: dict) -> dict:
    return {
        "price": price["price"],
        "change_24h": price["change_24h"],
        "change_percent_24h": price["change_percent_24h"],
        "bid": price["bid"],
        "ask": price["ask"],
        "source": snapshot.STREAM_SOURCE,
        "last_updated": price["last_updated"],
        "fetched_at": datetime.fromtimestamp(price["observed"], tz=UTC),
    }


def _ticker_update(asset: Asset, quote: str, price: dict) -> None:
    fields = _fields(price)
    # A poll that answered after this trade was observed keeps its row.
    Ticker.objects.filter(asset=asset, quote=quote, fetched_at__lt=fields["fetched_at"]).update(**fields)


def _ticker_new(asset: Asset, quote: str, price: dict) -> Ticker:
    return Ticker(asset=asset, quote=quote, volume_24h=None, market_cap=None, **_fields(price))
