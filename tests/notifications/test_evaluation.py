"""Alert evaluation: which alerts one ingest cycle fires, and what firing does."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from notifications import evaluation
from notifications.models import Alert, AlertTrigger, Notification, NotificationSettings
from tests.notifications.factories import AlertFactory

pytestmark = pytest.mark.django_db


def evaluate(price, *, previous=None, change=None, symbol="BTC", quote="usd", now=None) -> int:
    return evaluation.alerts_evaluate(
        quote=quote,
        prices=[{"symbol": symbol, "price": str(price), "change_percent_24h": None if change is None else str(change)}],
        previous_prices={symbol: None if previous is None else str(previous)},
        now=now,
    )


TICK = Decimal("0.00000001")

# condition, target, (price, previous, change) → fires
THRESHOLDS = [
    ("above", "100", ("100", None, None), True),
    ("above", "100", (Decimal(100) - TICK, None, None), False),
    ("above", "100", (Decimal(100) + TICK, None, None), True),
    ("below", "100", ("100", None, None), True),
    ("below", "100", (Decimal(100) - TICK, None, None), True),
    ("below", "100", (Decimal(100) + TICK, None, None), False),
    ("crosses_above", "100", ("100", "99", None), True),
    ("crosses_above", "100", (Decimal(100) - TICK, "99", None), False),
    ("crosses_above", "100", (Decimal(100) + TICK, "99", None), True),
    ("crosses_above", "100", ("101", "100", None), False),  # it was already at the target: no cross
    ("crosses_below", "100", ("100", "101", None), True),
    ("crosses_below", "100", (Decimal(100) - TICK, "101", None), True),
    ("crosses_below", "100", (Decimal(100) + TICK, "101", None), False),
    ("crosses_below", "100", ("99", "100", None), False),
    ("change_pct_24h_above", "5", ("1", None, "5"), True),
    ("change_pct_24h_above", "5", ("1", None, Decimal(5) - TICK), False),
    ("change_pct_24h_above", "5", ("1", None, Decimal(5) + TICK), True),
    ("change_pct_24h_below", "-5", ("1", None, "-5"), True),
    ("change_pct_24h_below", "-5", ("1", None, Decimal(-5) - TICK), True),
    ("change_pct_24h_below", "-5", ("1", None, Decimal(-5) + TICK), False),
]


@pytest.mark.parametrize(("condition", "target", "tick", "fires"), THRESHOLDS)
def test_it_fires_each_condition_at_and_past_its_threshold_only(owner, condition, target, tick, fires):
    alert = AlertFactory(user=owner, condition=condition, target_value=Decimal(target))
    price, previous, change = tick

    assert evaluate(price, previous=previous, change=change) == (1 if fires else 0)

    alert.refresh_from_db()
    assert alert.trigger_count == (1 if fires else 0)
    assert Notification.objects.filter(user=owner, type="price_alert").count() == (1 if fires else 0)


@pytest.mark.parametrize("condition", ["crosses_above", "crosses_below"])
def test_it_never_fires_a_cross_without_a_previous_price(owner, condition):
    AlertFactory(user=owner, condition=condition, target_value=Decimal("100"))

    assert evaluate("100", previous=None) == 0
    assert evaluate("50", previous=None) == 0
    assert evaluate("150", previous=None) == 0


def test_it_never_fires_a_change_alert_without_a_change(owner):
    AlertFactory(user=owner, condition="change_pct_24h_above", target_value=Decimal("-50"))

    assert evaluate("100", change=None) == 0


def test_it_only_fires_alerts_in_the_cycles_quote_and_symbol(owner):
    AlertFactory(user=owner, symbol="BTC", quote="eur", target_value=Decimal("10"))
    AlertFactory(user=owner, symbol="ETH", quote="usd", target_value=Decimal("10"))

    assert evaluate("100", symbol="BTC", quote="usd") == 0
    assert evaluate("100", symbol="BTC", quote="eur") == 1


def test_it_deactivates_a_one_shot_alert_when_it_fires(owner):
    alert = AlertFactory(user=owner, repeat=False, target_value=Decimal("100"))

    assert evaluate("120") == 1
    assert evaluate("130") == 0

    alert.refresh_from_db()
    assert alert.is_active is False
    assert alert.trigger_count == 1
    assert alert.last_triggered_at is not None


def test_it_fires_a_repeating_alert_at_most_once_per_cooldown(owner):
    alert = AlertFactory(user=owner, repeat=True, cooldown_seconds=600, target_value=Decimal("100"))
    start = timezone.now()

    assert evaluate("120", now=start) == 1
    assert evaluate("121", now=start + timedelta(seconds=599)) == 0
    assert evaluate("122", now=start + timedelta(seconds=600)) == 1

    alert.refresh_from_db()
    assert alert.is_active is True
    assert alert.trigger_count == 2
    assert alert.last_triggered_at == start + timedelta(seconds=600)


def test_repeating_alerts_firing_together_each_rearm_after_their_own_cooldown(owner, other_user):
    cooldowns = {AlertFactory(user=user, repeat=True, cooldown_seconds=c, target_value=Decimal("100")).pk: c
                 for user, c in [(owner, 60), (other_user, 600), (owner, 3600)]}  # fmt: skip
    start = timezone.now()

    assert evaluate("120", now=start) == 3

    for alert in Alert.objects.filter(pk__in=cooldowns):
        assert alert.rearm_at == start + timedelta(seconds=cooldowns[alert.pk])
    assert evaluate("121", now=start + timedelta(seconds=60)) == 1
    assert evaluate("122", now=start + timedelta(seconds=600)) == 2


def test_a_cycle_costs_the_same_queries_however_many_alerts_fire(owner, other_user, django_assert_num_queries):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    AlertFactory(user=owner, target_value=Decimal("100"))
    with CaptureQueriesContext(connection) as one:
        assert evaluate("120") == 1
    for n in range(30):
        AlertFactory(user=(owner, other_user)[n % 2], target_value=Decimal(90 + n), cooldown_seconds=60 * (1 + n % 4))

    with django_assert_num_queries(len(one)):
        assert evaluate("130") == 30


def test_it_records_each_firing_with_the_prices_that_caused_it(owner):
    alert = AlertFactory(user=owner, condition="crosses_above", target_value=Decimal("100"))

    evaluate("101.5", previous="99.25", change="2.5")

    trigger = AlertTrigger.objects.get(alert=alert)
    assert trigger.price == Decimal("101.5")
    assert trigger.previous_price == Decimal("99.25")
    assert trigger.change_percent_24h == Decimal("2.5")


def test_it_creates_one_contract_shaped_price_alert_notification(owner):
    alert = AlertFactory(user=owner, condition="above", target_value=Decimal("100"))

    evaluate("101", previous="99")

    note = Notification.objects.get(user=owner)
    assert note.type == "price_alert"
    assert note.title == "BTC is at or above 100 USD"
    assert note.data == {
        "alert_id": str(alert.pk),
        "symbol": "BTC",
        "condition": "above",
        "target_value": 100.0,
        "vs": "usd",
        "price": 101.0,
        "previous_price": 99.0,
        "change_percent_24h": None,
    }


def test_it_fires_but_does_not_notify_when_price_alerts_are_switched_off(owner):
    NotificationSettings.objects.create(user=owner, price_alerts=False)
    alert = AlertFactory(user=owner, target_value=Decimal("100"))

    assert evaluate("101") == 1

    alert.refresh_from_db()
    assert alert.trigger_count == 1
    assert not Notification.objects.filter(user=owner).exists()


def test_it_fires_every_matching_alert_of_every_user_in_one_cycle(owner, other_user):
    AlertFactory(user=owner, symbol="BTC", target_value=Decimal("100"))
    AlertFactory(user=other_user, symbol="BTC", condition="below", target_value=Decimal("200"))
    AlertFactory(user=other_user, symbol="ETH", condition="below", target_value=Decimal("10"))
    AlertFactory(user=other_user, symbol="ETH", condition="above", target_value=Decimal("10"))

    fired = evaluation.alerts_evaluate(
        quote="usd",
        prices=[
            {"symbol": "BTC", "price": "150", "change_percent_24h": "1"},
            {"symbol": "ETH", "price": "5", "change_percent_24h": "-1"},
        ],
        previous_prices={"BTC": "140", "ETH": "6"},
    )

    assert fired == 3
    assert Alert.objects.filter(is_active=False).count() == 3


@pytest.mark.parametrize("bad", ["NaN", "Infinity", "-3", "0", "abc", None, ""])
def test_it_skips_price_rows_that_are_not_positive_finite_numbers(owner, bad):
    AlertFactory(user=owner, condition="below", target_value=Decimal("100"))

    assert evaluate(bad) == 0
    assert Alert.objects.get().is_active is True


def test_the_task_evaluates_through_celery_with_json_arguments(owner, settings):
    from notifications.tasks import alerts_evaluate

    AlertFactory(user=owner, target_value=Decimal("100"))

    result = alerts_evaluate.apply(
        kwargs={
            "quote": "usd",
            "prices": [{"symbol": "BTC", "price": "101", "change_percent_24h": None}],
            "previous_prices": {"BTC": "99"},
        }
    )

    assert result.get() == 1


def test_it_counts_fired_alerts_and_notifications_after_commit(owner, django_capture_on_commit_callbacks):
    from prometheus_client import REGISTRY

    def sample(name, **labels):
        return REGISTRY.get_sample_value(name, labels) or 0.0

    fired_before = sample("coinlink_alerts_fired_total", condition="below")
    sent_before = sample("coinlink_notifications_total", type="price_alert", channel="in_app")
    AlertFactory(user=owner, condition="below", target_value=Decimal("100"))

    with django_capture_on_commit_callbacks(execute=True):
        evaluate("90")

    assert sample("coinlink_alerts_fired_total", condition="below") == fired_before + 1
    assert sample("coinlink_notifications_total", type="price_alert", channel="in_app") == sent_before + 1


@pytest.mark.parametrize(
    ("prices", "previous"), [(None, {}), ("BTC", {}), (["BTC", 3], {}), ([{"symbol": "BTC", "price": "5"}], ["x"])]
)
def test_it_shrugs_off_malformed_task_arguments(owner, prices, previous):
    AlertFactory(user=owner, condition="below", target_value=Decimal("100"))

    fired = evaluation.alerts_evaluate(quote="usd", prices=prices, previous_prices=previous)

    assert fired == (1 if previous == ["x"] else 0)
