"""Alert evaluation under load: 100,000 active alerts over 50 assets, one ingest cycle moving every price.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/coinlink_bench REDIS_URL=redis://127.0.0.1:6379/5 \\
        .venv/bin/python bench/alerts_bench.py [--alerts 100000] [--move 0.03] [--runs 3]

Needs a migrated PostgreSQL database (`manage.py migrate`). It creates `alerts-bench-*` users, bulk
inserts their alerts, then times `notifications.evaluation.alerts_evaluate` for one cycle: the
indexed selection, the claim, AlertTrigger and Notification inserts, the commit and the after-commit
live pushes (one Redis PUBLISH each with REDIS_URL set). Targets are placed so that nothing fires at
the previous prices, as in a system that evaluated the previous cycle; the cycle then moves every
price by up to +/- `--move`. Each run starts from fresh alerts; the bench users are deleted at the end.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
import uuid
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "coinlink.settings")

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402

from accounts.models import User  # noqa: E402
from notifications import evaluation  # noqa: E402
from notifications.models import Alert, Notification  # noqa: E402

EMAIL_PREFIX = "alerts-bench-"
CONDITIONS = ["above", "below", "crosses_above", "crosses_below", "change_pct_24h_above", "change_pct_24h_below"]


def market(rng: random.Random, assets: int) -> list[dict]:
    return [
        {
            "symbol": f"BNCH{i}",
            "price": Decimal(str(round(10 ** rng.uniform(-2, 4.8), 6))),
            "change": Decimal(str(round(rng.uniform(-8, 8), 4))),
        }
        for i in range(assets)
    ]


def target(rng: random.Random, condition: str, asset: dict) -> Decimal:
    """A target that does not fire at the asset's current price or change."""
    price, change = asset["price"], asset["change"]
    if condition in ("above", "crosses_above"):
        value = price * Decimal(str(rng.uniform(1.0005, 1.3)))
    elif condition in ("below", "crosses_below"):
        value = price * Decimal(str(rng.uniform(0.7, 0.9995)))
    elif condition == "change_pct_24h_above":
        value = change + Decimal(str(rng.uniform(0.01, 20)))
    else:
        value = change - Decimal(str(rng.uniform(0.01, 20)))
    return value.quantize(Decimal("1e-8"))


def setup(rng: random.Random, alerts: int, assets: list[dict]) -> None:
    teardown()
    users = [
        User(id=uuid.uuid4(), email=f"{EMAIL_PREFIX}{i}@example.com", password="!")  # an unusable password
        for i in range(max(1, alerts // 100))
    ]
    User.objects.bulk_create(users, batch_size=5000)
    rows = []
    for n in range(alerts):
        asset = assets[n % len(assets)]
        condition = CONDITIONS[(n // len(assets)) % len(CONDITIONS)]
        rows.append(
            Alert(
                user=users[n % len(users)],
                symbol=asset["symbol"],
                condition=condition,
                target_value=target(rng, condition, asset),
                quote="usd",
                repeat=n % 2 == 0,
                cooldown_seconds=3600,
            )
        )
    Alert.objects.bulk_create(rows, batch_size=5000)
    # Steady state, as autovacuum keeps it in production: no dead rows from earlier runs, fresh statistics.
    with connection.cursor() as cursor:
        for table in ("notifications_alert", "notifications_alerttrigger", "notifications_notification"):
            cursor.execute(f"VACUUM ANALYZE {table}")


def teardown() -> None:
    users = User.objects.filter(email__startswith=EMAIL_PREFIX)
    Notification.objects.filter(user__in=users).delete()
    Alert.objects.filter(user__in=users).delete()
    users.delete()


def cycle(rng: random.Random, assets: list[dict], move: float) -> dict:
    prices, previous = [], {}
    for asset in assets:
        factor = Decimal(str(1 + rng.uniform(-move, move)))
        prices.append(
            {
                "symbol": asset["symbol"],
                "price": str((asset["price"] * factor).quantize(Decimal("1e-8"))),
                "change_percent_24h": str(asset["change"] + Decimal(str(round(rng.uniform(-move, move) * 100, 4)))),
            }
        )
        previous[asset["symbol"]] = str(asset["price"])
    return {"quote": "usd", "prices": prices, "previous_prices": previous}


def evaluate_marking_commit(args: dict) -> tuple[int, float | None]:
    """Run one cycle; also return when its transaction committed, to split "stored" from "pushed".

    The cycle runs inside this outer transaction, whose first after-commit callback is the mark, so
    it runs right after COMMIT and before the cycle's own after-commit delivery (callbacks run in order).
    """
    from django.db import transaction

    marks: list[float] = []
    with transaction.atomic():
        transaction.on_commit(lambda: marks.append(time.perf_counter()))
        count = evaluation.alerts_evaluate(**args)
    return count, (marks[0] if marks else None)


def explain(args: dict) -> str:
    ticks = evaluation.ticks_parse(prices=args["prices"], previous_prices=args["previous_prices"])
    from django.db.models import BooleanField
    from django.db.models.expressions import RawSQL

    # The selection alerts_evaluate runs (evaluation.firing_sql), under the same partial index.
    ranges = RawSQL(*evaluation.firing_sql(ticks), output_field=BooleanField())
    query = Alert.objects.filter(ranges, quote="usd", is_active=True).values("id")
    plan = query.explain(analyze=True)
    return "\n".join(line for line in plan.splitlines() if "Index" in line or "Execution" in line or "Bitmap" in line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=100_000)
    parser.add_argument("--assets", type=int, default=50)
    parser.add_argument("--move", type=float, default=0.03, help="largest relative price move in the cycle")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    options = parser.parse_args()
    if connection.vendor != "postgresql":
        sys.exit("alerts_bench needs PostgreSQL: set DATABASE_URL")

    rng = random.Random(options.seed)
    assets = market(rng, options.assets)
    timings, committed, fired = [], [], []
    try:
        for run in range(options.runs):
            started = time.perf_counter()
            setup(rng, options.alerts, assets)
            loaded = time.perf_counter() - started
            args = cycle(rng, assets, options.move)
            if run == 0:
                print("selection plan (EXPLAIN ANALYZE, index lines):\n" + explain(args))
            started = time.perf_counter()
            count, commit = evaluate_marking_commit(args)
            timings.append(time.perf_counter() - started)
            committed.append((commit or time.perf_counter()) - started)
            fired.append(count)
            print(
                f"run {run + 1}: loaded {options.alerts} alerts in {loaded:.1f}s; cycle fired {count}: "
                f"committed after {committed[-1]:.3f}s, last push sent after {timings[-1]:.3f}s"
            )
    finally:
        teardown()
    print(
        f"\n{options.alerts} active alerts, {options.assets} assets, moves up to +/-{options.move:.2%}, "
        f"pushes via {'Redis' if settings.CONFIG.redis_url else 'in-process hub'}: "
        f"fired median {int(statistics.median(fired))}; evaluated, claimed and stored (commit) median "
        f"{statistics.median(committed):.3f}s (max {max(committed):.3f}s); whole cycle with every live push "
        f"median {statistics.median(timings):.3f}s (min {min(timings):.3f}s, max {max(timings):.3f}s)"
    )


if __name__ == "__main__":
    main()
