"""Payload validation shared by the provider parsers: what upstream sends is untrusted input.

A row that fails raises `Rejected`; the parser drops that row, counts it and keeps the others.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Literal, overload

from coinlink import metrics

logger = logging.getLogger("markets.validate")

PRICE_MIN = Decimal("1e-12")
PRICE_MAX = Decimal("1e10")
AMOUNT_MAX = Decimal("1e16")
CHANGE_PCT_MIN = Decimal("-100")
CHANGE_PCT_MAX = Decimal("1e6")
FUTURE_SLACK = timedelta(minutes=5)


class Rejected(ValueError):
    """A payload or a row that must not be stored."""


@dataclass(frozen=True)
class TickerRow:
    symbol: str
    price: Decimal
    change_24h: Decimal | None
    change_percent_24h: Decimal | None
    volume_24h: Decimal | None
    market_cap: Decimal | None
    bid: Decimal | None
    ask: Decimal | None
    last_updated: datetime
    source: str


@dataclass(frozen=True)
class CandleRow:
    open_time: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal | None


PRICE_PLACES = Decimal("1e-12")
AMOUNT_PLACES = Decimal("0.01")
PERCENT_PLACES = Decimal("0.0001")
VOLUME_PLACES = Decimal("1e-8")


@overload
def number(
    value, name: str, *, required: Literal[True] = True, minimum=None, maximum=None, positive=False, places=None
) -> Decimal: ...
@overload
def number(
    value, name: str, *, required: bool, minimum=None, maximum=None, positive=False, places=None
) -> Decimal | None: ...
def number(
    value, name: str, *, required: bool = True, minimum=None, maximum=None, positive=False, places=None
) -> Decimal | None:
    """A finite Decimal from a JSON number or numeric string, within bounds, rounded to the column's
    `places` (so a stored value compares equal to the next identical answer); None if optional and null."""
    if value is None or value == "":
        if required:
            raise Rejected(f"{name} is missing")
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise Rejected(f"{name} is not a number: {type(value).__name__}")
    if isinstance(value, str) and len(value) > 64:
        raise Rejected(f"{name} is too long")
    try:
        result = Decimal(str(value))
    except InvalidOperation:
        raise Rejected(f"{name} is not a number: {str(value)[:30]!r}") from None
    if not result.is_finite():
        raise Rejected(f"{name} is not finite")
    if positive and result <= 0:
        raise Rejected(f"{name} must be positive, got {result}")
    if minimum is not None and result < minimum:
        raise Rejected(f"{name} below {minimum}: {result}")
    if maximum is not None and result > maximum:
        raise Rejected(f"{name} above {maximum}: {result}")
    if places is not None:
        result = result.quantize(places)
        if positive and result <= 0:
            raise Rejected(f"{name} rounds to zero")
    return result


@overload
def price(value, name: str = "price", *, required: Literal[True] = True) -> Decimal: ...
@overload
def price(value, name: str = "price", *, required: bool) -> Decimal | None: ...
def price(value, name: str = "price", *, required: bool = True) -> Decimal | None:
    return number(
        value, name, required=required, positive=True, minimum=PRICE_MIN, maximum=PRICE_MAX, places=PRICE_PLACES
    )


def change(value, name: str) -> Decimal | None:
    """An absolute 24 h change in the quote currency: optional, |x| <= the largest price."""
    return number(value, name, required=False, minimum=-PRICE_MAX, maximum=PRICE_MAX, places=PRICE_PLACES)


def change_percent(value, name: str) -> Decimal | None:
    """A 24 h change in percent: optional, from -100 (worthless) to 1e6."""
    return number(value, name, required=False, minimum=CHANGE_PCT_MIN, maximum=CHANGE_PCT_MAX, places=PERCENT_PLACES)


def amount(value, name: str) -> Decimal | None:
    """Volumes and market caps: optional, never negative, below 1e16."""
    return number(value, name, required=False, minimum=Decimal(0), maximum=AMOUNT_MAX, places=AMOUNT_PLACES)


def base_volume(value, name: str) -> Decimal | None:
    """A volume in the base asset (Coinbase): optional, never negative, 8 decimal places."""
    return number(value, name, required=False, minimum=Decimal(0), maximum=AMOUNT_MAX, places=VOLUME_PLACES)


def timestamp(value, name: str, *, default: datetime) -> datetime:
    """An ISO-8601 string or epoch seconds; not in the future; `default` when absent."""
    if value is None or value == "":
        return default
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            parsed = datetime.fromtimestamp(float(value), tz=UTC)
        elif isinstance(value, str) and len(value) <= 40:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        else:
            raise ValueError
    except (ValueError, OverflowError, OSError):
        raise Rejected(f"{name} is not a timestamp: {str(value)[:40]!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    if parsed > datetime.now(tz=UTC) + FUTURE_SLACK:
        raise Rejected(f"{name} is in the future: {parsed.isoformat()}")
    return parsed


def reject(provider: str, what: str, error: Exception) -> None:
    """Count and log one rejected payload or row."""
    metrics.UPSTREAM_REJECTED.labels(provider=provider).inc()
    logger.warning("%s: rejected %s: %s", provider, what, error)


def candle(open_time: datetime, o, h, low, c, volume) -> CandleRow:
    o, h, low, c = price(o, "open"), price(h, "high"), price(low, "low"), price(c, "close")
    row = CandleRow(open_time, o, h, low, c, base_volume(volume, "volume"))
    if not (row.low <= min(row.open, row.close) and row.high >= max(row.open, row.close)):
        raise Rejected(f"inconsistent OHLC at {open_time.isoformat()}")
    return row
