"""Celery interface of markets: thin wrappers over the services (names fixed by coinlink.beat_schedule)."""

from __future__ import annotations

import random

from celery import shared_task


@shared_task(name="markets.tasks.market_ingest", ignore_result=True, soft_time_limit=55, time_limit=60)
def market_ingest() -> dict:
    from markets.services import market_ingest as run

    result = run()
    return {"skipped": result.skipped, "stored": result.stored, "changed": result.changed}


@shared_task(name="markets.tasks.candles_backfill", ignore_result=True, soft_time_limit=900, time_limit=960)
def candles_backfill() -> dict:
    from django.conf import settings

    from markets.backfill import candles_backfill as run

    if settings.EMBEDDED:
        # The in-process scheduler runs jobs one after another: a long backfill would stall the ingest.
        return run(max_series=5, budget_seconds=settings.MARKET_POLL_SECONDS / 2)
    return run(budget_seconds=840.0)


@shared_task(
    bind=True,
    name="markets.tasks.series_backfill",
    ignore_result=True,
    max_retries=60,
    soft_time_limit=120,
    time_limit=150,
)
def series_backfill(self, asset_id: int, quote: str, interval: str) -> int:
    """One series the history endpoint found empty (queued by markets.history, once per series)."""
    from django.conf import settings

    from markets.backfill import series_backfill as run
    from markets.history import BackfillBusy

    # Embedded: the in-process scheduler runs it between ingests, which must not wait long for it.
    budget = settings.MARKET_POLL_SECONDS / 2 if settings.EMBEDDED else 90.0
    try:
        return run(asset_id=asset_id, quote=quote, interval=interval, budget_seconds=budget)
    except BackfillBusy:
        raise self.retry(countdown=random.uniform(5, 30)) from None  # noqa: S311 - spread, not crypto
