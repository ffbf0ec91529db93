"""Price alerts, their firing history, notifications, per-user notification settings and staff announcements."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from markets.vocabulary import DEFAULT_QUOTE, QUOTES

QUOTE_CHOICES = [(q, q) for q in QUOTES]


class Condition(models.TextChoices):
    ABOVE = "above"
    BELOW = "below"
    CROSSES_ABOVE = "crosses_above"
    CROSSES_BELOW = "crosses_below"
    CHANGE_PCT_24H_ABOVE = "change_pct_24h_above"
    CHANGE_PCT_24H_BELOW = "change_pct_24h_below"


PERCENT_CONDITIONS = frozenset({Condition.CHANGE_PCT_24H_ABOVE, Condition.CHANGE_PCT_24H_BELOW})


class NotificationType(models.TextChoices):
    PRICE_ALERT = "price_alert"
    NEWS_UPDATE = "news_update"
    SYSTEM_ALERT = "system_alert"
    SECURITY_ALERT = "security_alert"


class Priority(models.TextChoices):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


# Which NotificationSettings switch governs each notification type.
TYPE_SWITCH: dict[str, str] = {
    NotificationType.PRICE_ALERT: "price_alerts",
    NotificationType.NEWS_UPDATE: "news_updates",
    NotificationType.SYSTEM_ALERT: "system_alerts",
    NotificationType.SECURITY_ALERT: "security_alerts",
}


class Alert(models.Model):
    """A user's price alert; `target_value` is a price in `quote` (the API calls it `vs`) or, for the
    change conditions, a percent."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # Indexed by (user, -created_at) below; a separate FK index would only slow the writes.
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="alerts", db_index=False)
    symbol = models.CharField(max_length=15)
    condition = models.CharField(max_length=24, choices=Condition.choices)
    target_value = models.DecimalField(max_digits=24, decimal_places=12)  # as a ticker price (markets.models.PRICE)
    # The column keeps the contract's name: renaming it would break the running release during a deploy.
    quote = models.CharField(max_length=3, choices=QUOTE_CHOICES, default=DEFAULT_QUOTE, db_column="vs")
    is_active = models.BooleanField(default=True)
    repeat = models.BooleanField(default=False)
    cooldown_seconds = models.PositiveIntegerField(default=3600)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)
    last_triggered_at = models.DateTimeField(null=True, blank=True)
    # last_triggered_at + cooldown, kept so "may fire now?" is a plain indexed comparison on any database.
    rearm_at = models.DateTimeField(null=True, blank=True, editable=False)
    trigger_count = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ("-created_at",)
        indexes = [
            # The evaluation's range scans: equality on (quote, symbol, condition), range on target_value,
            # only over alerts that can still fire.
            models.Index(
                fields=["quote", "symbol", "condition", "target_value"],
                condition=Q(is_active=True),
                name="alert_eval_active_idx",
            ),
            models.Index(fields=["user", "-created_at"], name="alert_user_created_idx"),
            models.Index(fields=["user"], condition=Q(is_active=True), name="alert_user_active_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.symbol} {self.condition} {self.target_value} {self.quote}"


class AlertTrigger(models.Model):
    """One firing of an alert: the history staff see in the admin, and the exactly-once evidence."""

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="triggers", db_index=False)
    price = models.DecimalField(max_digits=30, decimal_places=12)
    previous_price = models.DecimalField(max_digits=30, decimal_places=12, null=True, blank=True)
    change_percent_24h = models.DecimalField(max_digits=20, decimal_places=8, null=True, blank=True)
    fired_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("-fired_at",)
        indexes = [models.Index(fields=["alert", "-fired_at"], name="alerttrigger_alert_fired_idx")]

    def __str__(self) -> str:
        return f"{self.alert_id} at {self.price}"


class Announcement(models.Model):
    """A staff-written system message sent once to every active user as a system_alert."""

    title = models.CharField(max_length=200)
    message = models.TextField(max_length=5000)
    priority = models.CharField(max_length=8, choices=Priority.choices, default=Priority.MEDIUM)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    # Claimed with a conditional UPDATE (sent_at IS NULL): an announcement goes out once.
    sent_at = models.DateTimeField(null=True, blank=True, editable=False)
    completed_at = models.DateTimeField(null=True, blank=True, editable=False)
    recipients = models.PositiveIntegerField(default=0, editable=False)

    class Meta:
        ordering = ("-created_at",)

    def __str__(self) -> str:
        return self.title


class Notification(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications", db_index=False
    )
    type = models.CharField(max_length=16, choices=NotificationType.choices)
    title = models.CharField(max_length=200)
    message = models.TextField(max_length=5000)
    priority = models.CharField(max_length=8, choices=Priority.choices, default=Priority.MEDIUM)
    is_read = models.BooleanField(default=False)
    read_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    data = models.JSONField(default=dict, blank=True)
    emailed_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Price alerts name their alert in `data` (no FK: deleting an alert must not rewrite its notifications).
    announcement = models.ForeignKey(
        Announcement,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="notifications",
        db_index=False,  # the unique (announcement, user) index serves lookups by announcement
    )

    class Meta:
        ordering = ("-created_at",)
        indexes = [
            models.Index(fields=["user", "-created_at"], name="notif_user_created_idx"),
            models.Index(fields=["user"], condition=Q(is_read=False), name="notif_user_unread_idx"),
            models.Index(fields=["created_at"], condition=Q(is_read=True), name="notif_read_created_idx"),
        ]
        constraints = [
            # A retried announcement task cannot give anyone the same announcement twice.
            models.UniqueConstraint(
                fields=["announcement", "user"],
                condition=Q(announcement__isnull=False),
                name="notif_one_per_announcement",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.type}: {self.title}"


# `/api/v2/user/preferences` shows and changes four of these settings under its own names (one
# setting, two views); the project's preferences view combines them with the accounts preferences.
PREFERENCE_SWITCHES = {
    "notifications_enabled": "in_app_enabled",
    "email_alerts": "email_enabled",
    "price_alerts": "price_alerts",
    "news_notifications": "news_updates",
}


class NotificationSettings(models.Model):
    """Per-user switches; a missing row means the defaults below."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="notification_settings"
    )
    in_app_enabled = models.BooleanField(default=True)
    email_enabled = models.BooleanField(default=False)
    price_alerts = models.BooleanField(default=True)
    news_updates = models.BooleanField(default=True)
    system_alerts = models.BooleanField(default=True)
    security_alerts = models.BooleanField(default=True)
    quiet_hours_start = models.TimeField(null=True, blank=True)
    quiet_hours_end = models.TimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "notification settings"

    def __str__(self) -> str:
        return f"settings of {self.user_id}"

    def allows(self, notification_type: str) -> bool:
        return bool(getattr(self, TYPE_SWITCH[notification_type]))
