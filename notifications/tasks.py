"""Celery tasks of the notifications app: thin, idempotent, each calls one service."""

from __future__ import annotations

import smtplib

from celery import shared_task
from django.db import OperationalError

from notifications import evaluation, services


@shared_task(
    name="notifications.tasks.alerts_evaluate",
    autoretry_for=(OperationalError,),
    max_retries=2,
    retry_backoff=1,
    # A cycle's prices are worth little after a few polls; the next cycle re-evaluates.
    expires=120,
)
def alerts_evaluate(quote: str, prices: list, previous_prices: dict) -> int:
    return evaluation.alerts_evaluate(quote=quote, prices=prices, previous_prices=previous_prices)


@shared_task(
    bind=True,
    name="notifications.tasks.notification_email_send",
    autoretry_for=(smtplib.SMTPException, OSError),
    max_retries=6,
    retry_backoff=10,
    retry_backoff_max=900,
    retry_jitter=True,
)
def notification_email_send(self, notification_id: str) -> bool:
    return services.notification_email_send(notification_id=notification_id, retry=self.request.retries > 0)


@shared_task(
    bind=True,
    name="notifications.tasks.announcement_send",
    autoretry_for=(OperationalError,),
    max_retries=5,
    retry_backoff=5,
    soft_time_limit=1800,
    time_limit=1900,
)
def announcement_send(self, announcement_id: int) -> int:
    return services.announcement_send(announcement_id=announcement_id, resume=self.request.retries > 0)


@shared_task(name="notifications.tasks.notifications_purge", soft_time_limit=600, time_limit=660)
def notifications_purge() -> int:
    return services.notifications_purge()
