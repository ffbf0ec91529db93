"""Celery interface of `accounts`: load nothing, call the service."""

from __future__ import annotations

import logging

from celery import shared_task

from accounts import services

logger = logging.getLogger("accounts.tasks")


@shared_task(name="accounts.tasks.tokens_purge", ignore_result=True)
def tokens_purge() -> dict[str, int]:
    """Delete expired refresh-token records and long-ended sessions; safe to run twice."""
    deleted = services.tokens_purge()
    logger.info("tokens_purge deleted %(sessions)d sessions and %(tokens)d token records", deleted)
    return deleted
