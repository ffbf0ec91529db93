"""Coalescing keeps the newest trade per product per flush, drops replays and late trades, and keeps
the high and low of every trade for the candles."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from markets.stream.coalescer import Coalescer
from markets.stream.messages import Trade

T0 = datetime(2026, 12, 4, 15, 0, 1, tzinfo=UTC)


def trade(price: str, *, seconds: float = 0, sequence: int = 1, product: str = "BTC-USD") -> Trade:
    at = T0 + timedelta(seconds=seconds)
    return Trade(product, Decimal(price), Decimal("60000"), None, None, at, sequence, sequence)


def test_it_keeps_only_the_newest_trade_of_each_product_until_taken():
    coalescer = Coalescer()
    for n, price in enumerate(["65000", "66000", "64000"], start=1):
        assert coalescer.add(trade(price, seconds=n, sequence=n), at=0.0)
    coalescer.add(trade("3000", product="ETH-USD"), at=0.0)
    taken = coalescer.take()
    assert {p: r.trade.price for p, r in taken.items()} == {"BTC-USD": Decimal("64000"), "ETH-USD": Decimal("3000")}
    assert coalescer.take() == {}


def test_a_replayed_or_late_trade_is_refused_even_after_a_flush():
    coalescer = Coalescer()
    coalescer.add(trade("65000", seconds=5, sequence=10), at=0.0)
    coalescer.take()
    assert not coalescer.add(trade("65000", seconds=5, sequence=10), at=0.0)  # the same message again
    assert not coalescer.add(trade("1", seconds=4, sequence=11), at=0.0)  # older trade, newer sequence
    assert coalescer.add(trade("65100", seconds=5, sequence=11), at=0.0)
    assert coalescer.take()["BTC-USD"].trade.price == Decimal("65100")


def test_the_bars_keep_every_trades_extremes_per_five_minutes():
    coalescer = Coalescer()
    for n, price in enumerate(["65000", "67000", "63000", "64000"], start=1):
        coalescer.add(trade(price, seconds=n, sequence=n), at=0.0)
    coalescer.add(trade("64500", seconds=300, sequence=9), at=0.0)  # the next 5-minute bucket
    bars = coalescer.take_bars()
    start = int(T0.timestamp()) // 300 * 300
    first = bars[("BTC-USD", start)]
    assert (first.open, first.high, first.low, first.close) == (65000, 67000, 63000, 64000)
    assert bars[("BTC-USD", start + 300)].close == 64500
    assert coalescer.take_bars() == {}
