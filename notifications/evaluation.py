"""Alert evaluation for one ingest cycle: find what fires with indexed range queries, claim it once, notify.

Per symbol the firing alerts are a range of `target_value` under the partial index
(quote, symbol, condition, target_value) WHERE is_active:

    above          target <= price              below          target >= price
    crosses_above  previous < target <= price   crosses_below  price <= target < previous
    change_pct_24h_above  target <= change      change_pct_24h_below  target >= change

One query selects them all (an OR of those ranges over every symbol of the cycle, written as SQL:
as Q objects it cost ~25 ms of CPU per cycle to build and compile) and locks them `FOR UPDATE
SKIP LOCKED`, re-checking "active and out of cooldown" under the lock; a second worker evaluating
the same cycle skips the locked rows and, once they commit, no longer matches them. One UPDATE
then marks the claimed rows (last_triggered_at, rearm_at, trigger_count, and is_active := repeat);
their AlertTrigger rows and price_alert notifications are inserted in the same transaction, and
delivery happens after commit.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation

from django.db import transaction
from django.db.models import BooleanField, Case, DateTimeField, F, Q, Value, When
from django.db.models.expressions import RawSQL
from django.utils import timezone

from coinlink import metrics
from notifications.delivery import Draft, notifications_create
from notifications.models import Alert, AlertTrigger, Condition, NotificationType, Priority

logger = logging.getLogger("coinlink.notifications")

_CLAIM_FIELDS = ("id", "user_id", "symbol", "condition", "target_value", "quote", "repeat", "cooldown_seconds")
_VERBS = {
    Condition.ABOVE: "is at or above",
    Condition.BELOW: "is at or below",
    Condition.CROSSES_ABOVE: "crossed above",
    Condition.CROSSES_BELOW: "crossed below",
    Condition.CHANGE_PCT_24H_ABOVE: "24 h change is at or above",
    Condition.CHANGE_PCT_24H_BELOW: "24 h change is at or below",
}


@dataclass(frozen=True)
class Tick:
    symbol: str
    price: Decimal
    previous: Decimal | None
    change_pct: Decimal | None


def ticks_parse(*, prices: list[dict], previous_prices: dict) -> list[Tick]:
    """The task's JSON arguments as Decimals; rows that are not finite numbers are skipped."""
    ticks = []
    previous_prices = previous_prices if isinstance(previous_prices, dict) else {}
    for row in prices if isinstance(prices, list) else []:
        if not isinstance(row, dict):
            continue
        symbol = str(row.get("symbol") or "").upper()
        price = _decimal(row.get("price"))
        if not symbol or price is None or price <= 0:
            logger.warning("alert evaluation skipped a malformed price row for %r", symbol[:16])
            continue
        previous = _decimal(previous_prices.get(symbol) or previous_prices.get(symbol.lower()))
        ticks.append(Tick(symbol, price, previous, _decimal(row.get("change_percent_24h"))))
    return ticks


def _decimal(value) -> Decimal | None:
    if value is None:
        return None
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def firing_sql(ticks: list[Tick]) -> tuple[str, list] | None:
    """The OR over every symbol and condition of the target range that fires at this tick, as SQL.

    Built by hand, not as Q objects: a cycle of 50 symbols is ~300 range branches, and the ORM spent
    ~25 ms of CPU per cycle building and compiling them (most of the Celery worker's evaluation time).
    The shape is the flat OR of (symbol, condition, target range) the partial index serves, in plain
    SQL that PostgreSQL and SQLite both run.
    """
    branches: list[str] = []
    params: list = []

    def branch(symbol: str, condition: Condition, *ranges: tuple[str, Decimal]) -> None:
        branches.append(
            "(symbol = %s AND condition = %s" + "".join(f" AND target_value {op} %s" for op, _ in ranges) + ")"
        )
        params.extend([symbol, condition.value, *(value for _, value in ranges)])

    for t in ticks:
        branch(t.symbol, Condition.ABOVE, ("<=", t.price))
        branch(t.symbol, Condition.BELOW, (">=", t.price))
        # Without a previous price nothing was crossed; a flat price crosses nothing either.
        if t.previous is not None and t.price > t.previous:
            branch(t.symbol, Condition.CROSSES_ABOVE, (">", t.previous), ("<=", t.price))
        if t.previous is not None and t.price < t.previous:
            branch(t.symbol, Condition.CROSSES_BELOW, ("<", t.previous), (">=", t.price))
        if t.change_pct is not None:
            branch(t.symbol, Condition.CHANGE_PCT_24H_ABOVE, ("<=", t.change_pct))
            branch(t.symbol, Condition.CHANGE_PCT_24H_BELOW, (">=", t.change_pct))
    if not branches:
        return None
    return "(" + " OR ".join(branches) + ")", params


