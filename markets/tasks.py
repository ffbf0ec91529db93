"""Celery interface of markets: thin wrappers over the services (names fixed by coinlink.beat_schedule)."""

from __future__ import annotations

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
