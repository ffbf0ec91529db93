"""Coinbase Exchange feed messages, parsed and validated as strictly as the REST providers' answers.

The documented shapes: `ticker` (product_id, price, open_24h, volume_24h, best_bid, best_ask, time,
sequence, trade_id), `heartbeat` (product_id, sequence, last_trade_id, time), `subscriptions` and
`error`. A message that must not reach the snapshot raises `Dropped` with the reason it is counted
under; a message type we do not use parses to None.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from markets.providers import validate as v
from markets.providers.validate import Rejected

# Sequences and trade ids are 64-bit on Coinbase; anything beyond is not theirs.
COUNTER_MAX = 2**63


class Dropped(ValueError):
    """A message that is not used; `reason` is its metrics label."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Trade:
    """A `ticker` message: the last trade of a product, with its 24 h open and the top of the book."""

    product_id: str
    price: Decimal
    open_24h: Decimal | None
    bid: Decimal | None
    ask: Decimal | None
    time: datetime
    sequence: int
    trade_id: int


@dataclass(frozen=True, slots=True)
class Heartbeat:
    product_id: str
    sequence: int
    last_trade_id: int
    time: datetime


@dataclass(frozen=True, slots=True)
class Subscribed:
    """The `subscriptions` reply: the products the `ticker` channel really carries."""

    ticker_products: frozenset[str]


@dataclass(frozen=True, slots=True)
class FeedError:
    message: str
    reason: str


Message = Trade | Heartbeat | Subscribed | FeedError


def subscribe_message(products: list[str]) -> str:
    return json.dumps({"type": "subscribe", "product_ids": products, "channels": ["ticker", "heartbeat"]})


def message_parse(raw: str | bytes, *, products: dict) -> Message | None:
    """One feed message; raises Dropped for garbage, invalid values and products we did not ask for."""
    try:
        payload = json.loads(raw)
    except (ValueError, RecursionError):
        raise Dropped("unparsable") from None
    if not isinstance(payload, dict):
        raise Dropped("unparsable", "not an object")
    kind = payload.get("type")
    parser = _PARSERS.get(kind) if isinstance(kind, str) else None
    if parser is None:
        return None
    try:
        return parser(payload, products)
    except Rejected as exc:
        raise Dropped("invalid", str(exc)) from None


def _product(payload: dict, products: dict) -> str:
    product = payload.get("product_id")
    if not isinstance(product, str) or product not in products:
        raise Dropped("unknown_product", str(product)[:40])
    return product


def _counter(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < COUNTER_MAX:
        raise Rejected(f"{name} is not a counter: {str(value)[:30]!r}")
    return value


def _time(value) -> datetime:
    if value is None or value == "":
        raise Rejected("time is missing")
    return v.timestamp(value, "time", default=datetime.now(tz=UTC))


def _ticker(payload: dict, products: dict) -> Trade:
    product = _product(payload, products)
    bid = v.price(payload.get("best_bid"), "best_bid", required=False)
    ask = v.price(payload.get("best_ask"), "best_ask", required=False)
    if bid is not None and ask is not None and bid > ask:
        raise Rejected(f"crossed book: bid {bid} > ask {ask}")
    v.base_volume(payload.get("volume_24h"), "volume_24h")  # unused (the poll owns volume), still checked
    return Trade(
        product_id=product,
        price=v.price(payload.get("price")),
        open_24h=v.price(payload.get("open_24h"), "open_24h", required=False),
        bid=bid,
        ask=ask,
        time=_time(payload.get("time")),
        sequence=_counter(payload.get("sequence"), "sequence"),
        trade_id=_counter(payload.get("trade_id"), "trade_id"),
    )


def _heartbeat(payload: dict, products: dict) -> Heartbeat:
    return Heartbeat(
        product_id=_product(payload, products),
        sequence=_counter(payload.get("sequence"), "sequence"),
        last_trade_id=_counter(payload.get("last_trade_id"), "last_trade_id"),
        time=_time(payload.get("time")),
    )


def _subscriptions(payload: dict, products: dict) -> Subscribed:
    channels = payload.get("channels")
    if not isinstance(channels, list):
        raise Rejected("subscriptions without a channel list")
    carried: set[str] = set()
    for channel in channels:
        if isinstance(channel, dict) and channel.get("name") == "ticker":
            ids = channel.get("product_ids")
            if isinstance(ids, list):
                carried.update(p for p in ids if isinstance(p, str))
    return Subscribed(frozenset(carried))


def _error(payload: dict, products: dict) -> FeedError:
    return FeedError(message=str(payload.get("message") or "")[:200], reason=str(payload.get("reason") or "")[:200])


_PARSERS: dict[str, Callable[[dict, dict], Message]] = {
    "ticker": _ticker,
    "heartbeat": _heartbeat,
    "subscriptions": _subscriptions,
    "error": _error,
}
