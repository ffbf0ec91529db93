"""Upstream market-data providers, one module each, all behind the `Provider` protocol.

The ingest (markets.services) asks each provider, primary first, for the tickers it `serves`; the
backfill (markets.backfill) asks them for candles the same way. Neither branches on which provider
it holds: adding one is a module plus an entry in `providers_ordered` and `history_providers`.

The live feed (markets.stream) is not a Provider: it is pushed trades rather than polled, runs one
leader across every process, and writes through the same services (`tickers_publish`,
`candles_record_bars`) and the same `markets.vocabulary.ticker_render`. Its "which assets" question
is the Coinbase provider's `serves` (an asset with a Coinbase product in the quote).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from django.conf import settings

if TYPE_CHECKING:
    from collections.abc import Sequence

    from markets.models import Asset
    from markets.providers.validate import CandleRow, TickerRow


class Provider(Protocol):
    """A polled upstream: prices now and candles back in time, each only for the assets it serves."""

    name: str

    def serves(self, asset: Asset, quote: str) -> bool:
        """Whether this provider can price `asset` in `quote`."""
        ...

    def fetch_tickers(self, *, assets: Sequence[Asset], quote: str, deadline: float) -> list[TickerRow]:
        """Tickers of the served `assets`; raises UpstreamError when the provider answered none."""
        ...

    def fetch_candles(self, *, asset: Asset, quote: str, interval: str, days: int, deadline: float) -> list[CandleRow]:
        """Candles of the last `days`, oldest first; raises UpstreamError on failure."""
        ...

    def candle_days(self, interval: str) -> int | None:
        """How many days back this provider has candles of `interval`; None when it is not the limit."""
        ...


def providers_ordered() -> list[Provider]:
    """The ingest's providers, the configured primary first."""
    from markets.providers.coinbase import Coinbase
    from markets.providers.coingecko import CoinGecko

    providers: list[Provider] = [CoinGecko(), Coinbase()]
    return sorted(providers, key=lambda p: p.name != settings.MARKET_PRIMARY_PROVIDER)
