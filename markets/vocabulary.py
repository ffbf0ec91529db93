"""The market vocabulary every app speaks: symbols, quote currencies, candle intervals, history
periods and the contract's `ticker`. Other modules import these names instead of spelling them out.

Internally the quote currency is called `quote`; the contract's query parameter and alert field keep
their name `vs`. This module imports nothing from Django so settings (coinlink.config) can use it.
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from typing import TypedDict, overload

# The catalogue's column holds 15 characters (Asset.symbol); the longest catalogue symbol has 6.
SYMBOL_MAX_LENGTH = 15
SYMBOL = re.compile(rf"^[A-Z0-9]{{1,{SYMBOL_MAX_LENGTH}}}$")
# For inputs clients may send in any case. Spelt out rather than re.IGNORECASE: the OpenAPI schema
# shows the pattern text, and IGNORECASE would match the Kelvin sign and the long s as K and S.
SYMBOL_ANY_CASE = re.compile(rf"^[A-Za-z0-9]{{1,{SYMBOL_MAX_LENGTH}}}$")

QUOTES = ("usd", "eur", "gbp")
DEFAULT_QUOTE = "usd"

INTERVAL_SECONDS = {"5m": 300, "1h": 3600, "1d": 86400}
INTERVALS = tuple(INTERVAL_SECONDS)
PERIOD_DAYS = {"1d": 1, "7d": 7, "30d": 30, "90d": 90, "1y": 365}
PERIODS = tuple(PERIOD_DAYS)


class Ticker(TypedDict):
    """The contract's `ticker`, as REST bodies and WebSocket frames carry it."""

    symbol: str
    name: str
    price: float | None
    change_24h: float | None
    change_percent_24h: float | None
    volume_24h: float | None
    market_cap: float | None
    rank: int | None
    last_updated: str | None
    source: str | None
    stale: bool


class Priced(TypedDict):
    """The market fields a ticker is rendered from, as stored (Decimals, an aware datetime)."""

    price: Decimal | None
    change_24h: Decimal | None
    change_percent_24h: Decimal | None
    volume_24h: Decimal | None
    market_cap: Decimal | None
    last_updated: datetime | None
    source: str | None


def ticker_render(*, symbol: str, name: str, rank: int | None, priced: Priced, stale: bool = False) -> Ticker:
    """The contract `ticker` of one asset; every producer (snapshot, asset list, stream) goes through here."""
    return {
        "symbol": symbol,
        "name": name,
        "price": _float(priced["price"]),
        "change_24h": _float(priced["change_24h"]),
        "change_percent_24h": _float(priced["change_percent_24h"]),
        "volume_24h": _float(priced["volume_24h"]),
        "market_cap": _float(priced["market_cap"]),
        "rank": rank,
        "last_updated": iso(priced["last_updated"]),
        "source": priced["source"],
        "stale": stale,
    }


@overload
def iso(moment: datetime) -> str: ...
@overload
def iso(moment: datetime | None) -> str | None: ...
def iso(moment: datetime | None) -> str | None:
    """The contract's timestamp (coinlink.contract owns the format). Imported here, not at the top: this
    module stays free of Django and DRF, as coinlink.config reads it while settings load."""
    from coinlink.contract import timestamp_or_none

    return timestamp_or_none(moment)


def _float(value: Decimal | float | None) -> float | None:
    return None if value is None else float(value)
