"""Writes of the notifications app: alerts, notifications, settings, announcements, retention."""

from __future__ import annotations

import logging
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from accounts.emails import inbox_budget_left
from accounts.selectors import user_active_ids, user_recipient, user_row_lock
from coinlink.errors import DomainError
from markets.vocabulary import DEFAULT_QUOTE
from notifications.delivery import Draft, email_allowed, notifications_create
from notifications.models import (
    PERCENT_CONDITIONS,
    PREFERENCE_SWITCHES,
    Alert,
    Announcement,
    Notification,
    NotificationSettings,
    NotificationType,
    Priority,
)
from notifications.selectors import alert_active_count, alert_row_lock

logger = logging.getLogger("coinlink.notifications")

MAX_ACTIVE_ALERTS = 100
PERCENT_MIN = Decimal("-100")
PERCENT_MAX = Decimal("100000")
ANNOUNCEMENT_BATCH = 1000
PURGE_BATCH = 5000


class AlertLimitReached(DomainError):
    code = "alert_limit_reached"
    detail = f"You can have at most {MAX_ACTIVE_ALERTS} active alerts. Delete or pause one first."


class InvalidAlert(DomainError):
    code = "validation_error"


# --- Alerts ---------------------------------------------------------------------------------


def alert_create(
    *,
    user,
    symbol: str,
    condition: str,
    target_value: Decimal,
    quote: str = DEFAULT_QUOTE,
    is_active: bool = True,
    repeat: bool = False,
    cooldown_seconds: int = 3600,
) -> Alert:
    """Create an alert on a catalogue symbol; at most MAX_ACTIVE_ALERTS active per user."""
    alert = Alert(
        user=user,
        symbol=symbol.upper(),
        condition=condition,
        target_value=target_value,
        quote=quote,
        is_active=is_active,
        repeat=repeat,
        cooldown_seconds=cooldown_seconds,
    )
    _alert_validate(alert)
    with transaction.atomic():
        if alert.is_active:
            _active_slot_claim(user_id=user.pk)
        alert.save()
    return alert


def alert_update(*, alert: Alert, **changes) -> Alert:
    """Apply a full or partial update; activating an alert takes one of the user's active slots."""
    was_active = alert.is_active
    for name, value in changes.items():
        setattr(alert, name, value.upper() if name == "symbol" else value)
    _alert_validate(alert, symbol_changed="symbol" in changes)
    if alert.last_triggered_at is not None:
        alert.rearm_at = alert.last_triggered_at + timedelta(seconds=alert.cooldown_seconds)
    with transaction.atomic():
        if alert.is_active and not was_active:
            _active_slot_claim(user_id=alert.user_id, excluding=alert.pk)
        alert.save()
    return alert


def alert_delete(*, alert: Alert) -> None:
    """Delete the alert and its trigger history (`alert_deleting` locks it first)."""
    alert.delete()


def alert_deleting(sender, instance: Alert, **kwargs) -> None:
    """pre_delete of an Alert, however it is deleted (API, admin, its user's deletion): lock the row.

    An evaluator firing this alert holds the lock until its trigger row is committed; the cascade
    that follows must see that row, or the foreign key fails at COMMIT. An evaluator that comes
    later skips the locked row and fires nothing. Django sends pre_delete inside the deletion's
    transaction and before it deletes the triggers.
    """
    alert_row_lock(alert_id=instance.pk)


def _active_slot_claim(*, user_id, excluding=None) -> None:
    """Lock the user's row, then count: concurrent creates for one user queue here instead of overshooting."""
    user_row_lock(user_id=user_id)
    if alert_active_count(user_id=user_id, excluding=excluding) >= MAX_ACTIVE_ALERTS:
        raise AlertLimitReached()


