"""Factories for the notifications tests (alerts and notifications of a given user)."""

from __future__ import annotations

from decimal import Decimal

import factory

from notifications.models import Alert, Notification


class AlertFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Alert

    symbol = "BTC"
    condition = "above"
    target_value = Decimal("50000")
    quote = "usd"


class NotificationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Notification

    type = "system_alert"
    title = factory.Sequence(lambda n: f"Notice {n}")
    message = "Something happened."
    priority = "medium"