def alerts_evaluate(*, quote: str, prices: list[dict], previous_prices: dict, now: datetime | None = None) -> int:
    """Fire every alert on `quote` that this cycle satisfies, each exactly once; returns how many fired."""
    now = now or timezone.now()
    ticks = ticks_parse(prices=prices, previous_prices=previous_prices or {})
    match = firing_sql(ticks)
    if match is None:
        return 0
    by_symbol = {t.symbol: t for t in ticks}
    with transaction.atomic():
        claimed = alerts_claim(quote=quote.lower(), match=match, now=now)
        if not claimed:
            return 0
        AlertTrigger.objects.bulk_create(
            [
                AlertTrigger(
                    alert_id=a["id"],
                    price=by_symbol[a["symbol"]].price,
                    previous_price=by_symbol[a["symbol"]].previous,
                    change_percent_24h=_bounded_pct(by_symbol[a["symbol"]].change_pct),
                    fired_at=now,
                )
                for a in claimed
            ],
            batch_size=1000,
        )
        notifications_create(drafts=[_draft(a, by_symbol[a["symbol"]]) for a in claimed], now=now)
        transaction.on_commit(lambda: _count(claimed))
    return len(claimed)


def alerts_claim(*, quote: str, match: tuple[str, list], now: datetime) -> list[dict]:
    """Lock the firing alerts (SKIP LOCKED), then mark them fired with one UPDATE; returns them by id.

    Rows a concurrent evaluator holds are skipped, and rows it committed are re-checked under the
    lock, so they no longer match: each alert fires once however many workers evaluate the cycle.
    """
    due = Q(rearm_at__isnull=True) | Q(rearm_at__lte=now)
    ranges = RawSQL(*match, output_field=BooleanField())  # noqa: S611 - our placeholders; values are params
    eligible = Alert.objects.filter(due, ranges, quote=quote, is_active=True)
    rows = list(eligible.select_for_update(skip_locked=True).order_by("id").values(*_CLAIM_FIELDS))
    if not rows:
        return rows
    # One statement for every cooldown (a CASE), so the writes do not grow with the users' settings.
    cooldowns = {row["cooldown_seconds"] for row in rows}
    rearm = Case(
        *(When(cooldown_seconds=c, then=Value(now + timedelta(seconds=c))) for c in cooldowns),
        output_field=DateTimeField(),
    )
    updated = Alert.objects.filter(due, id__in=[row["id"] for row in rows], is_active=True).update(
        is_active=F("repeat"), last_triggered_at=now, rearm_at=rearm, trigger_count=F("trigger_count") + 1
    )
    if updated != len(rows):  # impossible while we hold the row locks; never fire on a doubtful claim
        raise RuntimeError(f"alert claim updated {updated} of {len(rows)} locked rows")
    return rows


def _bounded_pct(value: Decimal | None) -> Decimal | None:
    if value is None or abs(value) >= Decimal("1e12"):
        return None
    return value.quantize(Decimal("1e-8"))


def _draft(alert: dict, tick: Tick) -> Draft:
    quote = alert["quote"].upper()
    target = alert["target_value"].normalize()
    percent = alert["condition"] in (Condition.CHANGE_PCT_24H_ABOVE, Condition.CHANGE_PCT_24H_BELOW)
    target_text = f"{target:f}%" if percent else f"{target:f} {quote}"
    change = f" (24 h change {tick.change_pct:f}%)" if percent and tick.change_pct is not None else ""
    return Draft(
        user_id=alert["user_id"],
        type=NotificationType.PRICE_ALERT,
        title=f"{alert['symbol']} {_VERBS[alert['condition']]} {target_text}",
        message=f"{alert['symbol']} is at {tick.price.normalize():f} {quote}{change}.",
        priority=Priority.HIGH,
        data={
            "alert_id": str(alert["id"]),
            "symbol": alert["symbol"],
            "condition": alert["condition"],
            "target_value": float(alert["target_value"]),
            "vs": alert["quote"],
            "price": float(tick.price),
            "previous_price": None if tick.previous is None else float(tick.previous),
            "change_percent_24h": None if tick.change_pct is None else float(tick.change_pct),
        },
    )


def _count(claimed: list[dict]) -> None:
    for alert in claimed:
        metrics.ALERTS_FIRED.labels(condition=alert["condition"]).inc()