def _alert_validate(alert: Alert, *, symbol_changed: bool = True) -> None:
    errors: dict[str, list[str]] = {}
    if alert.condition in PERCENT_CONDITIONS:
        if not PERCENT_MIN <= alert.target_value <= PERCENT_MAX:
            errors["target_value"] = [f"A 24 h change target is a percent between {PERCENT_MIN} and {PERCENT_MAX}."]
    elif alert.target_value <= 0:
        errors["target_value"] = ["A price target must be greater than zero."]
    if symbol_changed and not errors:
        from markets.selectors import symbols_known

        if alert.symbol not in symbols_known(symbols=[alert.symbol]):
            errors["symbol"] = [f"{alert.symbol} is not a tracked asset."]
    if errors:
        field, messages = next(iter(errors.items()))
        raise InvalidAlert(f"{field}: {messages[0]}", errors=errors)


# --- Notifications --------------------------------------------------------------------------


def notification_mark_read(*, notification: Notification) -> Notification:
    now = timezone.now()
    if Notification.objects.filter(pk=notification.pk, is_read=False).update(is_read=True, read_at=now):
        notification.is_read, notification.read_at = True, now
    return notification


def notification_mark_all_read(*, user) -> int:
    return Notification.objects.filter(user=user, is_read=False).update(is_read=True, read_at=timezone.now())


def notification_delete(*, notification: Notification) -> None:
    notification.delete()


def notification_settings_update(*, user, **changes) -> NotificationSettings:
    with transaction.atomic():
        prefs, _ = NotificationSettings.objects.select_for_update().get_or_create(user=user)
        for name, value in changes.items():
            setattr(prefs, name, value)
        prefs.save()
    return prefs


def preference_switches_update(*, user, **switches: bool) -> None:
    """Change settings through `/user/preferences`' names for them."""
    if switches:
        notification_settings_update(user=user, **{PREFERENCE_SWITCHES[name]: on for name, on in switches.items()})


def security_alert_new_device(*, user, ip_address: str, user_agent: str) -> Notification | None:
    """A security_alert for a sign-in from a device not seen before (honours the user's settings)."""
    # The User-Agent stays out of the text, which may be mailed: it is whatever the client sent, and
    # the address is not verified, so it would put anyone's words in mail from us. `data` has it.
    draft = Draft(
        user_id=user.pk,
        type=NotificationType.SECURITY_ALERT,
        title="New sign-in to your account",
        message=f"Your account was signed in from a new device at {ip_address or 'an unknown address'}. "
        "If this was not you, change your password and sign out of all sessions.",
        priority=Priority.HIGH,
        data={"ip_address": ip_address, "user_agent": user_agent[:500] if user_agent else ""},
    )
    with transaction.atomic():
        created = notifications_create(drafts=[draft])
    return created[0] if created else None


def security_alert_password_changed(*, user) -> Notification | None:
    """A security_alert that the password was changed and every other session ended (honours the user's settings)."""
    draft = Draft(
        user_id=user.pk,
        type=NotificationType.SECURITY_ALERT,
        title="Your password was changed",
        message="The password of your account was changed and other sessions were signed out. "
        "If this was not you, reset your password now.",
        priority=Priority.HIGH,
    )
    with transaction.atomic():
        created = notifications_create(drafts=[draft])
    return created[0] if created else None


def notification_email_send(*, notification_id: str, retry: bool = False) -> bool:
    """Mail one notification to its user; True when sent now, False when already sent or gone.

    SMTP errors propagate so the Celery task retries with backoff; `emailed_at` stops a retry
    after success from mailing twice.
    """
    note = Notification.objects.filter(pk=notification_id, emailed_at=None).first()
    recipient = user_recipient(user_id=note.user_id) if note is not None else None
    if note is None or recipient is None:
        return False
    if not email_allowed(notification_type=note.type, address_verified=recipient.is_verified):
        return False
    if not retry and not _email_budget_left(recipient.email):  # a retry was counted on its first try
        logger.warning("notification mail not sent: hourly budget of its recipient spent (%s)", note.pk)
        return False
    send_mail(
        subject=f"[CoinLink] {note.title}",
        message=f"{note.message}\n\nYou receive this because email notifications are on in your CoinLink settings.",
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=[recipient.email],
    )
    Notification.objects.filter(pk=note.pk).update(emailed_at=timezone.now())
    from coinlink import metrics

    metrics.NOTIFICATIONS_SENT.labels(type=note.type, channel="email").inc()
    return True


