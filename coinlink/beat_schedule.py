"""The periodic jobs, defined once: Celery beat runs them in production, the in-process
scheduler (coinlink.embedded_scheduler) in the embedded default. Never both."""

from __future__ import annotations

from django.conf import settings


def beat_schedule() -> dict:
    poll = settings.MARKET_POLL_SECONDS
    return {
        "markets-ingest": {
            "task": "markets.tasks.market_ingest",
            "schedule": float(poll),
            # A run that waited longer than its period is worthless: the next one is due.
            "options": {"expires": max(1.0, poll * 0.9)},
        },
        "markets-backfill": {
            "task": "markets.tasks.candles_backfill",
            "schedule": 3600.0,
            "options": {"expires": 3000.0},
        },
        "accounts-purge": {
            "task": "accounts.tasks.tokens_purge",
            "schedule": 3600.0,
            "options": {"expires": 3000.0},
        },
        "notifications-purge": {
            "task": "notifications.tasks.notifications_purge",
            "schedule": 86400.0,
            "options": {"expires": 3600.0},
        },
    }
