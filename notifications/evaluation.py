"""Alert evaluation for one ingest cycle: find what fires with indexed range queries, claim it once, notify.

Per symbol the firing alerts are a range of `target_value` under the partial index
(vs, symbol, condition, target_value) WHERE is_active:

    above          target <= price              below          target >= price
    crosses_above  previous < target <= price   crosses_below  price <= target < previous
    change_pct_24h_above  target <= change      change_pct_24h_below  target >= change

One statement claims them all: an UPDATE of the rows that a sub-select (an OR of those ranges over
every symbol of the cycle) locks `FOR UPDATE SKIP LOCKED`, re-checking "active and out of cooldown"
under the lock, RETURNING what fired. A second worker evaluating the same cycle skips the locked
rows and, once they commit, no longer matches them. The claim sets last_triggered_at, rearm_at,
trigger_count and is_active := repeat; the AlertTrigger rows and price_alert notifications are
inserted in the same transaction, and delivery happens after commit.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation

from django.db import connection, transaction
from django.utils import timezone

from coinlink import metrics
from notifications.delivery import Draft, notifications_create
from notifications.models import Alert, AlertTrigger, Condition, NotificationType, Priority

logger = logging.getLogger("coinlink.notifications")

_CLAIM_FIELDS = ("id", "user_id", "symbol", "condition", "target_value", "vs", "repeat", "cooldown_seconds")
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
    The shape is the same flat OR of (symbol, condition, target range) the partial index serves.
    """
    branches: list[str] = []
    params: list = []

    def branch(symbol: str, condition: str, *ranges: tuple[str, Decimal]) -> None:
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
        claimed = _claim(quote=quote.lower(), match=match, now=now)
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


def _claim(*, quote: str, match: tuple[str, list], now: datetime) -> list[dict]:
    """Claim the firing alerts in one statement; returns them ordered by id.

    The sub-select locks with SKIP LOCKED (a concurrent evaluator's rows are skipped, and rows it
    committed are re-checked under the lock, so they no longer match); the UPDATE then changes only
    rows this transaction holds, so each alert fires once however many workers evaluate the cycle.
    """
    table = connection.ops.quote_name(Alert._meta.db_table)
    where, match_params = match
    sql = f"""
        UPDATE {table} SET
            is_active = "repeat",
            last_triggered_at = %s,
            rearm_at = %s + cooldown_seconds * interval '1 second',
            trigger_count = trigger_count + 1
        WHERE id IN (
            SELECT id FROM {table}
            WHERE vs = %s AND is_active AND (rearm_at IS NULL OR rearm_at <= %s) AND {where}
            FOR UPDATE SKIP LOCKED
        )
        RETURNING {", ".join(_CLAIM_FIELDS)}
    """  # noqa: S608 - only the table name and our own placeholders are formatted in
    with connection.cursor() as cursor:
        cursor.execute(sql, [now, now, quote, now, *match_params])
        rows = [dict(zip(_CLAIM_FIELDS, row, strict=True)) for row in cursor.fetchall()]
    return sorted(rows, key=lambda row: row["id"])


def _bounded_pct(value: Decimal | None) -> Decimal | None:
    if value is None or abs(value) >= Decimal("1e12"):
        return None
    return value.quantize(Decimal("1e-8"))


def _draft(alert: dict, tick: Tick) -> Draft:
    vs = alert["vs"].upper()
    target = alert["target_value"].normalize()
    percent = alert["condition"] in (Condition.CHANGE_PCT_24H_ABOVE, Condition.CHANGE_PCT_24H_BELOW)
    target_text = f"{target:f}%" if percent else f"{target:f} {vs}"
    change = f" (24 h change {tick.change_pct:f}%)" if percent and tick.change_pct is not None else ""
    return Draft(
        user_id=alert["user_id"],
        type=NotificationType.PRICE_ALERT,
        title=f"{alert['symbol']} {_VERBS[alert['condition']]} {target_text}",
        message=f"{alert['symbol']} is at {tick.price.normalize():f} {vs}{change}.",
        priority=Priority.HIGH,
        data={
            "alert_id": str(alert["id"]),
            "symbol": alert["symbol"],
            "condition": alert["condition"],
            "target_value": float(alert["target_value"]),
            "vs": alert["vs"],
            "price": float(tick.price),
            "previous_price": None if tick.previous is None else float(tick.previous),
            "change_percent_24h": None if tick.change_pct is None else float(tick.change_pct),
        },
    )


def _count(claimed: list[dict]) -> None:
    for alert in claimed:
        metrics.ALERTS_FIRED.labels(condition=alert["condition"]).inc()