def _email_budget_left(address: str) -> bool:
    """Count one mail against its recipient's hourly budget; False once that is spent.

    Security alerts are mailed to unverified addresses too, so without a cap anyone could have us
    mail a stranger as often as an account in their name signs in from somewhere new.
    """
    return inbox_budget_left(address, group="notification-email", per_hour=settings.NOTIFICATION_EMAILS_PER_HOUR)


# --- Announcements --------------------------------------------------------------------------


def announcement_enqueue(*, announcement: Announcement) -> None:
    from notifications.tasks import announcement_send

    transaction.on_commit(lambda: announcement_send.delay(announcement_id=announcement.pk))


def announcement_send(*, announcement_id: int, resume: bool = False) -> int:
    """Send an announcement to every active user in batches; returns how many notifications were created.

    The first run claims it (sent_at from NULL); a second run does nothing, unless it is a retry
    of the claiming run (`resume`), which picks up where the unique (user, announcement)
    constraint says it stopped.
    """
    now = timezone.now()
    claimed = Announcement.objects.filter(pk=announcement_id, sent_at=None).update(sent_at=now)
    if not claimed and not (resume and Announcement.objects.filter(pk=announcement_id, completed_at=None).exists()):
        return 0
    announcement = Announcement.objects.get(pk=announcement_id)
    created = sum(_announcement_batch(announcement, batch) for batch in _active_user_batches())
    Announcement.objects.filter(pk=announcement_id).update(
        completed_at=timezone.now(), recipients=Notification.objects.filter(announcement=announcement).count()
    )
    return created


def _active_user_batches():
    ids = user_active_ids(limit=ANNOUNCEMENT_BATCH)
    while ids:
        yield ids
        ids = user_active_ids(after=ids[-1], limit=ANNOUNCEMENT_BATCH)


def _announcement_batch(announcement: Announcement, user_ids: list) -> int:
    drafts = [
        Draft(
            user_id=uid,
            type=NotificationType.SYSTEM_ALERT,
            title=announcement.title,
            message=announcement.message,
            priority=announcement.priority,
            data={"announcement_id": announcement.pk},
            announcement_id=announcement.pk,
        )
        for uid in user_ids
    ]
    with transaction.atomic():
        return len(notifications_create(drafts=drafts))


# --- Retention ------------------------------------------------------------------------------


def notifications_purge(*, now=None, retention_days: int | None = None) -> int:
    """Delete read notifications older than the retention period, then every user's notifications
    beyond their newest NOTIFICATION_INBOX_MAX, in batches; returns how many."""
    days = retention_days or settings.NOTIFICATION_RETENTION_DAYS
    cutoff = (now or timezone.now()) - timedelta(days=days)
    deleted = _delete_in_batches(Notification.objects.filter(is_read=True, created_at__lt=cutoff).order_by())
    # Unread rows are otherwise kept, and repeating alerts can add thousands a day to one inbox.
    cap = settings.NOTIFICATION_INBOX_MAX
    crowded = Notification.objects.values("user_id").annotate(n=Count("id")).filter(n__gt=cap).order_by()
    for row in crowded:
        newest_first = Notification.objects.filter(user_id=row["user_id"]).order_by("-created_at", "-id")
        deleted += _delete_in_batches(newest_first, skip=cap)
    return deleted


def _delete_in_batches(rows, *, skip: int = 0) -> int:
    deleted = 0
    while True:
        ids = list(rows.values_list("pk", flat=True)[skip : skip + PURGE_BATCH])
        if not ids:
            return deleted
        deleted += Notification.objects.filter(pk__in=ids).delete()[0]
