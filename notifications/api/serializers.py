"""Shapes of the alerts and notifications API: types and ranges only; rules live in the services."""

from __future__ import annotations

from rest_framework import serializers

from accounts.api.serializers import StrictBooleanField
from coinlink.contract import RejectUnknownFieldsMixin, timestamp_or_none
from coinlink.serializers import ModelSerializer
from markets.vocabulary import DEFAULT_QUOTE, SYMBOL_ANY_CASE, SYMBOL_MAX_LENGTH
from notifications.models import QUOTE_CHOICES, Alert, Condition, Notification, NotificationSettings, NotificationType
from notifications.selectors import AlertRow, email_paused_reason

COOLDOWN_MIN_SECONDS = 60
COOLDOWN_MAX_SECONDS = 30 * 86400


class AlertSerializer(RejectUnknownFieldsMixin, ModelSerializer):
    read_only_echo = True  # an alert read back (id, timestamps) may be PUT as it is
    symbol = serializers.RegexField(SYMBOL_ANY_CASE, max_length=SYMBOL_MAX_LENGTH)
    condition = serializers.ChoiceField(choices=Condition.choices)
    # Prices are positive and percents may be negative; the services check which applies.
    target_value = serializers.DecimalField(max_digits=24, decimal_places=12, coerce_to_string=False)
    vs = serializers.ChoiceField(source="quote", choices=QUOTE_CHOICES, default=DEFAULT_QUOTE)
    is_active = serializers.BooleanField(default=True)
    repeat = serializers.BooleanField(default=False)
    cooldown_seconds = serializers.IntegerField(
        min_value=COOLDOWN_MIN_SECONDS, max_value=COOLDOWN_MAX_SECONDS, default=3600
    )

    class Meta:
        model = Alert
        fields = (
            "id",
            "symbol",
            "condition",
            "target_value",
            "vs",
            "is_active",
            "repeat",
            "cooldown_seconds",
            "created_at",
            "last_triggered_at",
            "trigger_count",
        )
        read_only_fields = ("id", "created_at", "last_triggered_at", "trigger_count")

    def to_representation(self, instance):
        return alert_payload(instance)


def alert_payload(alert: Alert | AlertRow) -> dict:
    """An alert as AlertSerializer renders it: what DRF's generic walk over the eleven fields gives
    (tests/notifications/test_alerts_api.py holds them equal), at a fifth of its CPU; a page of
    alerts spent a third of its call there. Needs no serializer instance."""
    return {
        "id": str(alert.id),
        "symbol": alert.symbol,
        "condition": alert.condition,
        "target_value": _TARGET_VALUE.to_representation(alert.target_value),
        "vs": alert.quote,
        "is_active": bool(alert.is_active),
        "repeat": bool(alert.repeat),
        "cooldown_seconds": int(alert.cooldown_seconds),
        "created_at": timestamp_or_none(alert.created_at),
        "last_triggered_at": timestamp_or_none(alert.last_triggered_at),
        "trigger_count": int(alert.trigger_count),
    }


# The declared field renders alone: its format depends only on its arguments.
_TARGET_VALUE = AlertSerializer._declared_fields["target_value"]


class NotificationSerializer(ModelSerializer):
    """Declares the shape for the schema; renders through the one payload builder the live push uses."""

    class Meta:
        model = Notification
        fields = ("id", "type", "title", "message", "priority", "is_read", "created_at", "data")
        read_only_fields = fields

    def to_representation(self, instance):
        from notifications.delivery import notification_payload

        return notification_payload(instance)


class NotificationListQuerySerializer(serializers.Serializer):
    unread = serializers.BooleanField(required=False, allow_null=True, default=None)
    type = serializers.ChoiceField(choices=NotificationType.choices, required=False)


class NotificationSettingsSerializer(RejectUnknownFieldsMixin, ModelSerializer):
    read_only_echo = True  # docs/api.md: echoing `email_paused_reason` back in a PUT is fine
    quiet_hours_start = serializers.TimeField(format="%H:%M", input_formats=["%H:%M"], allow_null=True, required=True)
    quiet_hours_end = serializers.TimeField(format="%H:%M", input_formats=["%H:%M"], allow_null=True, required=True)
    email_paused_reason = serializers.SerializerMethodField(
        help_text="Read-only. `email_unverified` while the account's address is not verified: then only security "
        "alerts are mailed, whatever `email_enabled` says. null when nothing holds mail back."
    )

    class Meta:
        model = NotificationSettings
        fields = (
            "in_app_enabled",
            "email_enabled",
            "price_alerts",
            "news_updates",
            "system_alerts",
            "security_alerts",
            "quiet_hours_start",
            "quiet_hours_end",
            "email_paused_reason",
        )
        extra_kwargs = {name: {"required": True} for name in fields}

    def get_email_paused_reason(self, prefs: NotificationSettings) -> str | None:
        return email_paused_reason(user_id=prefs.user_id)

    def validate(self, attrs):
        attrs = super().validate(attrs)
        start = attrs.get("quiet_hours_start", getattr(self.instance, "quiet_hours_start", None))
        end = attrs.get("quiet_hours_end", getattr(self.instance, "quiet_hours_end", None))
        if (start is None) != (end is None):
            raise serializers.ValidationError(
                {"quiet_hours_end": ["Set both quiet_hours_start and quiet_hours_end, or neither."]}
            )
        return attrs


class UpdatedCountSerializer(serializers.Serializer):
    updated = serializers.IntegerField()


class CountSerializer(serializers.Serializer):
    count = serializers.IntegerField()


class PreferenceSwitchesSerializer(serializers.Serializer):
    """The notification settings `/api/v2/user/preferences` shows under its names (PREFERENCE_SWITCHES)."""

    notifications_enabled = StrictBooleanField()
    email_alerts = StrictBooleanField()
    price_alerts = StrictBooleanField()
    news_notifications = StrictBooleanField()
