"""Coalescing: the newest trade per product between two flushes, and the OHLC of every trade between writes.

A busy product trades many times a second; the feed publishes once per MARKET_STREAM_FLUSH_MS,
so each flush carries only the newest trade of each product that traded. The bars keep the high
and low that the skipped trades reached, for the 5-minute candles written once per poll period.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from markets.services import Bar
from markets.stream.messages import Trade

BAR_SECONDS = 300  # the finest candle interval


@dataclass(frozen=True, slots=True)
class Received:
    trade: Trade
    at: float  # epoch seconds the message reached us


class Coalescer:
    def __init__(self):
        self._pending: dict[str, Received] = {}
        self._bars: dict[tuple[str, int], Bar] = {}
        self._newest: dict[str, tuple[datetime, int]] = {}

    def add(self, trade: Trade, *, at: float) -> bool:
        """Keep `trade` if it is newer than the last one of its product; False for a late or repeated one."""
        order = (trade.time, trade.sequence)
        newest = self._newest.get(trade.product_id)
        if newest is not None and order <= newest:
            return False
        self._newest[trade.product_id] = order
        self._pending[trade.product_id] = Received(trade, at)
        epoch = int(trade.time.timestamp())
        key = (trade.product_id, epoch - epoch % BAR_SECONDS)
        bar = self._bars.get(key)
        if bar is None:
            self._bars[key] = Bar.of(trade.price)
        else:
            bar.add(trade.price)
        return True

    def take(self) -> dict[str, Received]:
        """The newest trade per product since the last take."""
        pending, self._pending = self._pending, {}
        return pending

    def take_bars(self) -> dict[tuple[str, int], Bar]:
        """(product, 5-minute bucket start) -> the bar of its trades since the last take."""
        bars, self._bars = self._bars, {}
        return bars
