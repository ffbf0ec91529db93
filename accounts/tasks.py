"""Celery interface of `accounts`: load nothing, call the service."""

from __future__ import annotations

import logging
import smtplib
from typing import Any

from celery import shared_task

from accounts import recovery, services

logger = logging.getLogger("accounts.tasks")

# Mail tasks retry an unreachable or refusing SMTP server with backoff for about an hour. Each try
# issues a fresh token (voiding the one that was never delivered), so a retry is harmless.
_MAIL_RETRY: dict[str, Any] = {
    "autoretry_for": (smtplib.SMTPException, OSError),
    "max_retries": 6,
    "retry_backoff": 10,
    "retry_backoff_max": 900,
    "retry_jitter": True,
    "ignore_result": True,
}


@shared_task(name="accounts.tasks.tokens_purge", ignore_result=True)
def tokens_purge() -> dict[str, int]:
    """Delete expired refresh-token records, long-ended sessions and spent mailed tokens; safe to run twice."""
    deleted = services.tokens_purge()
    logger.info(
        "tokens_purge deleted %(sessions)d sessions, %(tokens)d token records and %(account_tokens)d mailed tokens",
        deleted,
    )
    return deleted


@shared_task(name="accounts.tasks.password_reset_mail", **_MAIL_RETRY)
def password_reset_mail(email: str) -> bool:
    return recovery.password_reset_mail_send(email=email)


@shared_task(name="accounts.tasks.email_verify_mail", **_MAIL_RETRY)
def email_verify_mail(user_id: str) -> bool:
    return recovery.email_verify_mail_send(user_id=user_id)


@shared_task(name="accounts.tasks.email_change_mail", **_MAIL_RETRY)
def email_change_mail(user_id: str, new_email: str) -> bool:
    return recovery.email_change_mail_send(user_id=user_id, new_email=new_email)


@shared_task(name="accounts.tasks.password_changed_mail", **_MAIL_RETRY)
def password_changed_mail(user_id: str) -> bool:
    return recovery.password_changed_mail_send(user_id=user_id)
